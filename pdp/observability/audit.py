"""The audit log writer: JSON lines handed over by the event loop, written by one thread.

`AuditLog.write` never blocks and never does I/O: it puts the line on a bounded queue. A
writer thread takes what has queued up (lingering a few milliseconds when the queue is
short, so a busy server makes few, large writes) and appends it to the file (opened
O_APPEND, so several workers can share one file: each write is whole lines) or stdout.
When the queue is full the record is dropped and `pdp_audit_records_dropped_total` counts
it: a stalled disk must not stall decisions. `close` (at graceful shutdown) writes every
queued line before it returns. `reopen` makes the writer reopen the file, for log rotation.
"""

from __future__ import annotations

import os
import queue
import select
import stat
import threading
import time
from typing import Final

import structlog

from pdp.observability.metrics import AUDIT_DROPPED

QUEUE_LINES: Final = 65_536  # about 100 MB of records at most, and ~1 s of a busy server
BATCH_LINES: Final = 4096
LINGER_S: Final = 0.005  # wait this long for company when fewer than LINGER_BELOW are queued
LINGER_BELOW: Final = 64
STDOUT: Final = "-"
_STOP: Final = ""  # no real line is empty: each ends with a newline

_log = structlog.get_logger(__name__)


class AuditLog:
    """Appends audit lines to a file (or stdout) from a writer thread."""

    def __init__(self, target: str, *, queue_lines: int = QUEUE_LINES) -> None:
        self.target = target
        self._fd = self._open()
        self._queue: queue.Queue[str] = queue.Queue(queue_lines)
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
            raise OSError(f"--audit-log {self.target}: {exc.strerror or exc}") from exc

    def write(self, line: str) -> None:
        """Queue one newline-terminated line; drop and count it when the queue is full."""
        if self._closed:
            AUDIT_DROPPED.inc()
            return
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            AUDIT_DROPPED.inc()

    def reopen(self) -> None:
        """Reopen the file before the next write (after logrotate moved it)."""
        self._reopen = True

    def close(self) -> None:
        """Write every queued line, then close the file. Later writes are dropped."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)  # blocks only while the writer drains a full queue
        self._thread.join()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            if self._queue.qsize() < LINGER_BELOW and batch[0] != _STOP:
                time.sleep(LINGER_S)
            try:
                while len(batch) < BATCH_LINES:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            stopping = _STOP in batch
            if self._reopen:
                self._reopen = False
                self._swap_file()
            self._write(b"".join(line.encode() for line in batch if line))
            if stopping:
                self._finish()
                return

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
