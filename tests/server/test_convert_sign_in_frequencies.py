"""The second-factor sign-in frequency through the API: its request time and session answer."""

from __future__ import annotations

import pytest
from google.protobuf import json_format

from pdp.engine.decision import Decision, Session, Verdict
from pdp.errors import InvalidRequest
from pdp.policy.model import EVERY_TIME
from pdp.risk.assessment import NO_RISK
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb


def test_secondary_authenticated_at_is_read_as_epoch_seconds() -> None:
    """authentication.secondary_authenticated_at becomes the context's epoch seconds."""
    request = json_format.ParseDict(
        {"authentication": {"secondaryAuthenticatedAt": "2026-05-01T10:30:00Z"}},
        pb.EvaluateRequest(),
    )
    ctx = to_context(request, 0.0)
    assert ctx.secondary_authenticated_at == 1_777_631_400.0
    assert to_context(pb.EvaluateRequest(), 0.0).secondary_authenticated_at is None


def test_an_out_of_range_secondary_time_is_invalid_argument() -> None:
    """A timestamp outside the proto range names authentication.secondary_authenticated_at."""
    request = pb.EvaluateRequest()
    request.authentication.secondary_authenticated_at.seconds = 10**15
    with pytest.raises(InvalidRequest) as info:
        to_context(request, 0.0)
    assert info.value.field == "authentication.secondary_authenticated_at"


def _decision(session: Session) -> Decision:
    return Decision(Verdict.ALLOW, (), session, (), (), "v", "none", NO_RISK)


def test_full_and_second_factor_frequencies_are_separate_fields() -> None:
    """A full 4 h frequency and a second-factor everyTime are two distinct session answers."""
    ctx = to_context(pb.EvaluateRequest(), 0.0)
    session = Session(sign_in_frequency=4 * 3600, secondary_sign_in_frequency=EVERY_TIME)
    got = to_response(_decision(session), ctx).session
    assert got.sign_in_frequency.period.seconds == 4 * 3600
    assert got.secondary_sign_in_frequency.every_time
    only = to_response(_decision(Session(secondary_sign_in_frequency=3600)), ctx).session
    assert not only.HasField("sign_in_frequency")
    assert only.secondary_sign_in_frequency.period.seconds == 3600
