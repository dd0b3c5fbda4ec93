"""`pdp report`: streaming audit logs into posture figures, windows, tolerance, output."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from pdp.tooling.aggregate import Aggregator, window_bound
from pdp.tooling.audit_reader import ReadStats, read_records
from pdp.tooling.posture import posture
from pdp.tooling.sketches import OTHER, Capped, Distinct

README = Path(__file__).resolve().parents[2] / "README.md"
DEV = "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01"
MAIL = "00000002-0000-0ff1-ce00-000000000000"
AI10 = {"id": "a10", "displayName": "AI10 Legacy clients: block", "result": "reportOnlyFailure"}


def readme_line() -> str:
    """The audit line the README shows (pdp's own output for the walk-through request)."""
    (line,) = [
        x
        for x in README.read_text(encoding="utf-8").splitlines()
        if x.startswith('{"createdDateTime"')
    ]
    return line


def record(when: str, user: str, app: str, decision: str, **extra: Any) -> str:
    """An audit line with the fields reports read (and one they do not)."""
    body: dict[str, Any] = {
        "createdDateTime": when,
        "userId": user,
        "appId": app,
        "status": {"errorCode": 0},
        "conditionalAccessStatus": "success",
        "decision": decision,
        "riskDetections": [],
        "riskDegraded": False,
        "appliedConditionalAccessPolicies": [],
        "somethingNew": {"pdp": "adds fields over time"},
    }
    body.update(extra)
    return json.dumps(body)


LINES = [
    readme_line(),  # 2026-11-21T23:58:41.211Z, ada, challenge, 4 policies
    record(
        "2026-11-22T08:00:00.000Z", "linus", MAIL, "allow", appliedConditionalAccessPolicies=[AI10]
    ),
    record(
        "2026-11-22T08:05:00.000Z", "linus", MAIL, "allow", appliedConditionalAccessPolicies=[AI10]
    ),
    record(
        "2026-11-22T08:10:00.000Z", "grace", MAIL, "allow", appliedConditionalAccessPolicies=[AI10]
    ),
    record(
        "2026-11-22T09:00:00.000Z",
        "ada@contoso.example",
        DEV,
        "deny",
        riskDegraded=True,
        riskDetections=[
            {
                "riskEventType": "impossibleTravel",
                "riskLevel": "high",
                "previous": {"countryOrRegion": "FR"},
                "current": {"countryOrRegion": "US"},
            },
            {"riskEventType": "unfamiliarLocation", "riskLevel": "low"},
        ],
    ),
    json.dumps(
        {
            "createdDateTime": "2026-11-22T09:30:00.000Z",
            "id": "bad-1",
            "userId": "eve",
            "status": {"errorCode": 3, "failureReason": "invalid_argument"},
            "conditionalAccessStatus": "notApplied",
            "decision": "",
        }
    ),
    "this is not JSON",
    "",
    json.dumps({"createdDateTime": "2026-11-22T10:00:00Z", "userId": 42}),  # impossible type
    record("2026-11-25T00:00:00.000Z", "late", DEV, "allow"),
]


def report_of(lines: list[str], tmp_path: Path, **window: str) -> dict[str, Any]:
    """The report document of `lines` written to a file."""
    log = tmp_path / "audit.jsonl"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    agg = Aggregator(**window)
    stats = ReadStats()
    for item in read_records([str(log)], stats):
        agg.add(item)
    agg.finish()
    stats.unreadable += agg.parts.unreadable
    return posture(agg, stats, [log.name])


def test_figures_of_a_small_log(tmp_path: Path) -> None:
    """Decisions, per-policy results, report-only impact, friction, travel, failures."""
    report = report_of(LINES, tmp_path)
    assert report["records"]["lines"] == len(LINES)
    assert report["records"]["unreadable"] == 2
    assert report["records"]["unreadableExamples"][0].endswith(
        "audit.jsonl:7: JSON is malformed: invalid character (byte 4)"
    )
    assert report["records"]["failedCalls"] == {"invalid_argument": 1}
    assert report["decisions"] == {"allow": 4, "challenge": 1, "deny": 1}
    assert report["users"] == 4  # ada, linus, grace, late (the failed call is not a sign-in)
    (ai10,) = report["reportOnly"]
    assert ai10["wouldBlock"] == 3
    assert ai10["wouldBlockUsers"] == 2
    assert ai10["apps"] == [{"appId": MAIL, "signIns": 3}]
    by_id = {p["id"]: p for p in report["policies"]}
    assert by_id["a1000000-0000-4000-8000-000000000001"]["results"] == {"failure": 1}
    assert by_id["a1000000-0000-4000-8000-000000000003"]["results"] == {"success": 1}
    assert report["travel"] == [
        {"kind": "impossibleTravel", "from": "FR", "to": "US", "detections": 1}
    ]
    assert report["degraded"] == {"decisions": 1, "share": round(1 / 6, 4)}
    dev = next(f for f in report["friction"] if f["appId"] == DEV)
    assert (dev["signIns"], dev["challenged"], dev["denied"]) == (3, 1, 1)
    assert report["window"]["first"] == "2026-11-21T23:58:41Z"
    assert report["window"]["last"] == "2026-11-25T00:00:00Z"


def test_a_time_window(tmp_path: Path) -> None:
    """Since is inclusive, until exclusive; the rest is counted as outside."""
    report = report_of(LINES, tmp_path, since="2026-11-22T08:05:00", until="2026-11-22T09:00:00")
    assert report["decisions"] == {"allow": 2, "challenge": 0, "deny": 0}
    assert report["records"]["outsideWindow"] == 5


def test_window_bounds() -> None:
    """RFC 3339 with any offset, or a duration before now; a time without offset is refused."""
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert window_bound("24h", now) == "2026-11-21T12:00:00"
    assert window_bound("7d", now) == "2026-11-15T12:00:00"
    assert window_bound("2026-11-22T10:00:00+02:00", now) == "2026-11-22T08:00:00"
    with pytest.raises(ValueError, match="offset"):
        window_bound("2026-11-22T10:00:00", now)


def test_records_with_other_time_formats_and_spellings(tmp_path: Path) -> None:
    """Entra-style stamps without milliseconds or with offsets, and spaced JSON, read alike."""
    lines = [
        '{"createdDateTime": "2026-11-22T10:00:00+01:00", "status": {"errorCode": 0}, '
        '"decision": "deny", "userId": "a"}',
        '{"createdDateTime": "2026-11-22T09:30:00Z", "decision": "allow", "userId": "b", '
        '"status": null, "appliedConditionalAccessPolicies": null, "riskDetections": null}',
    ]
    report = report_of(lines, tmp_path, since="2026-11-22T09:00:00")
    assert report["decisions"] == {"allow": 1, "challenge": 0, "deny": 1}
    assert report["window"]["first"] == "2026-11-22T09:00:00Z"


def test_folding_outcomes_keeps_figures_exact(tmp_path: Path) -> None:
    """Folding the outcome table early (as memory bounds demand) changes no figure."""
    lines = [
        record(
            f"2026-11-22T08:{i % 60:02d}:00Z",
            f"u{i % 7}",
            f"app-{i % 13}",
            ("allow", "challenge", "deny")[i % 3],
            appliedConditionalAccessPolicies=[AI10],
        )
        for i in range(300)
    ]
    plain = report_of(lines, tmp_path)
    Aggregator.OUTCOME_LIMIT = 5
    try:
        folded = report_of(lines, tmp_path)
    finally:
        Aggregator.OUTCOME_LIMIT = 200_000
    assert folded == plain


def test_bounded_counters() -> None:
    """Distinct is exact below its limit and within 3 % above it; Capped folds late keys."""
    small = Distinct(limit=100)
    for i in range(50):
        small.add(f"user{i % 40}")
    assert (small.count(), small.estimated) == (40, False)
    big = Distinct(limit=1000)
    for i in range(50_000):
        big.add(f"user{i}")
    assert big.estimated
    assert abs(big.count() - 50_000) / 50_000 < 0.03
    capped = Capped(limit=2)
    for key in ("a", "b", "a", "c", "d"):
        capped.add(key)
    assert capped.counts == {"a": 2, "b": 1, OTHER: 2}


def test_cli_formats_gzip_and_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Markdown by default, JSON and HTML on request; .gz files and - (stdin) are read."""
    packed = tmp_path / "audit.jsonl.gz"
    with gzip.open(packed, "wt", encoding="utf-8") as out:
        out.write("\n".join(LINES) + "\n")
    assert main(["report", str(packed)]) == 0
    text = capsys.readouterr().out
    assert "| AI10 Legacy clients: block | 3 | 2 | 0 | 0 |" in text
    assert "6 decisions for 4 users" in text
    assert "1 failed calls (invalid_argument 1)" in text
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\n".join(LINES).encode())))
    assert main(["report", "-", "--format", "json", "--since", "2026-11-22T00:00:00Z"]) == 0
    assert json.loads(capsys.readouterr().out)["decisions"]["challenge"] == 0
    assert main(["report", str(packed), "--since", "yesterday"]) == 2
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
