"""The examples/ai-workspace policies decide the README walk-through requests as documented."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "examples" / "ai-workspace"
REQUESTS = ROOT / "examples" / "requests"

# request file -> (decision, {policy display-name prefix: result}) as the README shows them.
EXPECTED = {
    "engineer-prod-from-office.json": (
        "DECISION_ALLOW",
        {"AI01": "SUCCESS", "AI03": "SUCCESS", "AI06": "SUCCESS"},
    ),
    "engineer-prod-from-home.json": (
        "DECISION_DENY",
        {"AI01": "SUCCESS", "AI03": "SUCCESS", "AI04": "FAILURE", "AI06": "SUCCESS"},
    ),
    "engineer-dev-from-home-password-only.json": (
        "DECISION_CHALLENGE",
        {"AI01": "FAILURE", "AI03": "SUCCESS", "AI05": "FAILURE", "AI07": "SUCCESS"},
    ),
    "engineer-dev-unmanaged-laptop.json": (
        "DECISION_DENY",
        {"AI01": "SUCCESS", "AI03": "FAILURE", "AI07": "SUCCESS"},
    ),
    "analyst-dev-risky-sign-in.json": (
        "DECISION_CHALLENGE",
        {"AI02": "FAILURE", "AI03": "SUCCESS", "AI07": "SUCCESS", "AI11": "FAILURE"},
    ),
    "pipeline-from-outside-runners.json": ("DECISION_DENY", {"AI09": "FAILURE"}),
    "legacy-mail-client.json": ("DECISION_ALLOW", {"AI10": "REPORT_ONLY_FAILURE"}),
}


def test_every_example_request_is_pinned() -> None:
    """Each request file under examples/requests has an expected decision here."""
    assert sorted(p.name for p in REQUESTS.glob("*.json")) == sorted(EXPECTED)
    assert sorted(p.name for p in (REQUESTS / "travel").glob("*.json")) == sorted(TRAVEL)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_request_decision(name: str) -> None:
    """`pdp evaluate` gives the walk-through's decision and per-policy results."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pdp",
            "evaluate",
            "--policies",
            str(POLICIES),
            "--request",
            str(REQUESTS / name),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    response = json.loads(out)
    decision, results = EXPECTED[name]
    assert response["decision"] == decision
    got = {
        p["displayName"][:4]: p["result"].removeprefix("POLICY_RESULT_")
        for p in response["policies"]
    }
    assert got == results


def test_example_policies_load_without_diagnostics() -> None:
    """The example policy set is clean: `pdp validate` reports no errors or warnings."""
    out = subprocess.run(
        [sys.executable, "-m", "pdp", "validate", "--policies", str(POLICIES)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "0 errors, 0 warnings" in out


# The impossible-travel walk-through: one user, four sign-ins, one shared risk history.
TRAVEL = {
    "1-paris.json": ("DECISION_ALLOW", []),
    "2-new-york-one-hour-later.json": ("DECISION_DENY", [("impossibleTravel", "RISK_LEVEL_HIGH")]),
    "3-lyon-next-day.json": ("DECISION_ALLOW", []),
    "4-berlin-one-hour-after-lyon.json": (
        "DECISION_ALLOW",
        [("unlikelyTravel", "RISK_LEVEL_MEDIUM")],
    ),
}


def test_travel_sequence_detects_impossible_and_unlikely_travel() -> None:
    """Several --request files share one history: New York after Paris is blocked."""
    files = [str(REQUESTS / "travel" / name) for name in sorted(TRAVEL)]
    out = subprocess.run(
        [sys.executable, "-m", "pdp", "evaluate", "--policies", str(POLICIES)]
        + [arg for f in files for arg in ("--request", f)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    responses = json.loads(out)
    got = [
        (
            r["decision"],
            [(d["kind"], d["level"]) for d in r.get("risk", {}).get("detections", [])],
        )
        for r in responses
    ]
    assert got == [TRAVEL[name] for name in sorted(TRAVEL)]
    berlin = {p["displayName"][:4]: p["result"] for p in responses[3]["policies"]}
    assert berlin["AI11"] == "POLICY_RESULT_SUCCESS"  # MFA at medium risk, met by the push
