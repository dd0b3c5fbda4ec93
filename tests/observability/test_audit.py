"""The audit writer (no lost line on close, drops counted, never blocking) and record shape."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from pdp.context import SignInContext
from pdp.errors import ErrorCode
from pdp.observability.audit import AuditLog
from pdp.observability.audit_record import AuditLine, truncate_ip
from pdp.server.convert_in import describe
from pdp.v1 import pdp_pb2 as pb


def dropped() -> float:
    """The current value of pdp_audit_records_dropped_total in this process."""
    return REGISTRY.get_sample_value("pdp_audit_records_dropped_total") or 0.0


def put(audit: AuditLog, n: int) -> None:
    """Queue the record of a refused call whose request id is `n`."""
    audit.put(SignInContext(request_id=str(n), time=0.0), None, 0.0, 0.0, ErrorCode.CANCELLED)


def test_close_writes_every_queued_record_in_order(tmp_path: Path) -> None:
    """Records queued before close() are all in the file, in order, when close() returns."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    for n in range(20_000):
        put(audit, n)
    audit.close()
    assert [json.loads(line)["id"] for line in path.read_text("utf-8").splitlines()] == [
        str(n) for n in range(20_000)
    ]


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    """With a tiny queue, put() returns at once; every record is either written or counted."""
    path = tmp_path / "audit.jsonl"
    before = dropped()
    audit = AuditLog(str(path), queue_records=4)
    started = time.perf_counter()
    for n in range(5_000):
        put(audit, n)
    elapsed = time.perf_counter() - started
    audit.close()
    written = len(path.read_text("utf-8").splitlines())
    assert dropped() - before == 5_000 - written > 0
    assert elapsed < 1.0


def test_a_record_after_close_is_counted_as_dropped(tmp_path: Path) -> None:
    """Nothing is written once the log is closed; the record is counted."""
    audit = AuditLog(str(tmp_path / "audit.jsonl"))
    audit.close()
    before = dropped()
    put(audit, 1)
    assert dropped() == before + 1


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


def test_a_failed_call_records_what_the_request_said_and_why() -> None:
    """No response: status carries the gRPC code and pdp's reason; no decision fields."""
    request = pb.EvaluateRequest(
        request_id="r-1",
        subject=pb.Subject(user_id="U-1"),
        network=pb.Network(ip_address="198.51.100.7", geo=pb.Geo(country="FR")),
        client_app_type=pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS,
    )
    line = AuditLine()(
        describe(request, 0.25),
        None,
        created=0.25,
        latency_s=0.0015,
        failure=ErrorCode.INVALID_ARGUMENT,
    )
    record = json.loads(line)
    assert line.endswith("\n")
    assert record["createdDateTime"] == "1970-01-01T00:00:00.250Z"
    assert record["id"] == "r-1"
    assert record["location"] == {"countryOrRegion": "FR"}
    assert record["clientAppUsed"] == "Mobile Apps and Desktop clients"
    assert record["status"] == {"errorCode": 3, "failureReason": "invalid_argument"}
    assert record["conditionalAccessStatus"] == "notApplied"
    assert record["latencyMs"] == 1.5
    assert "appliedConditionalAccessPolicies" not in record
