"""Hygiene: never-applying, duplicate and shadowed policies, and uncovered group exclusions.

The four checks: policies that can never apply, duplicates, report-only policies shadowed
by an enforced one, and exclusions of groups that no enforced policy includes.

The first three are decided on the engine's own condition masks over the sign-in space
(`SignInSpace`): since a policy's conditions are independent, it can apply iff every
dimension has a candidate that matches it, and policy A applies wherever B does iff in
every dimension A matches each candidate B matches. Device filters are compared as
written (no sign-in is searched for them).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pdp.policy.compile import CompiledPolicy
from pdp.policy.model import PolicyState
from pdp.tooling.findings import Finding, Rule, Severity
from pdp.tooling.lint_context import LintContext

WHAT_IF = "https://learn.microsoft.com/en-us/entra/identity/conditional-access/what-if-tool"
REPORT_ONLY = (
    "https://learn.microsoft.com/en-us/entra/identity/conditional-access/"
    "concept-conditional-access-report-only"
)
GAP = (
    "https://learn.microsoft.com/en-us/entra/identity/monitoring-health/"
    "workbook-conditional-access-gap-analyzer"
)
PLAN = "https://learn.microsoft.com/en-us/entra/identity/conditional-access/plan-conditional-access"
NEVER_APPLIES = Rule(
    id="hygiene/never-applies",
    title="A policy can never apply",
    description="In some condition no sign-in matches the policy (for example it excludes "
    "what it includes), so it never affects a sign-in.",
    remediation="Fix the condition named, or delete the policy.",
    source=WHAT_IF,
    severity=Severity.WARNING,
    category="hygiene",
    security_severity="3.0",
)
DUPLICATE = Rule(
    id="hygiene/duplicate",
    title="Policies that say the same thing",
    description="Two or more policies in the same state apply to exactly the same sign-ins "
    "and ask for the same controls.",
    remediation="Keep one of them.",
    source=PLAN,
    severity=Severity.WARNING,
    category="hygiene",
    security_severity="2.0",
)
SHADOWED = Rule(
    id="hygiene/report-only-shadowed",
    title="A report-only policy is shadowed by an enforced one",
    description="An enforced policy applies wherever the report-only policy does and asks "
    "for at least as much, so enabling it would change no decision and its report-only "
    "results measure nothing.",
    remediation="Delete the report-only policy, or change it to measure something new.",
    source=REPORT_ONLY,
    severity=Severity.NOTE,
    category="hygiene",
    security_severity="1.0",
)
EXCLUDED_GROUP = Rule(
    id="hygiene/excluded-group-not-included",
    title="A group is excluded but no enforced policy includes it",
    description="Members of the group escape the policies excluding it and no enforced "
    "policy targets the group instead.",
    remediation="Cover the group with its own policy, or remove the exclusion.",
    source=GAP,
    severity=Severity.NOTE,
    category="hygiene",
    security_severity="2.0",
)
RULES = (NEVER_APPLIES, DUPLICATE, SHADOWED, EXCLUDED_GROUP)
# Dimensions judged from candidates; device filters are compared as written instead.
_DIMENSIONS = (
    "identity",
    "target",
    "devicePlatform",
    "clientApps",
    "location",
    "signInRisk",
    "userRisk",
    "servicePrincipalRisk",
    "insiderRisk",
    "authenticationFlow",
)
_NAMES = {"identity": "users or workload identities", "target": "applications"}


def check(lint: LintContext) -> list[Finding]:
    """Every hygiene finding on the set."""
    columns = {cp.bit: _columns(lint, cp) for cp in lint.compiled.policies}
    findings = _never_applies(lint, columns)
    findings += _duplicates(lint, columns)
    findings += _shadowed(lint, columns)
    findings += _excluded_groups(lint)
    return findings


def _columns(lint: LintContext, cp: CompiledPolicy) -> tuple[int, ...]:
    """Per dimension, which candidates match the policy (bit i: candidate i)."""
    out = []
    for dimension in _DIMENSIONS:
        column = 0
        for i, mask in enumerate(lint.space.masks[dimension]):
            if mask >> cp.bit & 1:
                column |= 1 << i
        out.append(column)
    return tuple(out)


def _never_applies(lint: LintContext, columns: dict[int, tuple[int, ...]]) -> list[Finding]:
    findings = []
    for cp in lint.compiled.policies:
        empty = [d for d, column in zip(_DIMENSIONS, columns[cp.bit], strict=True) if not column]
        if empty and not cp.policy.conditions.unevaluable:  # pdp lacks signals to judge those
            said = ", ".join(_NAMES.get(d, d) for d in empty)
            findings.append(
                Finding(
                    NEVER_APPLIES,
                    f"{cp.policy.display_name} can never apply: no sign-in matches its "
                    f"condition on {said}.",
                    lint.refs_of([cp.policy.id]),
                )
            )
    return findings


def _grant_key(cp: CompiledPolicy) -> tuple[Any, ...]:
    return (
        cp.block,
        frozenset(frozenset(r) for r in cp.requirements),
        cp.policy.session,
        cp.device_filter,
        cp.device_filter_mode,
        cp.exclude_compliant,
        cp.exclude_domain_joined,
    )


def _duplicates(lint: LintContext, columns: dict[int, tuple[int, ...]]) -> list[Finding]:
    groups: dict[tuple[Any, ...], list[CompiledPolicy]] = defaultdict(list)
    for cp in lint.compiled.policies:
        groups[(cp.enforced, columns[cp.bit], _grant_key(cp))].append(cp)
    findings = []
    for same in groups.values():
        if len(same) > 1:
            names = ", ".join(cp.policy.display_name for cp in same)
            findings.append(
                Finding(
                    DUPLICATE,
                    f"{len(same)} policies apply to the same sign-ins and ask for the same: "
                    f"{names}.",
                    lint.refs_of(cp.policy.id for cp in same),
                )
            )
    return findings


def _covers(enforced: CompiledPolicy, report_only: CompiledPolicy) -> bool:
    """Whether `enforced` asks for at least what `report_only` asks for."""
    device_condition = (
        enforced.device_filter is not None
        or enforced.exclude_compliant
        or enforced.exclude_domain_joined
    )
    if device_condition and _grant_key(enforced)[3:] != _grant_key(report_only)[3:]:
        return False
    if report_only.policy.session.names() and report_only.policy.session != enforced.policy.session:
        return False
    if enforced.block:
        return True
    if report_only.block:
        return False
    return all(
        any(set(mine) <= set(theirs) for mine in enforced.requirements)
        for theirs in report_only.requirements
    )


def _shadowed(lint: LintContext, columns: dict[int, tuple[int, ...]]) -> list[Finding]:
    policies = lint.compiled.policies
    findings = []
    for ro in (cp for cp in policies if not cp.enforced):
        mine = columns[ro.bit]
        if not all(mine):  # never applies: reported as such
            continue
        for en in (cp for cp in policies if cp.enforced):
            theirs = columns[en.bit]
            if all(m & ~t == 0 for m, t in zip(mine, theirs, strict=True)) and _covers(en, ro):
                findings.append(
                    Finding(
                        SHADOWED,
                        f"{ro.policy.display_name} (report-only) would change no decision: "
                        f"{en.policy.display_name} is enforced wherever it applies and asks "
                        "for at least as much.",
                        lint.refs_of([ro.policy.id, en.policy.id]),
                    )
                )
                break
    return findings


def _excluded_groups(lint: LintContext) -> list[Finding]:
    emergency = {g for p in lint.emergency for g in p.group_ids}
    included: set[str] = set()
    excluding: dict[str, list[str]] = defaultdict(list)
    for policy in lint.policy_set.policies:
        users = policy.conditions.users
        if policy.state is PolicyState.ENABLED:
            included |= users.include_groups
        if policy.state is not PolicyState.DISABLED:
            for group in users.exclude_groups:
                excluding[group].append(policy.id)
    findings = []
    for group, ids in sorted(excluding.items()):
        if group in included or group in emergency:
            continue
        findings.append(
            Finding(
                EXCLUDED_GROUP,
                f"Group {group} is excluded from {len(ids)} "
                f"polic{'ies' if len(ids) != 1 else 'y'} and included by no enforced policy.",
                lint.refs_of(ids),
            )
        )
    return findings
