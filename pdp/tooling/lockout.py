"""Lockout safety: whether the emergency-access accounts, and anyone at all, can sign in.

Decided by evaluating sign-ins with the engine, never by reading policy JSON:

- `lockout/emergency-access-not-excluded`: an enforced policy with grant controls that
  applies to an emergency-access principal (holding Global Administrator) in some sign-in,
  and to an ordinary administrator in the same sign-in (so it targets users broadly
  rather than being the accounts' own dedicated policy). Microsoft: exclude emergency
  access accounts from Conditional Access policies, and give them one phishing-resistant
  MFA policy of their own. Block and device or app controls are errors (they can lock the
  accounts out); MFA-type controls are warnings.
- `lockout/no-emergency-access`: no emergency-access account or group is declared and no
  policy excludes one.
- `lockout/emergency-access-blocked`: no sign-in of an emergency-access principal to the
  admin portals (or to any application) escapes a deny, even with every method, every
  control and every kind of device.
- `lockout/everyone-blocked`: the same for every user the set tells apart: the policies
  together block every user from every application.
"""

from __future__ import annotations

from collections.abc import Sequence

from pdp.engine.decision import Result, Verdict
from pdp.policy.remediation import MEMBER
from pdp.policy.vocabulary import DEFAULT_APPLICATION_GROUPS
from pdp.tooling.findings import Finding, Rule, Severity
from pdp.tooling.lint_context import GLOBAL_ADMINISTRATOR, LintContext, applied
from pdp.tooling.sign_in_space import (
    ALL_METHODS,
    DEVICES,
    MODERN_CLIENTS,
    Candidate,
    Principal,
)

EMERGENCY_ACCESS = (
    "https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/"
    "security-emergency-access"
)
PLAN = "https://learn.microsoft.com/en-us/entra/identity/conditional-access/plan-conditional-access"
NOT_EXCLUDED = Rule(
    id="lockout/emergency-access-not-excluded",
    title="An enforced policy applies to the emergency-access accounts",
    description="Evaluates sign-ins of each emergency-access principal (with Global "
    "Administrator) over every application, platform, client, location and device the set "
    "distinguishes; a policy that applies to it and to an ordinary administrator alike "
    "does not exclude it.",
    remediation="Exclude the emergency-access accounts or group from this policy; cover them "
    "with one dedicated phishing-resistant MFA policy instead.",
    source=EMERGENCY_ACCESS,
    severity=Severity.ERROR,
    category="lockout",
    security_severity="8.0",
)
NO_EMERGENCY = Rule(
    id="lockout/no-emergency-access",
    title="No emergency-access account or group is excluded from the policies",
    description="No emergency-access account or group was given (--emergency-account, "
    "--emergency-group) and no policy excludes any user or group.",
    remediation="Keep two cloud-only emergency-access accounts, exclude them (or their group) "
    "from every policy and pass them to pdp lint.",
    source=EMERGENCY_ACCESS,
    severity=Severity.WARNING,
    category="lockout",
    security_severity="6.0",
)
EMERGENCY_BLOCKED = Rule(
    id="lockout/emergency-access-blocked",
    title="Every sign-in of an emergency-access account is denied",
    description="Evaluates the emergency-access principal with every method, every control "
    "and every kind of device, from every location the set distinguishes; none is let in.",
    remediation="Exclude the emergency-access accounts or group from the block policies listed.",
    source=EMERGENCY_ACCESS,
    severity=Severity.ERROR,
    category="lockout",
    security_severity="9.0",
)
EVERYONE_BLOCKED = Rule(
    id="lockout/everyone-blocked",
    title="The policies together block every user from every application",
    description="Evaluates every class of user the set distinguishes with every method, "
    "control and kind of device; not one sign-in to an application no policy names is let in.",
    remediation="Narrow the block policies listed (conditions or exclusions) before enabling them.",
    source=PLAN,
    severity=Severity.ERROR,
    category="lockout",
    security_severity="9.0",
)
RULES = (NOT_EXCLUDED, NO_EMERGENCY, EMERGENCY_BLOCKED, EVERYONE_BLOCKED)
ADMIN_PORTALS = DEFAULT_APPLICATION_GROUPS["MicrosoftAdminPortals"]


def check(lint: LintContext) -> list[Finding]:
    """Every lockout finding on the set."""
    findings = _not_excluded(lint)
    for principal in lint.emergency:
        findings += _blocked(lint, principal)
    findings += _everyone_blocked(lint)
    return findings


def _not_excluded(lint: LintContext) -> list[Finding]:
    admin = Principal("an ordinary administrator", role_ids=frozenset({GLOBAL_ADMINISTRATOR}))
    devices = (DEVICES[0], DEVICES[2])
    if not lint.emergency:
        broad = _applying(lint, admin, admin, devices)
        return [
            Finding(
                NO_EMERGENCY,
                "No emergency-access account or group is given or excluded; "
                f"{len(broad)} enforced policies apply to every administrator.",
                lint.refs_of(broad),
            )
        ]
    findings: list[Finding] = []
    for principal in lint.emergency:
        for policy_id, sign_in in _applying(lint, principal, admin, devices).items():
            cp = next(c for c in lint.compiled.policies if c.policy.id == policy_id)
            hard = cp.block or not all(
                lint.compiled.grants.is_interactive(r, MEMBER) for r in cp.requirements
            )
            what = "blocks" if cp.block else "requires " + _controls(cp.grant_controls)
            findings.append(
                Finding(
                    NOT_EXCLUDED,
                    f"{cp.policy.display_name} {what} for {principal.label}: it is not "
                    f"excluded (e.g. {sign_in}).",
                    lint.refs_of([policy_id]),
                    sign_in=sign_in,
                    severity=Severity.ERROR if hard else Severity.WARNING,
                )
            )
    return findings


def _applying(
    lint: LintContext, principal: Principal, twin: Principal, devices: Sequence[Candidate]
) -> dict[str, str]:
    """Enforced policies with grant controls applying to `principal` and to `twin` alike."""
    found: dict[str, str] = {}
    judged: set[str] = set()
    for picks, device in lint.sweep(clients=MODERN_CLIENTS, devices=devices):
        decision = lint.evaluate(lint.sign_in(principal, picks, device))
        fresh = [
            p.id
            for p in applied(decision)
            if p.id not in judged and lint.policy(p.id).grant is not None
        ]
        if not fresh:
            continue
        judged.update(fresh)
        if twin is principal:
            twin_applied = set(fresh)
        else:
            twin_applied = {p.id for p in applied(lint.evaluate(lint.sign_in(twin, picks, device)))}
        for policy_id in fresh:
            if policy_id in twin_applied:
                found.setdefault(policy_id, lint.describe(principal, picks, device))
    return found


def _best_case(lint: LintContext, principal: Principal, targets: Sequence[int]) -> set[str] | None:
    """None when some best-case sign-in of `principal` is not denied, else the blockers."""
    satisfied = lint.controls()
    blockers: set[str] = set()
    for picks, device in lint.sweep(clients=MODERN_CLIENTS, devices=DEVICES, targets=targets):
        ctx = lint.sign_in(
            principal, picks, device, methods=ALL_METHODS, satisfied_controls=satisfied
        )
        decision = lint.evaluate(ctx)
        if decision.verdict is not Verdict.DENY:
            return None
        blockers.update(p.id for p in decision.policies if p.result is Result.FAILURE)
    return blockers


def _blocked(lint: LintContext, principal: Principal) -> list[Finding]:
    space = lint.space
    portals = space.indices("target", lambda f: f.get("application_id") in ADMIN_PORTALS)
    generic = lint.generic_target()
    for targets, where in ((portals, "the admin portals"), (generic, "any application")):
        if not targets:
            continue
        blockers = _best_case(lint, principal, targets)
        if blockers is not None:
            return [
                Finding(
                    EMERGENCY_BLOCKED,
                    f"Every sign-in of {principal.label} to {where} is denied, with every "
                    "method, control and device.",
                    lint.refs_of(blockers),
                )
            ]
    return []


def _everyone_blocked(lint: LintContext) -> list[Finding]:
    space = lint.space
    generic = lint.generic_target()
    blockers: set[str] = set()
    classes = [p for p in space.identities() if not p.service_principal_id] + lint.emergency
    for principal in classes:
        found = _best_case(lint, principal, generic)
        if found is None:
            return []
        blockers |= found
    return [
        Finding(
            EVERYONE_BLOCKED,
            f"Not one of {len(classes)} classes of users can sign in to an application no "
            "policy names, with every method, control and device.",
            lint.refs_of(blockers),
        )
    ]


def _controls(controls: Sequence[str]) -> str:
    return ", ".join(controls)
