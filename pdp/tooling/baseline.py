"""Baseline coverage: the Conditional Access items of CISA's SCuBA Microsoft Entra ID baseline.

Baseline: `aad.md` of cisagov/ScubaGear at commit 4d34e9a48e38ce5c2e14c0fdfbaee53e57594ae2
(after release 1.8.0; it has MS.AAD.3.2v2). Each item is decided by evaluating the
sign-ins it is about, for every class of user the set distinguishes (a member in no
group, and one class per user, group, role or guest type a policy names), over every
application, platform, client, location and device that changes which policies apply.
So exclusions, extra conditions and report-only states count as Entra would count them:

| item | sign-ins | must be |
|---|---|---|
| MS.AAD.1.1v1 | legacy clients (EAS, other), a password, an unregistered device | denied |
| MS.AAD.2.1v1 | user risk high, every method, control and device | denied |
| MS.AAD.2.3v1 | sign-in risk high, every method, control and device | denied |
| MS.AAD.3.1v1 | every method but phishing-resistant ones | not allowed |
| MS.AAD.3.2v2 | a password only | not allowed |
| MS.AAD.3.6v1 | the 8 highly privileged roles, no phishing-resistant method | not allowed |
| MS.AAD.3.7v1 | unregistered or non-compliant devices, every method | not allowed |
| MS.AAD.3.8v1 | registering security info from an unmanaged device | not allowed |
| MS.AAD.3.9v1 | the device code flow, every method and control | denied |

Where this differs from ScubaGear's pattern match (it wants one enabled policy for All
users and All applications with exactly the named control, exclusions only from a listed
set): several policies may cover the item together; an exclusion fails only when the
excluded users are covered by no other policy; conditions that open gaps (an MFA policy
for browsers only, or excluding trusted locations) fail; a set requiring MFA everywhere
also blocks legacy clients (they cannot do MFA) and passes 1.1; a phishing-resistant
policy meets 3.2. Emergency-access principals are the approved exclusions (ScubaGear's
`CapExclusions`). Combinations of exclusions (a user in two excluded groups) are not
explored. MS.AAD.9.1v1 (risky agent identities) is not judged: pdp has no agent signal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pdp.engine.decision import Decision, Result, Verdict
from pdp.policy.compile import CompiledPolicy
from pdp.tooling.findings import BaselineResult, Finding, Rule, Severity
from pdp.tooling.lint_context import REPORT_ONLY_WOULD_ACT, LintContext
from pdp.tooling.sign_in_space import (
    ALL_METHODS,
    AUTHENTICATION_CONTROLS,
    DEVICE_CONTROLS,
    DEVICES,
    LEGACY_CLIENTS,
    MODERN_CLIENTS,
    NOT_PHISHING_RESISTANT,
    PASSWORD_ONLY,
    ROLE_NAMES,
    UNMANAGED_DEVICES,
    Candidate,
    Principal,
)

BASELINE = (
    "https://github.com/cisagov/ScubaGear/blob/4d34e9a48e38ce5c2e14c0fdfbaee53e57594ae2/"
    "PowerShell/ScubaGear/baselines/aad.md"
)
# CISA's highly privileged roles (aad.md, MS.AAD.7 "highly privileged roles"), by template id.
PRIVILEGED_ROLES = (
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
    "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",  # SharePoint Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",  # Hybrid Identity Administrator
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",  # Application Administrator
    "158c047a-c907-4556-b7ef-446551a6b5f7",  # Cloud Application Administrator
)
REGISTER_SECURITY_INFO = "urn:user:registersecurityinfo"


@dataclass(frozen=True, slots=True)
class Item:
    """One baseline item as sign-ins and the outcome each must have."""

    rule: Rule
    must_deny: bool  # else: must not be allowed
    clients: tuple[str, ...] = MODERN_CLIENTS
    devices: tuple[Candidate, ...] = DEVICES
    methods: frozenset[str] = ALL_METHODS
    unsatisfied: tuple[str, ...] = ()  # control prefixes the sign-in does not meet
    privileged: bool = False
    fields: dict[str, Any] = field(default_factory=dict)
    user_action: bool = False
    what: str = "allowed"  # what a counterexample is, in words


def _rule(item_id: str, shall: bool, title: str, description: str, remediation: str) -> Rule:
    anchor = item_id.lower().replace(".", "")
    return Rule(
        id=item_id,
        title=title,
        description=f"{'SHALL' if shall else 'SHOULD'}: {description}",
        remediation=remediation,
        source=f"{BASELINE}#{anchor}",
        severity=Severity.ERROR if shall else Severity.WARNING,
        category="baseline",
        security_severity="7.0" if shall else "5.0",
    )


ITEMS = (
    Item(
        _rule(
            "MS.AAD.1.1v1",
            True,
            "Legacy authentication is not blocked",
            "legacy authentication SHALL be blocked.",
            "Enforce a policy blocking client app types exchangeActiveSync and other for "
            "all users and all resources.",
        ),
        must_deny=True,
        clients=LEGACY_CLIENTS,
        devices=(DEVICES[0],),
        methods=PASSWORD_ONLY,
        unsatisfied=("",),
        what="not blocked",
    ),
    Item(
        _rule(
            "MS.AAD.2.1v1",
            True,
            "High user risk is not blocked",
            "users detected as high risk SHALL be blocked.",
            "Enforce a policy blocking user risk high for all users and all resources.",
        ),
        must_deny=True,
        fields={"user_risk": "high"},
        what="not blocked",
    ),
    Item(
        _rule(
            "MS.AAD.2.3v1",
            True,
            "High sign-in risk is not blocked",
            "sign-ins detected as high risk SHALL be blocked.",
            "Enforce a policy blocking sign-in risk high for all users and all resources.",
        ),
        must_deny=True,
        fields={"sign_in_risk": "high"},
        what="not blocked",
    ),
    Item(
        _rule(
            "MS.AAD.3.1v1",
            True,
            "Phishing-resistant MFA is not required of every user",
            "phishing-resistant MFA SHALL be enforced for all users.",
            "Enforce the Phishing-resistant MFA authentication strength for all users and "
            "all resources.",
        ),
        must_deny=False,
        methods=NOT_PHISHING_RESISTANT,
        unsatisfied=AUTHENTICATION_CONTROLS,
        what="allowed without a phishing-resistant method",
    ),
    Item(
        _rule(
            "MS.AAD.3.2v2",
            True,
            "MFA is not required of every user",
            "MFA SHALL be required for all users.",
            "Enforce require MFA (or an MFA authentication strength) for all users and all "
            "resources.",
        ),
        must_deny=False,
        methods=PASSWORD_ONLY,
        unsatisfied=AUTHENTICATION_CONTROLS,
        what="allowed with a password only",
    ),
    Item(
        _rule(
            "MS.AAD.3.6v1",
            True,
            "Phishing-resistant MFA is not required of privileged roles",
            "phishing-resistant MFA SHALL be required for highly privileged roles.",
            "Enforce the Phishing-resistant MFA strength for the highly privileged roles "
            "on all resources.",
        ),
        must_deny=False,
        methods=NOT_PHISHING_RESISTANT,
        unsatisfied=AUTHENTICATION_CONTROLS,
        privileged=True,
        what="allowed without a phishing-resistant method",
    ),
    Item(
        _rule(
            "MS.AAD.3.7v1",
            False,
            "A managed device is not required to authenticate",
            "managed devices SHOULD be required for authentication.",
            "Enforce require a compliant or hybrid-joined device for all users and all resources.",
        ),
        must_deny=False,
        devices=UNMANAGED_DEVICES,
        unsatisfied=DEVICE_CONTROLS,
        what="allowed on an unmanaged device",
    ),
    Item(
        _rule(
            "MS.AAD.3.8v1",
            False,
            "A managed device is not required to register MFA",
            "managed devices SHOULD be required to register MFA.",
            "Enforce require a compliant or hybrid-joined device on the user action "
            "'register security information' for all users.",
        ),
        must_deny=False,
        devices=UNMANAGED_DEVICES,
        unsatisfied=DEVICE_CONTROLS,
        user_action=True,
        what="allowed to register security information on an unmanaged device",
    ),
    Item(
        _rule(
            "MS.AAD.3.9v1",
            False,
            "The device code flow is not blocked",
            "the device code authentication flow SHOULD be blocked.",
            "Enforce a policy blocking authentication flow deviceCodeFlow for all users "
            "and all resources.",
        ),
        must_deny=True,
        fields={"flow": "deviceCodeFlow"},
        what="not blocked",
    ),
)
RULES = tuple(item.rule for item in ITEMS)


@dataclass(slots=True)
class _Escape:
    principal: Principal
    sign_in: str
    decision: Decision
    ctx: Any


def check(lint: LintContext) -> tuple[list[Finding], list[BaselineResult]]:
    """A finding per item not met, and every item's result."""
    findings: list[Finding] = []
    results: list[BaselineResult] = []
    for item in ITEMS:
        before = lint.evaluations
        escapes, classes = _escapes(lint, item)
        results.append(BaselineResult(item.rule, not escapes, lint.evaluations - before))
        if escapes:
            findings.append(_finding(lint, item, escapes, classes))
    return findings, results


def _classes(lint: LintContext, item: Item) -> list[Principal]:
    approved = {p.excluded.lower() for p in lint.emergency}
    users = [
        p
        for p in lint.space.identities()
        if not p.service_principal_id and p.excluded.lower() not in approved
    ]
    if not item.privileged:
        return users
    out: list[Principal] = []
    for role in PRIVILEGED_ROLES:
        holder = Principal(f"a {ROLE_NAMES[role]}", role_ids=frozenset({role}))
        out.append(holder)
        out += [holder.with_principal(p) for p in users if p.excluded]
    return out


def _escapes(lint: LintContext, item: Item) -> tuple[list[_Escape], int]:
    space = lint.space
    satisfied = lint.controls(except_prefixes=item.unsatisfied)
    targets = None
    fields = dict(item.fields)
    if item.user_action:
        targets = space.indices("target", lambda f: f.get("user_action") == REGISTER_SECURITY_INFO)
        if not targets:  # no policy names the action: the generic application stands for it
            targets = lint.generic_target()
            fields.update(application_id="", user_action=REGISTER_SECURITY_INFO)
    escapes: list[_Escape] = []
    classes = _classes(lint, item)
    for principal in classes:
        for picks, device in lint.sweep(
            clients=item.clients, devices=item.devices, targets=targets
        ):
            ctx = lint.sign_in(
                principal,
                picks,
                device,
                methods=item.methods,
                satisfied_controls=satisfied,
                **fields,
            )
            decision = lint.evaluate(ctx)
            if (
                (decision.verdict is not Verdict.DENY)
                if item.must_deny
                else (decision.verdict is Verdict.ALLOW)
            ):
                escapes.append(
                    _Escape(principal, lint.describe(principal, picks, device), decision, ctx)
                )
                break
    return escapes, len(classes)


def _acts(item: Item, cp: CompiledPolicy) -> bool:
    """Whether a policy asks for what the item is about (so skipping someone matters)."""
    if cp.block or item.must_deny:
        return cp.block
    return any(c.startswith(item.unsatisfied) for clause in cp.requirements for c in clause)


def _finding(lint: LintContext, item: Item, escapes: Sequence[_Escape], classes: int) -> Finding:
    first = escapes[0]
    would = [p.id for p in first.decision.policies if p.result in REPORT_ONLY_WOULD_ACT]
    explained = lint.evaluate(dataclasses.replace(first.ctx, explain=True))
    acting = {cp.policy.id for cp in lint.compiled.policies if _acts(item, cp)}
    excluded = [
        p.id
        for p in explained.policies
        if p.result is Result.NOT_APPLIED and p.reasons == ("users",) and p.id in acting
    ]
    who = ", ".join(e.principal.label for e in escapes[:3])
    more = f" and {len(escapes) - 3} more" if len(escapes) > 3 else ""
    message = (
        f"{len(escapes)} of {classes} classes of users get through ({who}{more}). "
        f"For example {first.sign_in}: {item.what}."
    )
    if would:
        names = ", ".join(lint.policy(i).display_name for i in would)
        message += f" Report-only, so not counted: {names}."
    if excluded:
        names = ", ".join(lint.policy(i).display_name for i in excluded)
        message += f" Not applied only because of who signs in: {names}."
    return Finding(item.rule, message, lint.refs_of(would + excluded), sign_in=first.sign_in)
