"""The combining rule: from the policies that apply to one decision.

1. Disabled policies are not evaluated (notEnabled). Report-only policies are evaluated
   and reported with reportOnly* results, and never change the decision.
2. A policy applies when every configured condition matches; in each condition an
   exclude beats an include (decided before this module, by the evaluator).
3. Block wins: one enforced policy that applies with `block` denies the sign-in.
4. Otherwise every enforced policy that applies must be satisfied (AND across policies);
   within a policy, operator AND needs every control, OR any one. Each unmet clause is a
   requirement; identical requirements from several policies are merged.
5. A sign-in older than an applied sign-in frequency (everyTime: older than 5 minutes)
   adds the `reauthentication` requirement.
6. No unmet requirement: ALLOW. Every unmet requirement has a control the user can meet
   during the sign-in (and the client can do interactive sign-in): CHALLENGE. Otherwise
   DENY, with remediation messages for every unmet requirement.
7. Session controls of the enforced policies that apply merge to the most restrictive:
   the shortest sign-in frequency (everyTime beats any period), persistent browser
   `never` beats `always`, and any enabled restriction stays enabled.
"""

from __future__ import annotations

from collections.abc import Iterable

from pdp.context import LEGACY_CLIENT_APP_TYPES, SignInContext
from pdp.engine.decision import (
    Decision,
    PolicyOutcome,
    Requirement,
    Result,
    Session,
    Verdict,
)
from pdp.policy.compile import CompiledPolicy, CompiledPolicySet
from pdp.policy.model import EVERY_TIME, Policy
from pdp.policy.remediation import BLOCK_MESSAGE, LEGACY_CLIENT_MESSAGE
from pdp.policy.vocabulary import MFA_STRENGTH_ID
from pdp.risk.assessment import Assessment

EVERY_TIME_TOLERANCE_S = 300  # Entra's clock-skew tolerance for sign-in frequency everyTime
_CAS_ORDER = {"monitorOnly": 1, "mcasConfigured": 2, "blockDownloads": 3}
_CAE_ORDER = {"disabled": 0, "strictEnforcement": 1, "strictLocation": 2}


class _Grants:
    """Which controls this sign-in meets; each control is worked out once, when first asked."""

    __slots__ = ("compiled", "ctx", "known")

    def __init__(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        self.ctx = ctx
        self.compiled = compiled
        self.known: dict[str, bool] = {}

    def met(self, control: str) -> bool:
        known = self.known.get(control)
        if known is None:
            known = self.known[control] = self._check(control)
        return known

    def _check(self, control: str) -> bool:
        ctx = self.ctx
        if control in ctx.satisfied_controls:
            return True
        if control == "mfa":
            return self._strength(MFA_STRENGTH_ID)
        if control == "compliantDevice":
            return ctx.compliant
        if control == "domainJoinedDevice":
            return ctx.trust_type == "ServerAD"
        if control.startswith("authenticationStrength:"):
            return self._strength(control[len("authenticationStrength:") :])
        return False

    def _strength(self, strength_id: str) -> bool:
        strength = self.compiled.strengths.get(strength_id)
        methods = self.ctx.methods
        return strength is not None and any(c <= methods for c in strength.combinations)


def _reauthentication_due(policy: Policy, ctx: SignInContext, now: float) -> bool:
    frequency = policy.session.sign_in_frequency
    if frequency is None or ctx.authenticated_at is None:
        return False  # no sign-in frequency, or the sign-in is interactive right now
    elapsed = now - ctx.authenticated_at
    limit = EVERY_TIME_TOLERANCE_S if frequency == EVERY_TIME else frequency
    return elapsed > limit


def combine(  # noqa: PLR0917 - the engine's one call site passes everything it knows
    compiled: CompiledPolicySet,
    ctx: SignInContext,
    applied: Iterable[CompiledPolicy],
    not_applied: Iterable[tuple[CompiledPolicy, tuple[str, ...]]],
    sign_in_risk: str,
    risk: Assessment,
    now: float,
) -> Decision:
    """Decide from the applied policies; `not_applied` (with reasons) is only reported."""
    grants = _Grants(ctx, compiled)
    legacy = ctx.client_app_type in LEGACY_CLIENT_APP_TYPES
    outcomes: dict[int, PolicyOutcome] = {}
    unmet: dict[tuple[str, ...], list[str]] = {}
    blocked = False
    session = _SessionMerge()
    for cp in applied:
        policy = cp.policy
        missing = [r for r in cp.requirements if not any(grants.met(c) for c in r)]
        if _reauthentication_due(policy, ctx, now):
            missing.append(("reauthentication",))
        if cp.enforced:
            result = Result.FAILURE if cp.block or missing else Result.SUCCESS
            blocked = blocked or cp.block
            for requirement in missing:
                unmet.setdefault(requirement, []).append(policy.id)
            session.add(policy)
        elif cp.block or (legacy and missing):
            result = Result.REPORT_ONLY_FAILURE
        elif not missing:
            result = Result.REPORT_ONLY_SUCCESS
        elif all(compiled.requirement_is_interactive(r) for r in missing):
            result = Result.REPORT_ONLY_INTERRUPTED
        else:
            result = Result.REPORT_ONLY_FAILURE
        outcomes[cp.bit] = PolicyOutcome(
            id=policy.id,
            display_name=policy.display_name,
            state=policy.state.value,
            result=result,
            grant_controls=cp.grant_controls,
            session_controls=cp.session_controls,
        )
    for cp, reasons in not_applied:
        policy = cp.policy
        outcomes[cp.bit] = PolicyOutcome(
            id=policy.id,
            display_name=policy.display_name,
            state=policy.state.value,
            result=Result.NOT_APPLIED if cp.enforced else Result.REPORT_ONLY_NOT_APPLIED,
            reasons=reasons,
            grant_controls=cp.grant_controls,
            session_controls=cp.session_controls,
        )
    policies = [outcomes[bit] for bit in sorted(outcomes)]
    if ctx.explain:
        policies += [
            PolicyOutcome(p.id, p.display_name, p.state.value, Result.NOT_ENABLED)
            for p in compiled.disabled
        ]
    requirements = tuple(Requirement(k, tuple(v)) for k, v in unmet.items())
    messages: tuple[str, ...]
    if blocked:
        verdict, requirements, messages = Verdict.DENY, (), (BLOCK_MESSAGE,)
    elif not requirements:
        verdict, messages = Verdict.ALLOW, ()
    else:
        texts = compiled.messages
        messages = tuple(dict.fromkeys(texts[c] for r in requirements for c in r.any_of))
        if legacy:
            verdict, messages = Verdict.DENY, (LEGACY_CLIENT_MESSAGE, *messages)
        elif all(compiled.requirement_is_interactive(r.any_of) for r in requirements):
            verdict = Verdict.CHALLENGE
        else:
            verdict = Verdict.DENY
    return Decision(
        verdict=verdict,
        requirements=requirements,
        session=session.result(),
        policies=tuple(policies),
        messages=messages,
        policy_version=compiled.version,
        sign_in_risk=sign_in_risk,
        risk=risk,
    )


class _SessionMerge:
    """Accumulates the most restrictive session controls."""

    __slots__ = (
        "cae",
        "cas",
        "enforced_restrictions",
        "frequency",
        "persistent",
        "resilience",
        "secure",
    )

    def __init__(self) -> None:
        self.frequency: int | None = None
        self.persistent: str | None = None
        self.enforced_restrictions = False
        self.cas: str | None = None
        self.cae: str | None = None
        self.secure = False
        self.resilience = False

    def add(self, policy: Policy) -> None:
        s = policy.session
        if s.sign_in_frequency is not None:
            if self.frequency is None or s.sign_in_frequency == EVERY_TIME:
                self.frequency = s.sign_in_frequency
            elif self.frequency != EVERY_TIME:
                self.frequency = min(self.frequency, s.sign_in_frequency)
        if s.persistent_browser is not None and self.persistent != "never":
            self.persistent = s.persistent_browser
        self.enforced_restrictions |= s.application_enforced_restrictions
        if s.cloud_app_security and _CAS_ORDER.get(s.cloud_app_security, 0) > _CAS_ORDER.get(
            self.cas or "", 0
        ):
            self.cas = s.cloud_app_security
        if s.continuous_access_evaluation and (
            self.cae is None or _CAE_ORDER[s.continuous_access_evaluation] > _CAE_ORDER[self.cae]
        ):
            self.cae = s.continuous_access_evaluation
        self.secure |= s.secure_sign_in_session
        self.resilience |= s.disable_resilience_defaults

    def result(self) -> Session:
        return Session(
            sign_in_frequency=self.frequency,
            persistent_browser=self.persistent,
            application_enforced_restrictions=self.enforced_restrictions,
            cloud_app_security=self.cas,
            continuous_access_evaluation=self.cae,
            secure_sign_in_session=self.secure,
            disable_resilience_defaults=self.resilience,
        )
