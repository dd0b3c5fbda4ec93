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
from operator import itemgetter
from typing import Any

from pdp.context import SignInContext
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
from pdp.vocabulary import LEGACY_CLIENT_APP_TYPES

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
_MEMO_LIMIT = 8192  # memo entries per policy set before it is cleared (bounds memory)


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
    the policies that have it, so a request checks it once for all of them. Everything
    after that (verdict, requirements, messages, session, per-policy results) depends only
    on which policies applied and which requirements failed, and is memoised on exactly that.
    """
    grants = _Grants(ctx, compiled)
    failing = 0  # bit i set: requirement_index[i] applies here and is not met
    for i, (requirement, having, _, _) in enumerate(compiled.requirement_index):
        if having & applicable and not any(map(grants.met, requirement)):
            failing |= 1 << i
    due = 0  # policies whose sign-in frequency has elapsed
    if ctx.authenticated_at is not None and applicable & compiled.frequency_mask:
        elapsed = now - ctx.authenticated_at
        for seconds, having in compiled.frequency_index:
            if elapsed > (EVERY_TIME_TOLERANCE_S if seconds == EVERY_TIME else seconds):
                due |= having & applicable
    legacy = ctx.client_app_type in LEGACY_CLIENT_APP_TYPES
    memo = compiled.memo
    key = (applicable, failing, due, legacy)
    tail: _Tail | None = memo.get(key)
    if tail is None:
        if len(memo) > _MEMO_LIMIT:
            memo.clear()
        tail = memo[key] = _tail(compiled, applicable, failing, due, legacy=legacy)
    verdict, requirements, messages, session, policies = tail
    if ctx.explain:
        policies = _explained(compiled, applicable, policies, not_applied)
    return Decision(
        verdict=verdict,
        requirements=requirements,
        session=session,
        policies=policies,
        messages=messages,
        policy_version=compiled.version,
        sign_in_risk=sign_in_risk,
        risk=risk,
    )


_Tail = tuple[Verdict, tuple[Requirement, ...], tuple[str, ...], Session, tuple[PolicyOutcome, ...]]


def _tail(
    compiled: CompiledPolicySet, applicable: int, failing: int, due: int, *, legacy: bool
) -> _Tail:
    """Everything a decision says once the failed requirements and elapsed frequencies are known."""
    enforced = applicable & compiled.enforced_mask
    failed = hard_failed = applicable & compiled.block_mask
    unmet: list[tuple[int, tuple[str, ...], int]] = []  # (order key, requirement, policies)
    for i, (requirement, having, interactive, positions) in enumerate(compiled.requirement_index):
        if not failing >> i & 1:
            continue
        hit = having & applicable
        failed |= hit
        if legacy or not interactive:
            hard_failed |= hit
        if hit & enforced:
            unmet.append((_order(hit & enforced, positions), requirement, hit & enforced))
    if due:
        failed |= due
        if legacy:
            hard_failed |= due
        if due & enforced:
            positions = compiled.reauthentication_positions
            unmet.append((_order(due & enforced, positions), REAUTHENTICATION, due & enforced))
    unmet.sort(key=lambda item: item[0])
    requirements = tuple(Requirement(r, _ids(compiled, mask)) for _, r, mask in unmet)
    messages: tuple[str, ...]
    if enforced & compiled.block_mask:
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
    session = _session(compiled, enforced & compiled.session_mask)
    return (
        verdict,
        requirements,
        messages,
        session,
        _outcomes(compiled, applicable, failed, hard_failed),
    )


def _order(mask: int, positions: dict[int, int]) -> int:
    """Sort key of a requirement: its first policy, then its place in that policy's clause."""
    first = (mask & -mask).bit_length() - 1
    return first * 1024 + positions.get(first, 1023)


def _ids(compiled: CompiledPolicySet, mask: int) -> tuple[str, ...]:
    """The ids of the policies in `mask`, in set order."""
    policies = compiled.policies
    out: list[str] = []
    while mask:
        low = mask & -mask
        out.append(policies[low.bit_length() - 1].policy.id)
        mask ^= low
    return tuple(out)


def _outcomes(
    compiled: CompiledPolicySet, applicable: int, failed: int, hard_failed: int
) -> tuple[PolicyOutcome, ...]:
    """The outcome records of the applied policies, in set order."""
    table = _outcome_table(compiled)
    enforced = applicable & compiled.enforced_mask
    report = applicable ^ enforced
    found: list[tuple[int, PolicyOutcome]] = []
    for result, having in (
        (Result.SUCCESS, enforced & ~failed),
        (Result.FAILURE, enforced & failed),
        (Result.REPORT_ONLY_SUCCESS, report & ~failed),
        (Result.REPORT_ONLY_FAILURE, report & hard_failed),
        (Result.REPORT_ONLY_INTERRUPTED, report & failed & ~hard_failed),
    ):
        rest = having
        while rest:
            low = rest & -rest
            rest ^= low
            bit = low.bit_length() - 1
            found.append((bit, table[bit][result]))
    found.sort(key=itemgetter(0))
    return tuple(outcome for _, outcome in found)


def _outcome_table(compiled: CompiledPolicySet) -> tuple[dict[Result, PolicyOutcome], ...]:
    """Per policy bit, its outcome record for each result it can have when it applies."""
    table: tuple[dict[Result, PolicyOutcome], ...] | None = compiled.tables.get("outcome table")
    if table is None:
        table = compiled.tables["outcome table"] = tuple(
            {
                result: _outcome(compiled.tables, cp, result, ())
                for result in (
                    (Result.SUCCESS, Result.FAILURE)
                    if cp.enforced
                    else (
                        Result.REPORT_ONLY_SUCCESS,
                        Result.REPORT_ONLY_FAILURE,
                        Result.REPORT_ONLY_INTERRUPTED,
                    )
                )
            }
            for cp in compiled.policies
        )
    return table


def _explained(
    compiled: CompiledPolicySet,
    applicable: int,
    applied: tuple[PolicyOutcome, ...],
    not_applied: Iterable[tuple[CompiledPolicy, tuple[str, ...]]],
) -> tuple[PolicyOutcome, ...]:
    """Every policy of the set: applied, not applied (with reasons), then disabled."""
    slots: list[PolicyOutcome | None] = [None] * len(compiled.policies)
    outcomes = iter(applied)  # in bit order, as the set bits of `applicable`
    while applicable:
        low = applicable & -applicable
        applicable ^= low
        slots[low.bit_length() - 1] = next(outcomes)
    memo = compiled.memo
    for cp, reasons in not_applied:
        result = Result.NOT_APPLIED if cp.enforced else Result.REPORT_ONLY_NOT_APPLIED
        slots[cp.bit] = _outcome(memo, cp, result, reasons)
    disabled: tuple[PolicyOutcome, ...] | None = compiled.tables.get("disabled")
    if disabled is None:
        disabled = compiled.tables["disabled"] = tuple(
            PolicyOutcome(p.id, p.display_name, p.state.value, Result.NOT_ENABLED)
            for p in compiled.disabled
        )
    return (*(o for o in slots if o is not None), *disabled)


def _outcome(
    memo: dict[Any, Any], cp: CompiledPolicy, result: Result, reasons: tuple[str, ...]
) -> PolicyOutcome:
    """The outcome record of a policy; built once per (policy, result, reasons) and reused."""
    key = ("outcome", cp.bit, result, reasons)
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
    """The merged session controls of the policies in `mask`."""
    merge = _SessionMerge()
    while mask:
        low = mask & -mask
        mask ^= low
        merge.add(compiled.policies[low.bit_length() - 1].policy)
    return merge.result()


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
