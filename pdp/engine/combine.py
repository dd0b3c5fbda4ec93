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
from typing import Any

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


REAUTHENTICATION = ("reauthentication",)
_MEMO_LIMIT = 65536  # memo entries per policy set before it is cleared (bounds memory)


def combine(  # noqa: PLR0917 - the engine's one call site passes everything it knows
    compiled: CompiledPolicySet,
    ctx: SignInContext,
    applied: Iterable[CompiledPolicy],
    not_applied: Iterable[tuple[CompiledPolicy, tuple[str, ...]]],
    sign_in_risk: str,
    risk: Assessment,
    now: float,
) -> Decision:
    """Decide from the policies that apply; `not_applied` (with reasons) is only reported."""
    mask = 0
    for cp in applied:
        mask |= 1 << cp.bit
    return combine_mask(compiled, ctx, mask, not_applied, sign_in_risk, risk, now)


def combine_mask(  # noqa: PLR0917 - as combine
    compiled: CompiledPolicySet,
    ctx: SignInContext,
    applicable: int,
    not_applied: Iterable[tuple[CompiledPolicy, tuple[str, ...]]],
    sign_in_risk: str,
    risk: Assessment,
    now: float,
) -> Decision:
    """`combine` for a bitmask of applied policies: the work is per distinct requirement.

    Each distinct requirement (and each sign-in frequency) of the set carries the mask of
    the policies that have it, so a request checks it once for all of them; per-policy
    results are then read off three masks.
    """
    memo = compiled.memo
    if len(memo) > _MEMO_LIMIT:
        memo.clear()
    legacy = ctx.client_app_type in LEGACY_CLIENT_APP_TYPES
    enforced = compiled.enforced_mask
    failed = hard_failed = applicable & compiled.block_mask
    unmet: list[tuple[int, tuple[str, ...], int]] = []  # (order key, requirement, policies)
    grants = _Grants(ctx, compiled)
    for requirement, having, interactive, positions in compiled.requirement_index:
        hit = having & applicable
        if hit and not any(map(grants.met, requirement)):
            failed |= hit
            if legacy or not interactive:
                hard_failed |= hit
            if hit & enforced:
                unmet.append((_order(hit & enforced, positions), requirement, hit & enforced))
    if ctx.authenticated_at is not None and applicable & compiled.frequency_mask:
        elapsed = now - ctx.authenticated_at
        due = 0
        for seconds, having in compiled.frequency_index:
            limit = EVERY_TIME_TOLERANCE_S if seconds == EVERY_TIME else seconds
            if elapsed > limit:
                due |= having & applicable
        if due:
            failed |= due
            if legacy:
                hard_failed |= due
            if due & enforced:
                positions = compiled.reauthentication_positions
                unmet.append((_order(due & enforced, positions), REAUTHENTICATION, due & enforced))
    policies = _outcomes(compiled, applicable, failed, hard_failed)
    if ctx.explain:
        policies = _explained(compiled, policies, not_applied)
    unmet.sort(key=lambda item: item[0])
    requirements = tuple(
        Requirement(requirement, _ids(compiled, mask)) for _, requirement, mask in unmet
    )
    messages: tuple[str, ...]
    if applicable & enforced & compiled.block_mask:
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
        session=_session(compiled, applicable & enforced & compiled.session_mask),
        policies=policies,
        messages=messages,
        policy_version=compiled.version,
        sign_in_risk=sign_in_risk,
        risk=risk,
    )


def _order(mask: int, positions: dict[int, int]) -> int:
    """Sort key of a requirement: its first policy, then its place in that policy's clause."""
    first = (mask & -mask).bit_length() - 1
    return first * 1024 + positions.get(first, 1023)


def _ids(compiled: CompiledPolicySet, mask: int) -> tuple[str, ...]:
    """The ids of the policies in `mask`, in set order; memoised by the mask."""
    key = ("ids", mask)
    ids: tuple[str, ...] | None = compiled.memo.get(key)
    if ids is None:
        policies = compiled.policies
        out: list[str] = []
        rest = mask
        while rest:
            low = rest & -rest
            out.append(policies[low.bit_length() - 1].policy.id)
            rest ^= low
        ids = compiled.memo[key] = tuple(out)
    return ids


def _outcomes(
    compiled: CompiledPolicySet, applicable: int, failed: int, hard_failed: int
) -> tuple[PolicyOutcome, ...]:
    """The outcome records of the applied policies, in set order; memoised by their masks."""
    key = ("outcomes", applicable, failed, hard_failed)
    cached: tuple[PolicyOutcome, ...] | None = compiled.memo.get(key)
    if cached is not None:
        return cached
    out: list[PolicyOutcome] = []
    enforced = compiled.enforced_mask
    mask = applicable
    while mask:
        low = mask & -mask
        mask ^= low
        cp = compiled.policies[low.bit_length() - 1]
        if low & enforced:
            result = Result.FAILURE if low & failed else Result.SUCCESS
        elif not low & failed:
            result = Result.REPORT_ONLY_SUCCESS
        elif low & hard_failed:
            result = Result.REPORT_ONLY_FAILURE
        else:
            result = Result.REPORT_ONLY_INTERRUPTED
        out.append(_outcome(compiled.memo, cp, result, ()))
    compiled.memo[key] = result_tuple = tuple(out)
    return result_tuple


def _explained(
    compiled: CompiledPolicySet,
    applied: tuple[PolicyOutcome, ...],
    not_applied: Iterable[tuple[CompiledPolicy, tuple[str, ...]]],
) -> tuple[PolicyOutcome, ...]:
    """Every policy of the set: applied, not applied (with reasons), then disabled."""
    by_id = {o.id: o for o in applied}
    for cp, reasons in not_applied:
        result = Result.NOT_APPLIED if cp.enforced else Result.REPORT_ONLY_NOT_APPLIED
        by_id[cp.policy.id] = _outcome(compiled.memo, cp, result, reasons)
    ordered = [by_id[cp.policy.id] for cp in compiled.policies if cp.policy.id in by_id]
    ordered += [
        PolicyOutcome(p.id, p.display_name, p.state.value, Result.NOT_ENABLED)
        for p in compiled.disabled
    ]
    return tuple(ordered)


def _outcome(
    memo: dict[Any, Any], cp: CompiledPolicy, result: Result, reasons: tuple[str, ...]
) -> PolicyOutcome:
    """The outcome record of a policy; built once per (policy, result, reasons) and reused."""
    key = (cp.bit, result, reasons)
    outcome: PolicyOutcome | None = memo.get(key)
    if outcome is None:
        policy = cp.policy
        outcome = memo[key] = PolicyOutcome(
            id=policy.id,
            display_name=policy.display_name,
            state=policy.state.value,
            result=result,
            reasons=reasons,
            grant_controls=cp.grant_controls,
            session_controls=cp.session_controls,
        )
    return outcome


def _session(compiled: CompiledPolicySet, mask: int) -> Session:
    """The merged session controls of the policies in `mask`; memoised by the mask."""
    key = ("session", mask)
    cached: Session | None = compiled.memo.get(key)
    if cached is None:
        merge = _SessionMerge()
        while mask:
            low = mask & -mask
            mask ^= low
            merge.add(compiled.policies[low.bit_length() - 1].policy)
        cached = compiled.memo[key] = merge.result()
    return cached


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
