"""Decision -> EvaluateResponse: the engine's answer in the API's words.

This module owns the mapping from the engine's values (`pdp.engine.decision`) to proto
enums and messages. The tables are built once at import; an engine value missing from a
table is a bug and raises KeyError (an INTERNAL error), never a silent UNSPECIFIED.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Final

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Result, Session, Verdict
from pdp.policy.model import EVERY_TIME, PolicyState
from pdp.risk.assessment import NO_RISK, Detection, Place
from pdp.v1 import pdp_pb2 as pb

VERDICTS: Final[Mapping[Verdict, pb.Decision.ValueType]] = {
    Verdict.ALLOW: pb.DECISION_ALLOW,
    Verdict.CHALLENGE: pb.DECISION_CHALLENGE,
    Verdict.DENY: pb.DECISION_DENY,
}
RESULTS: Final[Mapping[Result, pb.PolicyResult.ValueType]] = {
    Result.SUCCESS: pb.POLICY_RESULT_SUCCESS,
    Result.FAILURE: pb.POLICY_RESULT_FAILURE,
    Result.NOT_APPLIED: pb.POLICY_RESULT_NOT_APPLIED,
    Result.NOT_ENABLED: pb.POLICY_RESULT_NOT_ENABLED,
    Result.REPORT_ONLY_SUCCESS: pb.POLICY_RESULT_REPORT_ONLY_SUCCESS,
    Result.REPORT_ONLY_FAILURE: pb.POLICY_RESULT_REPORT_ONLY_FAILURE,
    Result.REPORT_ONLY_NOT_APPLIED: pb.POLICY_RESULT_REPORT_ONLY_NOT_APPLIED,
    Result.REPORT_ONLY_INTERRUPTED: pb.POLICY_RESULT_REPORT_ONLY_INTERRUPTED,
}
STATES: Final[Mapping[str, pb.PolicyState.ValueType]] = {
    PolicyState.ENABLED: pb.POLICY_STATE_ENABLED,
    PolicyState.DISABLED: pb.POLICY_STATE_DISABLED,
    PolicyState.REPORT_ONLY: pb.POLICY_STATE_ENABLED_FOR_REPORTING_BUT_NOT_ENFORCED,
}
PERSISTENT_BROWSER: Final[Mapping[str, pb.PersistentBrowser.ValueType]] = {
    "always": pb.PERSISTENT_BROWSER_ALWAYS,
    "never": pb.PERSISTENT_BROWSER_NEVER,
}
RISK_LEVELS: Final[Mapping[str, pb.RiskLevel.ValueType]] = {
    "none": pb.RISK_LEVEL_NONE,
    "low": pb.RISK_LEVEL_LOW,
    "medium": pb.RISK_LEVEL_MEDIUM,
    "high": pb.RISK_LEVEL_HIGH,
}
_NO_SESSION: Final = Session()


def to_response(decision: Decision, ctx: SignInContext) -> pb.EvaluateResponse:
    """The EvaluateResponse for `decision` on `ctx` (decided at the sign-in's time)."""
    response = _outcome(decision)
    response.request_id = ctx.request_id
    response.time.CopyFrom(timestamp(ctx.time))
    if _has_risk(decision, ctx):
        response.risk.CopyFrom(_risk(decision, ctx))
    return response


class ResponseWriter:
    """Decision -> serialized EvaluateResponse, reusing the bytes of what repeats.

    A message's serialized fields can be concatenated, so the response is the request id,
    then the decision's own fields (version, verdict, requirements, session, policies,
    messages: the same for every call the engine answers with the same outcome), then the
    time and the risk report. The engine hands out the same requirement, session, policy
    and message objects for the same outcome, so their bytes are kept by the identity of
    those objects (which the entry holds, so the ids stay theirs). The result parses to
    exactly `to_response(decision, ctx)`.
    """

    LIMIT: Final = 4096

    def __init__(self) -> None:
        self._outcomes: dict[tuple[int, int, int, int], tuple[Decision, bytes]] = {}
        self._second = 0
        self._second_bytes = b""  # `seconds = 1` of the Timestamp of the last second written
        self._risks: dict[tuple[str, str, str, bool], bytes] = {}  # reports without detections

    def write(self, decision: Decision, ctx: SignInContext) -> bytes:
        """The serialized EvaluateResponse for `decision` on `ctx`."""
        outcome = self._outcome_bytes(decision) if not ctx.explain else b""
        if not outcome:
            outcome = _outcome(decision).SerializeToString()
        rid = ctx.request_id.encode()
        head = (
            b"\x0a" + _BYTE[len(rid)] + rid  # request_id = 1
            if len(rid) < 0x80
            else _length_delimited(0x0A, rid)
        )
        tail = _length_delimited(0x42, self._timestamp(ctx.time))  # time = 8
        if _has_risk(decision, ctx):
            tail += _length_delimited(0x4A, self._risk_bytes(decision, ctx))  # risk = 9
        return head + outcome + tail

    def _timestamp(self, seconds: float) -> bytes:
        """The Timestamp for epoch `seconds`, serialized; the seconds part kept per second."""
        whole = math.floor(seconds)
        nanos = round((seconds - whole) * 1e9)
        if nanos >= 1_000_000_000:
            whole, nanos = whole + 1, nanos - 1_000_000_000
        if whole != self._second or not self._second_bytes:
            self._second = whole
            self._second_bytes = b"\x08" + _varint(whole) if whole else b""  # seconds = 1
        return self._second_bytes + b"\x10" + _varint(nanos) if nanos else self._second_bytes

    def _risk_bytes(self, decision: Decision, ctx: SignInContext) -> bytes:
        """The RiskReport, serialized; reports without detections are kept by their levels."""
        risk = decision.risk
        if risk.detections:
            return _risk(decision, ctx).SerializeToString()
        key = (ctx.sign_in_risk, risk.sign_in_risk, decision.sign_in_risk, risk.degraded)
        found = self._risks.get(key)
        if found is None:
            found = self._risks[key] = _risk(decision, ctx).SerializeToString()
        return found

    def _outcome_bytes(self, decision: Decision) -> bytes:
        requirements, session = decision.requirements, decision.session
        policies, messages = decision.policies, decision.messages
        key = (id(requirements), id(session), id(policies), id(messages))
        found = self._outcomes.get(key)
        if found is not None:
            kept, data = found
            if (
                kept.requirements is requirements
                and kept.session is session
                and kept.policies is policies
                and kept.messages is messages
                and kept.verdict is decision.verdict
                and kept.policy_version == decision.policy_version
            ):
                return data
        data = _outcome(decision).SerializeToString()
        if len(self._outcomes) >= self.LIMIT:
            self._outcomes.clear()
        self._outcomes[key] = (decision, data)
        return data


def _outcome(decision: Decision) -> pb.EvaluateResponse:
    """The response fields that depend on the decision alone (no id, time or risk)."""
    response = pb.EvaluateResponse(
        policy_version=decision.policy_version,
        decision=VERDICTS[decision.verdict],
        requirements=[
            pb.Requirement(any_of=r.any_of, policy_ids=r.policy_ids) for r in decision.requirements
        ],
        policies=[_policy(p) for p in decision.policies],
        messages=decision.messages,
    )
    if decision.session != _NO_SESSION:
        response.session.CopyFrom(_session(decision.session))
    return response


def _has_risk(decision: Decision, ctx: SignInContext) -> bool:
    return decision.risk is not NO_RISK or ctx.sign_in_risk != "none"


def _length_delimited(tag: int, data: bytes) -> bytes:
    """One length-delimited protobuf field (`tag` already holds the field number and type)."""
    size = len(data)
    return _BYTE[tag] + (_BYTE[size] if size < 0x80 else _varint(size)) + data


def _varint(value: int) -> bytes:
    """A protobuf varint; negative int64 values as their 64-bit two's complement."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return _BYTE[value]
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_BYTE: Final = tuple(bytes((i,)) for i in range(256))


def _risk(decision: Decision, ctx: SignInContext) -> pb.RiskReport:
    risk = decision.risk
    return pb.RiskReport(
        upstream_sign_in=RISK_LEVELS[ctx.sign_in_risk],
        detected_sign_in=RISK_LEVELS[risk.sign_in_risk],
        effective_sign_in=RISK_LEVELS[decision.sign_in_risk],
        detections=[_detection(d) for d in risk.detections],
        degraded=risk.degraded,
    )


def _detection(detection: Detection) -> pb.RiskDetection:
    out = pb.RiskDetection(
        kind=detection.kind,
        level=RISK_LEVELS[detection.level],
        distance_km=detection.distance_km,
        speed_kmh=detection.speed_kmh,
    )
    if detection.previous is not None:
        out.previous.CopyFrom(_place(detection.previous))
    if detection.current is not None:
        out.current.CopyFrom(_place(detection.current))
    return out


def _place(place: Place) -> pb.SignInPlace:
    return pb.SignInPlace(
        time=timestamp(place.time),
        country=place.country,
        latitude=place.latitude,
        longitude=place.longitude,
        accuracy_radius_km=place.accuracy_radius_km,
        ip_address=place.ip_address,
    )


def timestamp(seconds: float) -> Timestamp:
    """Epoch seconds as a Timestamp (nanoseconds rounded)."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return Timestamp(seconds=whole, nanos=nanos)


@functools.lru_cache(maxsize=8192)
def _policy(outcome: PolicyOutcome) -> pb.AppliedPolicy:
    """The AppliedPolicy message of an outcome (outcomes repeat: built once, then copied)."""
    return pb.AppliedPolicy(
        id=outcome.id,
        display_name=outcome.display_name,
        state=STATES[outcome.state],
        result=RESULTS[outcome.result],
        reasons=outcome.reasons,
        grant_controls=outcome.grant_controls,
        session_controls=outcome.session_controls,
    )


def _session(session: Session) -> pb.SessionControls:
    out = pb.SessionControls(
        application_enforced_restrictions=session.application_enforced_restrictions,
        cloud_app_security=session.cloud_app_security or "",
        continuous_access_evaluation=session.continuous_access_evaluation or "",
        secure_sign_in_session=session.secure_sign_in_session,
        disable_resilience_defaults=session.disable_resilience_defaults,
    )
    if session.persistent_browser is not None:
        out.persistent_browser = PERSISTENT_BROWSER[session.persistent_browser]
    _frequency(out.sign_in_frequency, session.sign_in_frequency)
    _frequency(out.secondary_sign_in_frequency, session.secondary_sign_in_frequency)
    return out


def _frequency(out: pb.SignInFrequency, seconds: int | None) -> None:
    """Set a SignInFrequency (every time, or a period) when there is one."""
    if seconds == EVERY_TIME:
        out.every_time = True
    elif seconds is not None:
        out.period.CopyFrom(Duration(seconds=seconds))
