"""The audit log writer: calls handed over by the event loop, formatted and written by one thread.

`AuditLog.put` never blocks, formats nothing and does no I/O: it appends the call's domain
values (sign-in, decision, times, failure) to a queue bounded in bytes. What a queued call
keeps alive is estimated from a few length reads (a fixed part, the strings the record
writes, the sign-in's group and role ids, an explained decision's policies); a call that
would take the queue past `queue_bytes` is dropped and counted
(`pdp_audit_records_dropped_total{reason="queue_full"}`): a stalled disk must not stall
decisions, nor fill the memory.

A writer thread takes what has queued up (waking every 50 milliseconds, so a busy server
makes few, large writes), renders each line within the record's bounds
(`pdp.observability.audit_bounds`) and appends them to the file (opened O_APPEND, so
several workers can share one file: each write is whole lines) or stdout (to a pipe, whole
lines of at most PIPE_BUF bytes per write). Whatever the sink does, lines stay whole and
every loss is counted:

- a write that fails part-way through a line (disk full) does not leave the fragment to
  merge with the next record: it is cut off the file (when nothing was appended after it),
  else the rest of the line is written first when writing works again;
- the file is checked before each write: when its path names another file or none (moved
  or deleted without SIGHUP), it is opened (created) again; a file that is gone and cannot
  be created again loses its lines, counted;
- write errors are logged at most once per `error_interval_s`, saying how many records
  were lost and how many reports were suppressed since the last one;
- `close(timeout)` writes every queued record, or, when the sink is stalled (a pipe no one
  reads, a hung mount), gives up at the deadline and counts what it could not write.

`reopen` makes the writer reopen the file before its next write (SIGHUP, log rotation).
"""

from __future__ import annotations

import collections
import os
import select
import stat
import threading
import time
from typing import Any, Final

import structlog

from pdp.context import SignInContext
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode, StartupError
from pdp.observability.audit_bounds import RecordBounds
from pdp.observability.audit_record import AuditLine
from pdp.observability.metrics import AUDIT_DROPPED, PUBLISHER
from pdp.observability.tally import CountTally

QUEUE_BYTES: Final = 64 * 1024 * 1024
CALL_BYTES: Final = 768  # the queue entry, the SignInContext and the decision of one call
ENTRY_BYTES: Final = 100  # one group or role id (a GUID string in a set)
POLICY_BYTES: Final = 400  # one policy outcome of an explained decision, with its reasons
BATCH_BYTES: Final = 1024 * 1024  # rendered per write, at most (and one line more)
LINGER_BELOW: Final = 4096  # records queued: past this many the writer does not wait
POLL_S: Final = 0.05  # how long the writer sleeps between batches (and when idle)
ERROR_INTERVAL_S: Final = 10.0
STDOUT: Final = "-"

Record = tuple[SignInContext, Decision | None, float, float, ErrorCode | None, int]
_log = structlog.get_logger(__name__)
_QUEUE_FULL = AUDIT_DROPPED.labels("queue_full")
_WRITE_FAILED = AUDIT_DROPPED.labels("write_failed")
_SHUTDOWN = AUDIT_DROPPED.labels("shutdown")
_RECORD_FAILED = AUDIT_DROPPED.labels("record_failed")


class AuditLog:
    """Appends audit lines to a file (or stdout) from a writer thread."""

    def __init__(
        self,
        target: str,
        *,
        queue_bytes: int = QUEUE_BYTES,
        hide_ip: bool = False,
        error_interval_s: float = ERROR_INTERVAL_S,
    ) -> None:
        self.target = target
        try:
            self._sink = _Sink.open(target)
        except OSError as exc:
            raise StartupError(f"--audit-log {target}: {exc.strerror or exc}") from exc
        self._bounds = RecordBounds(AuditLine(hide_ip=hide_ip))
        self._queue: collections.deque[Record] = collections.deque()
        self._limit = queue_bytes
        self._bytes_in = 0  # estimated bytes ever queued: only put() writes it
        self._bytes_out = 0  # ...and taken off the queue: only the writer writes these two
        self._ceiling = queue_bytes  # what _bytes_in may reach: _bytes_out + _limit
        self._full = CountTally(_QUEUE_FULL)  # put()'s drops, counted on the event loop
        PUBLISHER.add(self._full.publish)
        self._pending = 0  # lines taken off the queue, neither written nor counted lost
        self._tail = b""  # the rest of a line a failed write tore, written first next time
        self._errors = _Throttled(target, error_interval_s)
        self._reopen = False
        self._closed = False
        self._abandoned = False  # close() gave up on a stalled sink: the writer stops
        self._thread = threading.Thread(target=self._run, name="pdp-audit", daemon=True)
        self._thread.start()

    def put(
        self,
        ctx: SignInContext,
        decision: Decision | None,
        created: float,
        latency_s: float,
        failure: ErrorCode | None,
    ) -> None:
        """Queue one call's record; drop and count it when the queue is full or closed."""
        # Summed small first: an int past 256 is a fresh object, and put() is on every call.
        size = (
            len(ctx.request_id)
            + len(ctx.user_id)
            + len(ctx.service_principal_id)
            + len(ctx.application_id)
            + len(ctx.ip_address)
            + len(ctx.device_id)
        )
        ids = len(ctx.group_ids) + len(ctx.role_ids)
        if ids:
            size += ENTRY_BYTES * ids
        if ctx.explain and decision is not None:  # a fresh tuple of every policy, per call
            size += POLICY_BYTES * len(decision.policies)
        size += CALL_BYTES
        queued = self._bytes_in + size
        if queued > self._ceiling:  # full, or closed (the ceiling is then below zero)
            if self._closed:
                _SHUTDOWN.inc()
            else:
                self._full.count += 1
            return
        self._bytes_in = queued
        self._queue.append((ctx, decision, created, latency_s, failure, size))

    def reopen(self) -> None:
        """Reopen the file before the next write (after logrotate moved it)."""
        self._reopen = True

    def close(self, timeout: float | None = None) -> None:
        """Write every queued record, then close the file; later records are dropped.

        With `timeout`, give up after that many seconds when the sink does not take the
        records (a stalled pipe or mount): what was not written is counted as dropped
        (reason shutdown) and logged, and the writer thread is left to the process's exit.
        """
        if self._closed:
            return
        self._closed = True
        self._limit = self._ceiling = -(1 << 62)  # put() refuses from now on
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._abandoned = True
            # Each record is in the queue or pending (for a moment both): none is missed.
            lost = len(self._queue) + self._pending
            _SHUTDOWN.inc(lost)
            _log.error("audit_close_timed_out", target=self.target, timeout_s=timeout, lost=lost)
        self._errors.flush()
        PUBLISHER.remove(self._full.publish)

    # -- the writer thread ----------------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        while not self._abandoned:
            if not queue:
                if self._closed:
                    self._finish()
                    return
                time.sleep(POLL_S)
                continue
            try:
                self._check_sink()
                self._write_batch()
            except Exception:  # noqa: BLE001 - the writer never dies; each loss is counted
                _RECORD_FAILED.inc(self._pending)
                self._pending, self._tail = 0, b""
                _log.exception("audit_writer_failed", target=self.target)
            if len(queue) < LINGER_BELOW and not self._closed:
                # Let records gather: a writer that woke for every call would take the GIL
                # from the event loop thousands of times a second on a busy server.
                time.sleep(POLL_S)

    def _write_batch(self) -> None:
        """Render what has queued up (up to BATCH_BYTES) and write it."""
        queue = self._queue
        render = self._bounds.render
        lines: list[bytes] = []
        size = 0
        while queue and size < BATCH_BYTES:
            self._pending += 1  # before it leaves the queue: close() counts it at least once
            ctx, decision, created, latency_s, failure, estimate = queue.popleft()
            self._bytes_out += estimate
            try:
                line = render(ctx, decision, created=created, latency_s=latency_s, failure=failure)
            except Exception:  # noqa: BLE001 - a record that cannot be built is counted
                self._pending -= 1
                _RECORD_FAILED.inc()
                _log.exception("audit_record_failed", request_id=ctx.request_id)
                continue
            lines.append(line)
            size += len(line)
        self._ceiling = self._bytes_out + self._limit
        self._write(b"".join(lines), len(lines))

    def _write(self, data: bytes, lines: int) -> None:
        """Append `lines` whole lines; count those a failure loses, never tear one."""
        tail = self._tail
        if tail:  # complete the line an earlier failure tore, before anything else
            data, lines, self._tail = tail + data, lines + 1, b""
        if not data:
            return
        sink = self._sink
        if sink.gone:  # deleted, and it could not be created again: nowhere to write
            self._lost(lines, "audit_file_gone", "the file was deleted and cannot be recreated")
            return
        limit = len(data) if sink.regular else select.PIPE_BUF
        view = memoryview(data)
        offset, end = 0, len(data)
        try:
            while offset < end:
                if self._abandoned:  # close() has counted what is left
                    return
                cut = end if end - offset <= limit else _last_line_end(data, offset, limit)
                offset += os.write(sink.fd, view[offset:cut])
        except OSError as exc:
            if self._abandoned:  # the reader left after close() gave up: already counted
                return
            lines = self._failed(data, offset, lines)
            self._lost(lines, "audit_write_failed", exc.strerror or str(exc))
            return
        self._pending -= lines
        if sink.named and sink.deleted() and self._swap("deleted"):
            # What went to the deleted file is lost to readers: write it to the new one.
            if tail:  # ...but for a torn line's rest, whose start is in the deleted file
                data, lines = data[len(tail) :], lines - 1
                _WRITE_FAILED.inc()
            self._pending += lines
            self._write(data, lines)

    def _failed(self, data: bytes, offset: int, lines: int) -> int:
        """After a write failed at `offset`: leave no torn line; the number of lines lost."""
        start = data.rfind(b"\n", 0, offset) + 1  # where the line being written begins
        written = data.count(b"\n", 0, start)
        self._pending -= written
        if offset > start and not self._sink.cut_back(offset - start):
            self._tail = data[offset : data.index(b"\n", offset) + 1]
            return lines - written - 1  # completed by the next write, not lost
        return lines - written

    def _lost(self, lines: int, event: str, error: str) -> None:
        self._pending -= lines
        _WRITE_FAILED.inc(lines)
        self._errors.report(event, lines, error=error)

    def _check_sink(self) -> None:
        """Reopen the file when asked (SIGHUP) or when its path names another file or none."""
        if self._reopen:
            self._reopen = False
            self._swap("signal")
            return
        reason = self._sink.moved()
        if reason is not None:
            self._swap(reason)

    def _swap(self, reason: str) -> bool:
        """Open the target afresh and write there from now on; False when it cannot."""
        sink = self._sink
        try:
            fresh = _Sink.open(self.target)
        except OSError as exc:
            sink.gone = sink.deleted()
            self._errors.report("audit_reopen_failed", 0, error=exc.strerror or str(exc))
            return False
        if self._tail:  # the torn line stays in the old file: its rest is lost
            self._tail = b""
            self._lost(1, "audit_write_failed", "a torn line could not be completed")
        self._sink = fresh
        sink.close()
        _log.info("audit_file_reopened", target=self.target, reason=reason)
        return True

    def _finish(self) -> None:
        if self._tail:  # one last try to complete a torn line, then it is lost
            self._write(b"", 0)
        if self._tail:
            self._tail = b""
            self._lost(1, "audit_write_failed", "a torn line could not be completed")
        sink = self._sink
        try:
            if sink.regular:
                os.fsync(sink.fd)
        except OSError as exc:
            _log.error("audit_sync_failed", target=self.target, error=str(exc))
        sink.close()


class _Sink:
    """The open file (or stdout) the writer appends to, and what it knows about it."""

    def __init__(self, target: str, fd: int) -> None:
        self.target = target
        self.fd = fd
        info = os.fstat(fd)
        self.regular = stat.S_ISREG(info.st_mode)
        self.named = self.regular and target != STDOUT  # a file pdp can open again by name
        self.identity = (info.st_dev, info.st_ino)
        self.gone = False  # deleted and not recreatable: what is written here is lost

    @classmethod
    def open(cls, target: str) -> _Sink:
        """Open `target` for appending (created 0640); raises OSError."""
        if target == STDOUT:
            return cls(target, os.dup(1))
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        sink = cls(target, os.open(target, flags, 0o640))
        if sink.regular:
            sink.end_last_line()
        return sink

    def end_last_line(self) -> None:
        """End a line an earlier process left unfinished, so the next record starts afresh."""
        try:
            size = os.fstat(self.fd).st_size
            if size == 0:
                return
            reader = os.open(self.target, os.O_RDONLY | os.O_CLOEXEC)
            try:
                last = os.pread(reader, 1, size - 1)
            finally:
                os.close(reader)
            if last != b"\n":
                os.write(self.fd, b"\n")
        except OSError:  # unreadable (write-only): records still start on whole lines
            return

    def moved(self) -> str | None:
        """Why the path no longer names this file ("replaced", "deleted"), or None."""
        if not self.named:
            return None
        try:
            info = os.stat(self.target)  # noqa: PTH116 - one syscall per batch, no Path object
        except FileNotFoundError:
            return "deleted"
        except OSError:
            return None
        return None if (info.st_dev, info.st_ino) == self.identity else "replaced"

    def deleted(self) -> bool:
        """Whether this file has no name left (what is written to it is lost)."""
        try:
            return self.regular and os.fstat(self.fd).st_nlink == 0
        except OSError:
            return False

    def cut_back(self, torn: int) -> bool:
        """Remove the last `torn` bytes this writer appended, if nothing was appended since."""
        if not self.regular:
            return False
        try:
            end = os.lseek(self.fd, 0, os.SEEK_CUR)  # O_APPEND: the end of our last write
            if os.fstat(self.fd).st_size != end:
                return False
            os.ftruncate(self.fd, end - torn)
        except OSError:
            return False
        return True

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            return


class _Throttled:
    """Logs each error event at most once per interval, with what it lost meanwhile."""

    def __init__(self, target: str, interval_s: float) -> None:
        self._target = target
        self._interval = interval_s
        self._state: dict[str, list[Any]] = {}  # event -> [next time, suppressed, lost]

    def report(self, event: str, lost: int, **fields: Any) -> None:
        now = time.monotonic()
        state = self._state.setdefault(event, [0.0, 0, 0])
        state[2] += lost
        if now < state[0]:
            state[1] += 1
            return
        _log.error(
            event,
            target=self._target,
            lost=state[2],
            suppressed=state[1],
            next_report_s=self._interval,
            **fields,
        )
        self._state[event] = [now + self._interval, 0, 0]

    def flush(self) -> None:
        """Log what was suppressed since each event's last report."""
        for event, (_, suppressed, lost) in list(self._state.items()):
            if suppressed or lost:
                _log.error(event, target=self._target, lost=lost, suppressed=suppressed)
        self._state.clear()


def _last_line_end(data: bytes, offset: int, limit: int) -> int:
    """Where a write from `offset` ends: the last line end within `limit` bytes.

    When the first line is longer than `limit`, the end of that line.
    """
    end = data.rfind(b"\n", offset, offset + limit)
    if end >= 0:
        return end + 1
    first = data.find(b"\n", offset)
    return len(data) if first < 0 else first + 1
