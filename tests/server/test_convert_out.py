"""Tests for pdp.server.convert_out: Decision -> EvaluateResponse."""

from __future__ import annotations

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Requirement, Result, Session, Verdict
from pdp.policy.model import EVERY_TIME, PolicyState
from pdp.risk.assessment import NO_RISK, Assessment, Detection, Place
from pdp.server.convert_out import timestamp, to_response
from pdp.v1 import pdp_pb2 as pb

CTX = SignInContext(request_id="r", time=0.0)


def decision(**changes: object) -> Decision:
    """An ALLOW decision with nothing applied, with `changes` applied."""
    values: dict[str, object] = {
        "verdict": Verdict.ALLOW,
        "requirements": (),
        "session": Session(),
        "policies": (),
        "messages": (),
        "policy_version": "v1",
        "sign_in_risk": "none",
        "risk": NO_RISK,
    }
    values.update(changes)
    return Decision(**values)  # type: ignore[arg-type]


def test_a_challenge_carries_requirements_policies_and_messages() -> None:
    """Every part of a decision reaches the response, in the engine's order."""
    outcome = PolicyOutcome(
        id="p1",
        display_name="MFA",
        state="enabled",
        result=Result.FAILURE,
        grant_controls=("mfa",),
        session_controls=("signInFrequency",),
    )
    skipped = PolicyOutcome(
        id="p2",
        display_name="Report-only",
        state="enabledForReportingButNotEnforced",
        result=Result.REPORT_ONLY_NOT_APPLIED,
        reasons=("users", "location"),
    )
    got = to_response(
        decision(
            verdict=Verdict.CHALLENGE,
            requirements=(Requirement(("mfa", "authenticationStrength:x"), ("p1",)),),
            policies=(outcome, skipped),
            messages=("Complete multifactor authentication to continue.",),
        ),
        SignInContext(request_id="req-1", time=1_700_000_000.0),
    )
    assert got == pb.EvaluateResponse(
        request_id="req-1",
        policy_version="v1",
        decision=pb.DECISION_CHALLENGE,
        requirements=[
            pb.Requirement(any_of=["mfa", "authenticationStrength:x"], policy_ids=["p1"])
        ],
        policies=[
            pb.AppliedPolicy(
                id="p1",
                display_name="MFA",
                state=pb.POLICY_STATE_ENABLED,
                result=pb.POLICY_RESULT_FAILURE,
                grant_controls=["mfa"],
                session_controls=["signInFrequency"],
            ),
            pb.AppliedPolicy(
                id="p2",
                display_name="Report-only",
                state=pb.POLICY_STATE_ENABLED_FOR_REPORTING_BUT_NOT_ENFORCED,
                result=pb.POLICY_RESULT_REPORT_ONLY_NOT_APPLIED,
                reasons=["users", "location"],
            ),
        ],
        messages=["Complete multifactor authentication to continue."],
        time=Timestamp(seconds=1_700_000_000),
    )
    assert not got.HasField("session")


@pytest.mark.parametrize(
    ("verdict", "wanted"),
    [
        (Verdict.ALLOW, pb.DECISION_ALLOW),
        (Verdict.CHALLENGE, pb.DECISION_CHALLENGE),
        (Verdict.DENY, pb.DECISION_DENY),
    ],
)
def test_every_verdict_has_its_decision(verdict: Verdict, wanted: int) -> None:
    """ALLOW, CHALLENGE and DENY map one to one."""
    assert to_response(decision(verdict=verdict), CTX).decision == wanted


def test_every_result_has_a_distinct_proto_value() -> None:
    """No engine result falls through to UNSPECIFIED or shares a proto value with another."""
    results = {
        to_response(decision(policies=(PolicyOutcome("p", "P", "enabled", r),)), CTX)
        .policies[0]
        .result
        for r in Result
    }
    assert len(results) == len(Result)
    assert pb.POLICY_RESULT_UNSPECIFIED not in results


@pytest.mark.parametrize(
    ("state", "wanted"),
    [
        (PolicyState.ENABLED, pb.POLICY_STATE_ENABLED),
        (PolicyState.DISABLED, pb.POLICY_STATE_DISABLED),
        (PolicyState.REPORT_ONLY, pb.POLICY_STATE_ENABLED_FOR_REPORTING_BUT_NOT_ENFORCED),
    ],
)
def test_every_policy_state_has_its_proto_value(state: PolicyState, wanted: int) -> None:
    """The Graph state strings map one to one onto PolicyState."""
    outcome = PolicyOutcome("p", "P", state.value, Result.NOT_ENABLED)
    assert to_response(decision(policies=(outcome,)), CTX).policies[0].state == wanted


def test_session_controls_every_time_and_most_settings() -> None:
    """EVERY_TIME becomes every_time=true; the other session controls copy across."""
    session = Session(
        sign_in_frequency=EVERY_TIME,
        persistent_browser="never",
        application_enforced_restrictions=True,
        cloud_app_security="blockDownloads",
        continuous_access_evaluation="strictLocation",
        secure_sign_in_session=True,
        disable_resilience_defaults=True,
    )
    got = to_response(decision(session=session), CTX).session
    assert got == pb.SessionControls(
        sign_in_frequency=pb.SignInFrequency(every_time=True),
        persistent_browser=pb.PERSISTENT_BROWSER_NEVER,
        application_enforced_restrictions=True,
        cloud_app_security="blockDownloads",
        continuous_access_evaluation="strictLocation",
        secure_sign_in_session=True,
        disable_resilience_defaults=True,
    )


def test_session_sign_in_frequency_period_is_a_duration() -> None:
    """A frequency in seconds becomes SignInFrequency.period; persistent browser always."""
    session = Session(sign_in_frequency=8 * 3600, persistent_browser="always")
    got = to_response(decision(session=session), CTX).session
    assert got.sign_in_frequency.WhichOneof("value") == "period"
    assert got.sign_in_frequency.period == Duration(seconds=28_800)
    assert got.persistent_browser == pb.PERSISTENT_BROWSER_ALWAYS


@pytest.mark.parametrize(
    ("seconds", "wanted"),
    [
        (0.0, Timestamp(seconds=0)),
        (1_740_821_400.25, Timestamp(seconds=1_740_821_400, nanos=250_000_000)),
        (-1.5, Timestamp(seconds=-2, nanos=500_000_000)),
        (9.9999999999, Timestamp(seconds=10)),
    ],
)
def test_timestamps_from_epoch_seconds(seconds: float, wanted: Timestamp) -> None:
    """Epoch floats become valid Timestamps: nanos in [0, 1e9), rounding carried over."""
    assert timestamp(seconds) == wanted


def test_risk_report_carries_levels_and_detection_evidence() -> None:
    """A detection's evidence (places, km, km/h) and all three levels reach the response."""
    paris = Place(1_700_000_000.0, 48.86, 2.35, 20.0, "FR", "81.2.69.1")
    new_york = Place(1_700_003_600.0, 40.71, -74.0, 10.0, "US", "2001:db8::1")
    risk = Assessment(
        sign_in_risk="high",
        detections=(Detection("impossibleTravel", "high", paris, new_york, 5807.0, 5807.0),),
    )
    ctx = SignInContext(request_id="r", time=0.0, sign_in_risk="low")
    got = to_response(decision(risk=risk, sign_in_risk="high"), ctx).risk
    assert got.upstream_sign_in == pb.RISK_LEVEL_LOW
    assert got.detected_sign_in == pb.RISK_LEVEL_HIGH
    assert got.effective_sign_in == pb.RISK_LEVEL_HIGH
    (detection,) = got.detections
    assert detection.kind == "impossibleTravel"
    assert detection.previous.country == "FR"
    assert detection.current.ip_address == "2001:db8::1"
    assert detection.speed_kmh == 5807.0


def test_no_risk_report_when_nothing_is_risky() -> None:
    """Without upstream risk or pdp detections the response carries no risk report."""
    assert not to_response(decision(), CTX).HasField("risk")
