"""Shared by the audit tests: metric readings, strict JSON, records to queue, a stalled pipe."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY

from pdp.context import SignInContext
from pdp.errors import ErrorCode
from pdp.observability.audit import AuditLog


def dropped(reason: str | None = None) -> float:
    """pdp_audit_records_dropped_total in this process, for one reason or all."""
    if reason is not None:
        return REGISTRY.get_sample_value("pdp_audit_records_dropped_total", {"reason": reason}) or 0
    return sum(dropped(r) for r in ("queue_full", "write_failed", "shutdown", "record_failed"))


def truncated() -> float:
    """pdp_audit_records_truncated_total in this process."""
    return REGISTRY.get_sample_value("pdp_audit_records_truncated_total") or 0.0


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def strict_json(line: str) -> Any:
    """`line` parsed as JSON proper: NaN, Infinity and -Infinity are errors."""
    return json.loads(line, parse_constant=_refuse_constant)


def strict_lines(text: str) -> list[dict[str, Any]]:
    """Every line of `text` parsed strictly (an empty last line aside)."""
    return [strict_json(line) for line in text.splitlines()]


def put(audit: AuditLog, n: int, **fields: Any) -> None:
    """Queue the record of a refused call whose request id is `n` (with `fields` set)."""
    ctx = SignInContext(request_id=str(n), time=0.0, **fields)
    audit.put(ctx, None, 0.0, 0.0, ErrorCode.CANCELLED)


def wait_until(found: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll `found` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@contextlib.contextmanager
def stalled_pipe(folder: Path) -> Iterator[tuple[Path, int]]:
    """A FIFO with a reader that reads nothing unless told: (its path, the reader's fd)."""
    path = folder / "audit.fifo"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield path, reader
    finally:
        os.close(reader)


def drain(reader: int) -> bytes:
    """Everything the pipe holds now (non-blocking reader)."""
    chunks = []
    while True:
        try:
            chunk = os.read(reader, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
