"""The audit writer's queue: in order, bounded in bytes, never blocking, every loss counted."""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
from pathlib import Path

import pytest
from audit_helpers import drain, dropped, put, stalled_pipe, strict_lines, wait_until

from pdp.context import SignInContext
from pdp.errors import ErrorCode
from pdp.observability.audit import AuditLog
from pdp.observability.audit_record import truncate_ip

MB = 1024 * 1024
CANCELLED = ErrorCode.CANCELLED


def test_close_writes_every_queued_record_in_order(tmp_path: Path) -> None:
    """Records queued before close() are all in the file, in order, when close() returns."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    for n in range(20_000):
        put(audit, n)
    audit.close()
    assert [r["id"] for r in strict_lines(path.read_text("utf-8"))] == [
        str(n) for n in range(20_000)
    ]


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    """With a tiny queue, put() returns at once; every record is either written or counted."""
    path = tmp_path / "audit.jsonl"
    before = dropped("queue_full")
    audit = AuditLog(str(path), queue_bytes=4096)
    started = time.perf_counter()
    for n in range(5_000):
        put(audit, n)
    elapsed = time.perf_counter() - started
    audit.close()
    written = len(path.read_text("utf-8").splitlines())
    assert dropped("queue_full") - before == 5_000 - written > 0
    assert elapsed < 1.0


def test_the_queue_is_bounded_in_bytes_not_in_records(tmp_path: Path) -> None:
    """150 calls carrying 1 MB each, to a stalled sink: the queue keeps ~queue_bytes, no more.

    Each call's strings are its own (as a way in would build them), so what the queue keeps
    alive shows in the traced memory; the rest are dropped and counted, and once the sink
    drains, written + dropped is every call.
    """
    before = dropped()
    with stalled_pipe(tmp_path) as (fifo, reader):
        audit = AuditLog(str(fifo), queue_bytes=4 * MB)
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            for n in range(150):
                put(audit, n, user_id=f"{n}-" + "u" * MB)  # a fresh 1 MB string per call
            kept = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert dropped("queue_full") - before >= 100
        assert kept < 4 * MB + 2 * MB  # the queue's bound, and a batch being written
        os.set_blocking(reader, True)
        received: list[bytes] = []
        reading = threading.Thread(target=lambda: received.append(_read_to_end(reader)))
        reading.start()
        audit.close()
        reading.join(10)
    records = strict_lines(received[0].decode())
    assert len(records) + dropped() - before == 150
    assert all(len(r["userId"]) < 1100 for r in records)  # cut by the record's own bounds


def _read_to_end(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_record_after_close_is_counted_as_dropped(tmp_path: Path) -> None:
    """Nothing is written once the log is closed; the record is counted (shutdown)."""
    audit = AuditLog(str(tmp_path / "audit.jsonl"))
    audit.close()
    before = dropped("shutdown")
    put(audit, 1)
    assert dropped("shutdown") == before + 1


def test_close_gives_up_on_a_stalled_sink_at_its_deadline_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    """A pipe nobody reads: close(timeout) returns in time; what it did not write is counted."""
    calls = 3_000  # far more than a pipe's 64 KiB buffer holds
    before = dropped("shutdown")
    with stalled_pipe(tmp_path) as (fifo, reader):
        audit = AuditLog(str(fifo))
        for n in range(calls):
            put(audit, n)
        wait_until(lambda: not audit._queue or audit._pending > 0)
        closing = threading.Thread(target=audit.close, kwargs={"timeout": 0.5})
        started = time.monotonic()
        closing.start()
        closing.join(10)
        assert not closing.is_alive(), "close() waited for a sink that never reads"
        assert time.monotonic() - started < 3
        delivered = len(strict_lines(drain(reader).decode()))
    lost = dropped("shutdown") - before
    # Every record is written or counted; one in the very write the sink was stuck in may
    # be both (counted at the deadline, delivered when the reader finally read).
    assert calls - delivered <= lost <= calls
    assert delivered < calls


def test_a_record_that_cannot_be_built_is_counted_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    """A record whose time is not a number fails to build: counted, the next one written."""
    path = tmp_path / "audit.jsonl"
    before = dropped("record_failed")
    audit = AuditLog(str(path))
    put(audit, 1)
    audit.put(SignInContext(request_id="2", time=0.0), None, float("nan"), 0.0, CANCELLED)
    put(audit, 3)
    audit.close()
    assert [r["id"] for r in strict_lines(path.read_text("utf-8"))] == ["1", "3"]
    assert dropped("record_failed") == before + 1


@pytest.mark.parametrize(
    ("address", "truncated"),
    [
        ("198.51.100.77", "198.51.100.0"),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
        ("::ffff:203.0.113.10", "203.0.113.0"),
        ("not an address", ""),
        ("", ""),
    ],
)
def test_truncate_ip_keeps_the_ipv4_24_and_the_ipv6_48(address: str, truncated: str) -> None:
    """IPv4 /24, IPv6 /48, IPv4-mapped as IPv4; anything else is dropped, never leaked."""
    assert truncate_ip(address) == truncated
