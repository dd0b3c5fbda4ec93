"""The audit log writer: calls handed over by the event loop, formatted and written by one thread.

`AuditLog.put` never blocks, formats nothing and does no I/O: it appends the call's domain
values (sign-in, decision, times, failure) to a bounded queue. A writer thread takes what
has queued up (waking every few milliseconds, so a busy server makes few, large writes),
builds each JSON line (`pdp.observability.audit_record.AuditLine`) and appends them to the
file (opened O_APPEND, so several workers can share one file: each write is whole lines) or
stdout. When the queue is full the record is dropped and `pdp_audit_records_dropped_total`
counts it: a stalled disk must not stall decisions. `close` (at graceful shutdown) writes
every queued record before it returns. `reopen` makes the writer reopen the file, for log
rotation.
"""

from __future__ import annotations

import collections
import os
import select
import stat
import threading
import time
from typing import Final

import structlog

from pdp.context import SignInContext
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode, StartupError
from pdp.observability.audit_record import AuditLine
from pdp.observability.metrics import AUDIT_DROPPED

QUEUE_RECORDS: Final = 65_536  # about 100 MB of records at most, and ~1 s of a busy server
BATCH_RECORDS: Final = 4096
POLL_S: Final = 0.005  # how long the writer sleeps when nothing is queued
STDOUT: Final = "-"

Record = tuple[SignInContext, Decision | None, float, float, ErrorCode | None]
_log = structlog.get_logger(__name__)


class AuditLog:
    """Appends audit lines to a file (or stdout) from a writer thread."""

    def __init__(
        self, target: str, *, queue_records: int = QUEUE_RECORDS, hide_ip: bool = False
    ) -> None:
        self.target = target
        self._fd = self._open()
        self._line = AuditLine(hide_ip=hide_ip)
        self._queue: collections.deque[Record] = collections.deque()
        self._limit = queue_records
        self._reopen = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="pdp-audit", daemon=True)
        self._thread.start()

    def _open(self) -> int:
        if self.target == STDOUT:
            return os.dup(1)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(self.target, flags, 0o640)
        except OSError as exc:
            raise StartupError(f"--audit-log {self.target}: {exc.strerror or exc}") from exc

    def put(
        self,
        ctx: SignInContext,
        decision: Decision | None,
        created: float,
        latency_s: float,
        failure: ErrorCode | None,
    ) -> None:
        """Queue one call's record; drop and count it when the queue is full or closed."""
        queue = self._queue
        if self._closed or len(queue) >= self._limit:
            AUDIT_DROPPED.inc()
            return
        queue.append((ctx, decision, created, latency_s, failure))

    def reopen(self) -> None:
        """Reopen the file before the next write (after logrotate moved it)."""
        self._reopen = True

    def close(self) -> None:
        """Write every queued record, then close the file. Later records are dropped."""
        if self._closed:
            return
        self._closed = True
        self._thread.join()

    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._closed:
                    self._finish()
                    return
                time.sleep(POLL_S)
                continue
            if self._reopen:
                self._reopen = False
                self._swap_file()
            lines = []
            for _ in range(min(len(queue), BATCH_RECORDS)):
                ctx, decision, created, latency_s, failure = queue.popleft()
                try:
                    lines.append(
                        self._line(
                            ctx, decision, created=created, latency_s=latency_s, failure=failure
                        )
                    )
                except Exception:  # noqa: BLE001 - a record that cannot be built is counted
                    AUDIT_DROPPED.inc()
                    _log.exception("audit_record_failed", request_id=ctx.request_id)
            self._write("".join(lines).encode())

    def _swap_file(self) -> None:
        try:
            fd = self._open()
        except OSError as exc:
            _log.error("audit_reopen_failed", error=str(exc))
            return
        os.close(self._fd)
        self._fd = fd

    def _write(self, data: bytes) -> None:
        """Write whole lines; to a pipe, at most PIPE_BUF bytes a time, so workers' don't mix."""
        if not data:
            return
        limit = len(data) if _is_file(self._fd) else select.PIPE_BUF
        view = memoryview(data)
        try:
            while view:
                cut = len(view) if len(view) <= limit else _last_line_end(view, limit)
                written = os.write(self._fd, view[:cut])
                view = view[written:]
        except OSError as exc:
            lost = bytes(view).count(b"\n")
            AUDIT_DROPPED.inc(lost)
            _log.error("audit_write_failed", target=self.target, error=str(exc), lost=lost)

    def _finish(self) -> None:
        try:
            if _is_file(self._fd):
                os.fsync(self._fd)
        except OSError as exc:
            _log.error("audit_sync_failed", target=self.target, error=str(exc))
        os.close(self._fd)


def _is_file(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


def _last_line_end(view: memoryview, limit: int) -> int:
    """Bytes up to the last line end within `limit` (or the first line, when it is longer)."""
    head = bytes(view[:limit])
    end = head.rfind(b"\n")
    if end >= 0:
        return end + 1
    first = bytes(view).find(b"\n")
    return len(view) if first < 0 else first + 1
