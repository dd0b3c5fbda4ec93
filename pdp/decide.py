"""The one decision path: a SignInContext in, a Decision out. Every way in calls it.

The gRPC API, Envoy's Check and the command line each map their input to a `SignInContext`
once, call `Decider.decide`, and map the `Decision` to their output once, so they cannot
decide differently. `decide` takes the policy set in force once (a reload in the middle of
a call cannot mix two sets), asks pdp's risk assessor (at most one round trip to the risk
store), evaluates at the sign-in's own time (`ctx.time`: the request's time, or the clock
the caller read once when the request had none), and hands the assessor an allowed
sign-in to record when it records only those. A sign-in with no subject or no target is
refused before anything is evaluated. Only domain values pass through here.
"""

from __future__ import annotations

from pdp.context import SignInContext
from pdp.engine.decision import Decision, Verdict
from pdp.engine.evaluate import evaluate
from pdp.errors import InvalidRequest
from pdp.policy_store import PolicyStore
from pdp.risk.assessment import NO_RISK, RiskAssessor


class Decider:
    """Decides sign-ins against whatever policy set `store` holds at the time of the call."""

    def __init__(self, store: PolicyStore, assessor: RiskAssessor | None = None) -> None:
        self.store = store
        self._assessor = assessor

    async def decide(self, ctx: SignInContext) -> Decision:
        """Decide one sign-in; raises InvalidRequest or NoPolicySet."""
        require_subject_and_target(ctx)
        compiled = self.store.current  # read once: a reload mid-call cannot mix two sets
        assessor = self._assessor
        if assessor is None:
            return evaluate(ctx, compiled, NO_RISK, ctx.time)
        ctx = assessor.enrich(ctx)  # geo-IP country feeds country named locations too
        risk = await assessor.assess(ctx, compiled)
        decision = evaluate(ctx, compiled, risk, ctx.time)
        if decision.verdict is Verdict.ALLOW:
            await assessor.record_allowed(ctx, compiled)  # only under RecordPolicy.ALLOWED
        return decision

    def decide_without_risk(self, ctx: SignInContext) -> Decision:
        """`decide` with no risk assessor and no I/O: upstream risk levels only."""
        require_subject_and_target(ctx)
        return evaluate(ctx, self.store.current, NO_RISK, ctx.time)


def require_subject_and_target(ctx: SignInContext) -> None:
    """Refuse a sign-in that names no one signing in, or nothing signed in to.

    Conditional Access decides who reaches what: a request without a subject (a user or a
    service principal) or a target (an application, a user action or an authentication
    context) matches no policy's users or applications, and would be allowed for want of
    a policy, so it is refused as invalid, whichever way it came in.
    """
    if not (ctx.user_id or ctx.service_principal_id):
        raise InvalidRequest(
            "subject", "names neither a user_id nor a service_principal_id: who signs in?"
        )
    if not (ctx.application_id or ctx.user_action or ctx.authentication_contexts):
        raise InvalidRequest(
            "target",
            "names no application_id, user_action or authentication_contexts: a sign-in to what?",
        )
