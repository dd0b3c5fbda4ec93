"""`pdp serve` with an audit sink that fails: it stops in time and counts what it lost."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from pdp_process import PdpProcess, channel, requests_of

from pdp.v1 import pdp_pb2_grpc

GRACE_S = 1


def test_sigterm_with_a_stalled_audit_pipe_stops_within_the_grace_counting_what_it_drops(
    policy_dir: Path, tmp_path: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """A FIFO nobody reads fills up; SIGTERM still ends the process in about --grace seconds."""
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, but never reading
    calls = 400  # ~300 KB of lines: far past the pipe's 64 KiB
    try:
        args = ("--audit-log", str(fifo), "--grace", str(GRACE_S))
        with PdpProcess(policy_dir, *args) as pdp, channel(pdp.wait_ready().address) as ch:
            stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
            request = requests_of(sign_ins)["challenge_mfa"]
            for _ in range(calls):
                stub.Evaluate(request, timeout=10)
            started = time.monotonic()
            assert pdp.stop(timeout=20) == 0
            took = time.monotonic() - started
            record = pdp.wait_for("audit_close_timed_out")
    finally:
        os.close(reader)
    assert took < GRACE_S + 4  # the grace, the audit's minimum second, and start-up slack
    assert 0 < record["lost"] <= calls


def test_an_audit_log_on_a_full_device_logs_once_and_counts_every_record(
    policy_dir: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """/dev/full refuses every write: one audit_write_failed record, every call counted lost."""
    request = requests_of(sign_ins)["challenge_mfa"]
    with PdpProcess(policy_dir, "--audit-log", "/dev/full") as pdp:
        with channel(pdp.wait_ready().address) as ch:
            stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
            for _ in range(50):  # spread out: the writer makes many separate writes
                stub.Evaluate(request, timeout=10)
                time.sleep(0.01)
        deadline = time.monotonic() + 10
        while pdp.metrics().value("pdp_audit_records_dropped_total", reason="write_failed") < 50:
            assert time.monotonic() < deadline, "the lost records were never counted"
            time.sleep(0.05)
        assert len(list(pdp.matching("audit_write_failed"))) == 1
        pdp.signal(signal.SIGTERM)
        assert pdp.process.wait(timeout=20) == 0
        pdp.wait_for("stopped")
    failures = list(pdp.matching("audit_write_failed"))
    assert len(failures) == 2  # the first, then at shutdown the ones left out
    assert sum(f["lost"] for f in failures) == 50
