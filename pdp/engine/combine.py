"""The combining rule: from the policies that apply to one decision.

1. Disabled policies are not evaluated (notEnabled). Report-only policies are evaluated
   and reported with reportOnly* results, and never change the decision.
2. A policy applies when every configured condition matches; in each condition an
   exclude beats an include (decided before this module, by the evaluator).
3. Block wins: one enforced policy that applies with `block` denies the sign-in.
4. Otherwise every enforced policy that applies must be satisfied (AND across policies);
   within a policy, operator AND needs every control, OR any one. Each unmet clause is a
   requirement; identical requirements from several policies are merged. Whether a control
   is met, within its documented limits, is `pdp.engine.grants`.
5. Registering security info: when an enforced policy targeting that user action requires an
   authentication strength, the strengths of policies that apply only as All-resources
   policies give way to it; their other controls still apply.
6. A sign-in older than an applied sign-in frequency (everyTime: older than 5 minutes)
   adds the `reauthentication` requirement, or `secondaryReauthentication` when the
   frequency is for the second factor only (measured from the last second factor).
7. No unmet requirement: ALLOW. Every unmet requirement has a control the user can meet
   during the sign-in (and the client can do interactive sign-in): CHALLENGE. Otherwise
   DENY, with remediation messages for every unmet requirement.
8. Session controls of the enforced policies that apply merge to the most restrictive
   (`pdp.engine.session`); B2B direct connect users get none (Entra supports none for them).
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from pdp.context import SignInContext
from pdp.engine.decision import (
    Decision,
    PolicyOutcome,
    Requirement,
    Result,
    Session,
    Verdict,
)
from pdp.engine.grants import Grants
from pdp.engine.session import merged_session
from pdp.engine.set_cache import TAILS_LIMIT, SetCache, Tail, cache_for
from pdp.policy.compile import CompiledPolicy, CompiledPolicySet
from pdp.policy.grant_index import (
    REAUTHENTICATION,
    REGISTER_SECURITY_INFO,
    SECONDARY_REAUTHENTICATION,
    Frequencies,
)
from pdp.policy.model import EVERY_TIME
from pdp.policy.remediation import BLOCK_MESSAGE, DIRECT_CONNECT, LEGACY_CLIENT_MESSAGE
from pdp.risk.assessment import Assessment
from pdp.vocabulary import LEGACY_CLIENT_APP_TYPES

EVERY_TIME_TOLERANCE_S = 300  # Entra's clock-skew tolerance for sign-in frequency everyTime
_NO_SESSION = Session()


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
    found = content_part(compiled, ctx, applicable)
    return timed_part(compiled, ctx, found, not_applied, sign_in_risk, risk, now)


ContentPart = tuple[int, int, int, bool, int]  # applicable, failing, superseded, legacy, audience


def content_part(compiled: CompiledPolicySet, ctx: SignInContext, applicable: int) -> ContentPart:
    """What the combination takes from the sign-in's content alone (not from its time)."""
    grants = Grants(ctx, compiled)
    index = compiled.grants
    failing = 0  # bit i set: index.requirements[i] applies here and is not met
    for i, (requirement, having, _, _) in enumerate(index.requirements):
        if having & applicable and not any(map(grants.met, requirement)):
            failing |= 1 << i
    superseded = 0  # policies whose strengths give way to the registration policy's
    if ctx.user_action == REGISTER_SECURITY_INFO and applicable & index.registration_strengths:
        superseded = applicable & compiled.all_apps & ~index.registration_actions
    legacy = ctx.client_app_type in LEGACY_CLIENT_APP_TYPES
    return applicable, failing, superseded, legacy, grants.audience


def timed_part(  # noqa: PLR0917 - the content part and everything else the decision says
    compiled: CompiledPolicySet,
    ctx: SignInContext,
    found: ContentPart,
    not_applied: Iterable[tuple[CompiledPolicy, tuple[str, ...]]],
    sign_in_risk: str,
    risk: Assessment,
    now: float,
) -> Decision:
    """The decision from the content part, the elapsed sign-in frequencies and the memo."""
    applicable, failing, superseded, legacy, audience = found
    index = compiled.grants
    due = due_secondary = 0  # policies whose sign-in frequency has elapsed
    if audience != DIRECT_CONNECT:
        due = _due(index.full, applicable, ctx.authenticated_at, now)
        if applicable & index.secondary.mask:
            since = ctx.secondary_authenticated_at
            since = ctx.authenticated_at if since is None else since
            due_secondary = _due(index.secondary, applicable, since, now)
    cache = cache_for(compiled)
    tails = cache.tails
    key = (applicable, failing, due, due_secondary, superseded, legacy, audience)
    tail = tails.get(key)
    if tail is None:
        if len(tails) >= TAILS_LIMIT:
            tails.clear()
        tail = tails[key] = _tail(compiled, *key)
    verdict, requirements, messages, session, policies = tail
    if ctx.explain:
        policies = _explained(compiled, cache, applicable, policies, not_applied)
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


def _due(frequencies: Frequencies, applicable: int, since: float | None, now: float) -> int:
    """The applicable policies whose frequency has elapsed since `since` (None: now)."""
    due = 0
    if since is not None and applicable & frequencies.mask:
        elapsed = now - since
        for seconds, having in frequencies.index:
            if elapsed > (EVERY_TIME_TOLERANCE_S if seconds == EVERY_TIME else seconds):
                due |= having & applicable
    return due


def _tail(  # noqa: PLR0917 - the memo key, spread
    compiled: CompiledPolicySet,
    applicable: int,
    failing: int,
    due: int,
    due_secondary: int,
    superseded: int,
    legacy: bool,
    audience: int,
) -> Tail:
    """Everything a decision says once the failed requirements and elapsed frequencies are known."""
    index = compiled.grants
    enforced = applicable & compiled.enforced_mask
    failed = hard_failed = applicable & index.block_mask
    unmet: list[tuple[int, tuple[str, ...], int]] = []  # (order key, requirement, policies)
    strengths = index.strength_requirements
    for i, (requirement, having, interactive, positions) in enumerate(index.requirements):
        if not failing >> i & 1:
            continue
        hit = having & applicable
        if strengths >> i & 1:
            hit &= ~superseded
        failed |= hit
        if legacy or not interactive[audience]:
            hard_failed |= hit
        if hit & enforced:
            unmet.append((_order(hit & enforced, positions), requirement, hit & enforced))
    for elapsed, frequencies, control in (
        (due, index.full, REAUTHENTICATION),
        (due_secondary, index.secondary, SECONDARY_REAUTHENTICATION),
    ):
        if not elapsed:
            continue
        failed |= elapsed
        if legacy:
            hard_failed |= elapsed
        if elapsed & enforced:
            order = _order(elapsed & enforced, frequencies.positions)
            unmet.append((order, (control,), elapsed & enforced))
    unmet.sort(key=lambda item: item[0])
    requirements = tuple(Requirement(r, _ids(compiled, mask)) for _, r, mask in unmet)
    messages: tuple[str, ...]
    if enforced & index.block_mask:
        verdict, requirements, messages = Verdict.DENY, (), (BLOCK_MESSAGE,)
    elif not requirements:
        verdict, messages = Verdict.ALLOW, ()
    else:
        texts = index.messages
        messages = tuple(dict.fromkeys(texts[c] for r in requirements for c in r.any_of))
        if legacy:
            verdict, messages = Verdict.DENY, (LEGACY_CLIENT_MESSAGE, *messages)
        elif all(index.is_interactive(r.any_of, audience) for r in requirements):
            verdict = Verdict.CHALLENGE
        else:
            verdict = Verdict.DENY
    session = _NO_SESSION
    if audience != DIRECT_CONNECT:
        session = merged_session(compiled, enforced & index.session_mask)
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
    table = _outcome_table(compiled, cache_for(compiled))
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


def _outcome_table(
    compiled: CompiledPolicySet, cache: SetCache
) -> tuple[dict[Result, PolicyOutcome], ...]:
    """Per policy bit, its outcome record for each result it can have when it applies."""
    table = cache.outcome_table
    if table is None:
        table = cache.outcome_table = tuple(
            {
                result: _record(cp, result, ())
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
    cache: SetCache,
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
    explained = cache.explained
    for cp, reasons in not_applied:
        result = Result.NOT_APPLIED if cp.enforced else Result.REPORT_ONLY_NOT_APPLIED
        key = (cp.bit, result, reasons)
        record = explained.get(key)
        if record is None:
            if len(explained) >= TAILS_LIMIT:
                explained.clear()
            record = explained[key] = _record(cp, result, reasons)
        slots[cp.bit] = record
    disabled = cache.disabled
    if disabled is None:
        disabled = cache.disabled = tuple(
            PolicyOutcome(p.id, p.display_name, p.state.value, Result.NOT_ENABLED)
            for p in compiled.disabled
        )
    return (*(o for o in slots if o is not None), *disabled)


def _record(cp: CompiledPolicy, result: Result, reasons: tuple[str, ...]) -> PolicyOutcome:
    """The outcome record of a policy with `result` (and What-If `reasons`)."""
    policy = cp.policy
    return PolicyOutcome(
        id=policy.id,
        display_name=policy.display_name,
        state=policy.state.value,
        result=result,
        reasons=reasons,
        grant_controls=cp.grant_controls,
        session_controls=cp.session_controls,
    )
