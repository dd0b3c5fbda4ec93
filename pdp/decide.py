"""The one decision path: EvaluateRequest in, EvaluateResponse out.

The gRPC service, `pdp evaluate` and any later transport (Envoy ext_authz) call
`Decider.decide`, so they cannot disagree: validate the request into a SignInContext, take
the policy set in force once, ask pdp's risk assessor (at most one round trip to the risk
store), evaluate, convert the Decision back. The evaluation time is the request's own time
when it carries one (a replayed request decides the same way again), else `now`, the
caller's single clock read.
"""

from __future__ import annotations

from pdp.context import SignInContext
from pdp.engine.decision import Verdict
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet
from pdp.policy_store import PolicyStore
from pdp.risk.assessment import NO_RISK, Assessment, RiskAssessor
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb


class Decider:
    """Decides requests against whatever policy set `store` holds at the time of the call."""

    def __init__(self, store: PolicyStore, assessor: RiskAssessor | None = None) -> None:
        self._store = store
        self._assessor = assessor

    async def decide(self, request: pb.EvaluateRequest, now: float) -> pb.EvaluateResponse:
        """Decide one request; raises InvalidRequest or NoPolicySet."""
        ctx = to_context(request, now)
        compiled = self._store.current  # read once: a reload mid-call cannot mix two sets
        assessor = self._assessor
        if assessor is None:
            return _respond(ctx, compiled, NO_RISK)
        ctx = assessor.enrich(ctx)  # geo-IP country feeds country named locations too
        risk = await assessor.assess(ctx, compiled)
        decision = evaluate(ctx, compiled, risk, ctx.time)
        if decision.verdict is Verdict.ALLOW:
            await assessor.record_allowed(ctx, compiled)  # only under RecordPolicy.ALLOWED
        return to_response(decision, ctx, ctx.time)

    def decide_without_risk(self, request: pb.EvaluateRequest, now: float) -> pb.EvaluateResponse:
        """`decide` with no risk assessor and no I/O: upstream risk levels only."""
        ctx = to_context(request, now)
        return _respond(ctx, self._store.current, NO_RISK)


def _respond(
    ctx: SignInContext, compiled: CompiledPolicySet, risk: Assessment
) -> pb.EvaluateResponse:
    decision = evaluate(ctx, compiled, risk, ctx.time)
    return to_response(decision, ctx, ctx.time)
