"""The audit record's shape and bounds: every field cut to size, every line strict JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import strict_json, strict_lines, truncated

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Requirement, Result, Session, Verdict
from pdp.errors import ErrorCode
from pdp.observability.audit import AuditLog
from pdp.observability.audit_bounds import (
    MARKER,
    MAX_DETECTIONS,
    MAX_LINE_BYTES,
    MAX_MEMBERS,
    MAX_POLICIES,
    MAX_REQUIREMENTS,
    MAX_TEXT,
    RecordBounds,
)
from pdp.observability.audit_record import AuditLine
from pdp.risk.assessment import Assessment, Detection, Place
from pdp.server.convert_in import describe
from pdp.v1 import pdp_pb2 as pb

NAN, INF = float("nan"), float("inf")
TEXT_FIELDS = {  # SignInContext field -> the record field it is written to
    "request_id": "id",
    "user_id": "userId",
    "service_principal_id": "servicePrincipalId",
    "application_id": "appId",
    "ip_address": "ipAddress",
    "country": "location",
    "device_id": "deviceDetail",
}


def policy(n: int, name: str = "", **fields: Any) -> PolicyOutcome:
    """An enforced policy that succeeded."""
    return PolicyOutcome(
        id=f"p-{n}",
        display_name=name or f"Policy {n}",
        state="enabled",
        result=Result.SUCCESS,
        grant_controls=("mfa",),
        **fields,
    )


def decision(**fields: Any) -> Decision:
    """An allow decision of one policy, with `fields` replaced."""
    base = Decision(
        verdict=Verdict.ALLOW,
        requirements=(),
        session=Session(),
        policies=(policy(1),),
        messages=(),
        policy_version="v1",
        sign_in_risk="none",
        risk=Assessment(),
    )
    return dataclasses.replace(base, **fields)


def render(ctx: SignInContext, dec: Decision | None = None) -> tuple[bytes, dict[str, Any]]:
    """The bounded line of one call, and it parsed strictly."""
    data = RecordBounds(AuditLine()).render(
        ctx,
        dec,
        created=1.5,
        latency_s=0.001,
        failure=None if dec is not None else ErrorCode.INVALID_ARGUMENT,
    )
    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    return data, strict_json(data.decode("utf-8"))


def sign_in(**fields: Any) -> SignInContext:
    """A sign-in of user u-1 to app a-1 with `fields` set."""
    values: dict[str, Any] = {"request_id": "r-1", "user_id": "u-1", "application_id": "a-1"}
    return SignInContext(time=1.0, **{**values, **fields})


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


def test_a_record_within_bounds_is_the_line_as_formatted() -> None:
    """Nothing over a bound: byte for byte AuditLine's line, no truncatedFields, not counted."""
    ctx, dec = sign_in(ip_address="198.51.100.7"), decision()
    before = truncated()
    data, record = render(ctx, dec)
    expected = AuditLine()(ctx, dec, created=1.5, latency_s=0.001, failure=None)
    assert data == expected.encode()
    assert "truncatedFields" not in record
    assert truncated() == before


@pytest.mark.parametrize(("field", "record_field"), TEXT_FIELDS.items())
def test_every_string_of_the_sign_in_is_cut_to_max_text_with_a_marker(
    field: str, record_field: str
) -> None:
    """A 1 MB value (as a way in that forgot to cut it would pass it) is cut and named."""
    before = truncated()
    value = "x" * (1024 * 1024)
    data, record = render(sign_in(**{field: value}))
    written = json.dumps(record[record_field])
    assert f'"{"x" * MAX_TEXT}{MARKER}"' in written
    assert "x" * (MAX_TEXT + 1) not in written
    assert record["truncatedFields"] == [record_field]
    assert len(data) < 8 * 1024
    assert truncated() == before + 1


def test_control_characters_escaped_six_fold_stay_within_the_line_bound() -> None:
    """1 MB of control characters in each string (six bytes each in JSON): under the bound."""
    nasty = "\x01" * (1024 * 1024)
    ctx = SignInContext(request_id=nasty, time=1.0, **dict.fromkeys(list(TEXT_FIELDS)[1:], nasty))
    data, record = render(ctx, decision(policy_version=nasty))
    assert len(data) <= MAX_LINE_BYTES
    assert record["userId"] == "\x01" * MAX_TEXT + MARKER
    assert "policyVersion" in record["truncatedFields"]


def test_lists_are_capped_and_their_members_cut() -> None:
    """Policies, requirements, detections and their lists are capped; the record says so."""
    many = tuple(f"c{i}" for i in range(MAX_MEMBERS + 10))
    first = policy(0, "n" * 5000, session_controls=many)
    dec = decision(
        policies=(first, *(policy(i) for i in range(1, MAX_POLICIES + 5))),
        requirements=tuple(Requirement(many, ("p-1",)) for _ in range(MAX_REQUIREMENTS + 1)),
        risk=Assessment("high", tuple(Detection("impossibleTravel", "high") for _ in range(40))),
    )
    data, record = render(sign_in(), dec)
    policies = record["appliedConditionalAccessPolicies"]
    assert len(policies) == MAX_POLICIES
    assert policies[0]["displayName"] == "n" * MAX_TEXT + MARKER
    assert policies[0]["enforcedSessionControls"] == list(many[:MAX_MEMBERS])
    assert len(record["requirements"]) == MAX_REQUIREMENTS
    assert all(r["anyOf"] == list(many[:MAX_MEMBERS]) for r in record["requirements"])
    assert len(record["riskDetections"]) == MAX_DETECTIONS
    assert record["truncatedFields"] == [
        "appliedConditionalAccessPolicies",
        "requirements",
        "riskDetections",
    ]
    assert len(data) <= MAX_LINE_BYTES


def test_the_worst_record_is_still_one_line_under_the_line_bound() -> None:
    """Every string maximal and escaped, every list full: the lists go, the line stays bounded."""
    nasty = "\x02" * (MAX_TEXT + 10)
    members = (nasty,) * MAX_MEMBERS
    place = Place(1.0, 1.0, 1.0, 1.0, nasty, nasty)
    dec = decision(
        policies=tuple(
            dataclasses.replace(policy(i, nasty), id=nasty, grant_controls=members)
            for i in range(MAX_POLICIES)
        ),
        requirements=(Requirement(members, members),) * MAX_REQUIREMENTS,
        risk=Assessment("high", (Detection(nasty, nasty, place, place),) * MAX_DETECTIONS),
        policy_version=nasty,
    )
    ctx = SignInContext(request_id=nasty, time=1.0, **dict.fromkeys(list(TEXT_FIELDS)[1:], nasty))
    data, record = render(ctx, dec)
    assert len(data) <= MAX_LINE_BYTES
    assert {"appliedConditionalAccessPolicies", "requirements", "riskDetections"} <= set(
        record["truncatedFields"]
    )
    assert record["decision"] == "allow"
    assert record["userId"] == "\x02" * MAX_TEXT + MARKER


def test_numbers_that_are_not_finite_are_left_out_never_written_bare() -> None:
    """NaN and Infinity coordinates and distances: the line parses with a strict parser."""
    weird = Place(time=NAN, latitude=NAN, longitude=INF, accuracy_radius_km=NAN, country="FR",
                  ip_address="198.51.100.7")  # fmt: skip
    dec = decision(
        risk=Assessment("high", (Detection("impossibleTravel", "high", weird, weird, NAN, INF),))
    )
    for lat, lon in ((NAN, 2.0), (1.0, INF), (-INF, NAN)):
        _, record = render(sign_in(country="FR", latitude=lat, longitude=lon), dec)
        assert record["location"] == {"countryOrRegion": "FR"}
        [detection] = record["riskDetections"]
        assert detection["distanceKm"] is None
        assert detection["speedKmh"] is None
        assert detection["current"]["latitude"] is None
        assert detection["current"]["time"] is None
    _, record = render(sign_in(), dec)  # no geo from the gateway: where pdp placed it
    assert record["location"] == {"countryOrRegion": "FR"}


def test_characters_line_readers_split_at_are_written_escaped() -> None:
    """U+2028, U+2029 and U+0085 are valid raw in JSON, but str.splitlines splits there."""
    value = "a\u2028b\u2029c\x85d"
    data, record = render(sign_in(user_id=value, device_id=value))
    assert len(data.decode("utf-8").splitlines()) == 1
    assert record["userId"] == value
    assert b"\\u2028" in data


def test_a_lone_surrogate_cannot_stop_the_line_being_written() -> None:
    """No way in lets one through; if one came, the line is still valid UTF-8 and JSON."""
    data, record = render(sign_in(device_id="d-\udc80"))
    assert record["deviceDetail"]["deviceId"] == "d-?"
    data.decode("utf-8")  # strict


def test_every_line_the_writer_writes_parses_strictly(tmp_path: Path) -> None:
    """NaN, huge and odd values through the real writer: the file is strict JSON lines."""
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(path))
    values: list[dict[str, Any]] = [
        {"latitude": NAN, "longitude": NAN},
        {"latitude": INF, "longitude": -INF},
        {"user_id": "\n" * 100_000},
        {"device_id": '"},{"x":1'},
        {},
    ]
    for n, fields in enumerate(values):
        ctx = dataclasses.replace(sign_in(**fields), request_id=str(n))
        audit.put(ctx, decision(), 1.0, 0.001, None)
    audit.close()
    records = strict_lines(path.read_text("utf-8"))
    assert [r["id"] for r in records] == [str(n) for n in range(len(values))]
    assert math.isclose(records[4]["latencyMs"], 1.0)
