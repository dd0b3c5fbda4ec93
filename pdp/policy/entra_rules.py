"""Policies Entra will not save: the combinations Graph or the admin portal refuses.

pdp refuses what Entra refuses, so that a policy set pdp serves is one Entra could hold and
no decision rests on a combination Entra never evaluates (a workload identity challenged for
MFA it can never perform, a persistent browser session scoped to one app). Each rule says
what is wrong and names the Microsoft Learn page that documents it; `refusals` runs once per
policy at load time, on the parsed model. The README lists the same rules.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pdp.policy.model import ALL, NONE, Policy, PolicyState

_LEARN = "https://learn.microsoft.com/en-us/entra/identity"
WORKLOAD_IDENTITY = f"{_LEARN}/conditional-access/workload-identity"
SESSION_LIFETIME = f"{_LEARN}/conditional-access/howto-conditional-access-session-lifetime"
GRANT = f"{_LEARN}/conditional-access/concept-conditional-access-grant#require-password-change"
GRAPH_GRANT = "https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessgrantcontrols"
TARGET_RESOURCES = f"{_LEARN}/conditional-access/concept-conditional-access-cloud-apps"
STRENGTHS = f"{_LEARN}/authentication/concept-authentication-strengths"
REPORT_ONLY = f"{_LEARN}/conditional-access/concept-conditional-access-report-only"

REGISTER_DEVICE = "urn:user:registerdevice"
_STRENGTH = "authenticationStrength:"


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule a policy breaks: where (JSON path), what, and the page that says so."""

    path: str
    message: str
    source: str
    refused: bool = True  # False: Entra saves it but does not evaluate it (a warning)

    def text(self) -> str:
        """The diagnostic message: the rule, then its source."""
        prefix = "Entra refuses this policy: " if self.refused else ""
        return f"{prefix}{self.message} (source: {self.source})"


def refusals(policy: Policy) -> list[Finding]:
    """Every documented rule `policy` breaks, in the order of the policy's fields."""
    return [
        *_workload_identities(policy),
        *_authentication_context(policy),
        *_register_device(policy),
        *_password_change(policy),
        *_strength_and_mfa(policy),
        *_persistent_browser(policy),
        *_report_only_user_actions(policy),
    ]


def _targets_users(policy: Policy) -> bool:
    users = policy.conditions.users
    return bool(
        users.include_users - {NONE}
        or users.include_groups
        or users.include_roles
        or users.include_guests is not None
    )


def _grant_controls(policy: Policy) -> tuple[str, ...]:
    return policy.grant.controls if policy.grant is not None else ()


def _workload_identities(policy: Policy) -> Iterator[Finding]:
    if policy.conditions.client_applications.configured and _grant_controls(policy):
        yield Finding(
            "$.grantControls",
            "a policy for workload identities can only block access (service principals "
            f"cannot satisfy {', '.join(_grant_controls(policy))}: Block access is the only "
            "grant control Entra offers for them)",
            WORKLOAD_IDENTITY,
        )


def _authentication_context(policy: Policy) -> Iterator[Finding]:
    cond = policy.conditions
    if (
        cond.applications.include_authentication_contexts
        and cond.client_applications.configured
        and _targets_users(policy)
    ):
        yield Finding(
            "$.conditions",
            "an authentication context works with users or with workload identities, "
            "not both in one policy",
            f"{TARGET_RESOURCES}#authentication-context",
        )


def _register_device(policy: Policy) -> Iterator[Finding]:
    cond = policy.conditions
    if REGISTER_DEVICE not in cond.applications.include_user_actions:
        return
    source = f"{TARGET_RESOURCES}#user-actions"
    grant = policy.grant
    others = [c for c in _grant_controls(policy) if c != "mfa" and not c.startswith(_STRENGTH)]
    if grant is not None and grant.block:
        others.insert(0, "block")
    if others:
        yield Finding(
            "$.grantControls",
            "the 'Register or join devices' user action allows only mfa or an authentication "
            f"strength, not {', '.join(others)}",
            source,
        )
    disallowed = [c for c in _configured_conditions(policy) if c in ("clientAppTypes", "devices")]
    if disallowed:
        yield Finding(
            "$.conditions",
            "the 'Register or join devices' user action cannot use the client apps, "
            f"filter for devices or device state conditions ({', '.join(disallowed)})",
            source,
        )


def _password_change(policy: Policy) -> Iterator[Finding]:
    grant = policy.grant
    if grant is None or "passwordChange" not in grant.controls:
        return
    cond = policy.conditions
    apps = cond.applications
    if ALL not in apps.include_applications or apps.exclude_applications:
        yield Finding(
            "$.conditions.applications",
            "passwordChange needs a policy assigned to All resources without exclusions",
            GRANT,
        )
    second = [c for c in grant.controls if c == "mfa" or c.startswith(_STRENGTH)]
    if grant.operator != "AND" or not second:
        yield Finding(
            "$.grantControls",
            "passwordChange must be required together (operator AND) with mfa or an "
            "authentication strength",
            GRAPH_GRANT,
        )
    others = [c for c in grant.controls if c != "passwordChange" and c not in second]
    if others:
        yield Finding(
            "$.grantControls",
            f"passwordChange cannot be combined with other controls ({', '.join(others)})",
            GRANT,
        )
    if not cond.user_risk_levels:
        yield Finding(
            "$.conditions.userRiskLevels",
            "passwordChange is only for policies with a user risk condition",
            GRAPH_GRANT,
        )
    extra = [c for c in _configured_conditions(policy) if c != "userRiskLevels"]
    if extra:
        yield Finding(
            "$.conditions",
            "a passwordChange policy can use only the users, target resources (All) and user "
            f"risk conditions, not {', '.join(extra)}",
            GRANT,
        )


def _configured_conditions(policy: Policy) -> list[str]:
    """The configured conditions besides users and target applications, by Graph name."""
    cond = policy.conditions
    devices = cond.devices
    return [
        name
        for name, configured in (
            ("clientApplications", cond.client_applications.configured),
            ("includeUserActions", bool(cond.applications.include_user_actions)),
            (
                "includeAuthenticationContextClassReferences",
                bool(cond.applications.include_authentication_contexts),
            ),
            ("platforms", bool(cond.platforms.include or cond.platforms.exclude)),
            ("locations", bool(cond.locations.include or cond.locations.exclude)),
            (
                "devices",
                devices.filter is not None or bool(devices.include_states | devices.exclude_states),
            ),
            ("clientAppTypes", bool(cond.client_app_types)),
            ("signInRiskLevels", bool(cond.sign_in_risk_levels)),
            ("userRiskLevels", bool(cond.user_risk_levels)),
            ("servicePrincipalRiskLevels", bool(cond.service_principal_risk_levels)),
            ("insiderRiskLevels", bool(cond.insider_risk_levels)),
            ("authenticationFlows", bool(cond.transfer_methods)),
            *((name, True) for name in cond.unevaluable),
        )
        if configured
    ]


def _strength_and_mfa(policy: Policy) -> Iterator[Finding]:
    controls = _grant_controls(policy)
    if "mfa" in controls and any(c.startswith(_STRENGTH) for c in controls):
        yield Finding(
            "$.grantControls",
            "mfa and an authentication strength cannot both be required by one policy "
            "(the built-in Multifactor authentication strength is the same as mfa)",
            STRENGTHS,
        )


def _persistent_browser(policy: Policy) -> Iterator[Finding]:
    if policy.session.persistent_browser is None:
        return
    if ALL not in policy.conditions.applications.include_applications:
        yield Finding(
            "$.sessionControls.persistentBrowser",
            "a persistent browser session needs a policy targeting All resources: every tab "
            "of a browser shares one session token, so all must share its persistence",
            f"{SESSION_LIFETIME}#policy-2-persistent-browser-session",
        )


def _report_only_user_actions(policy: Policy) -> Iterator[Finding]:
    apps = policy.conditions.applications
    if policy.state is PolicyState.REPORT_ONLY and apps.include_user_actions:
        yield Finding(
            "$.state",
            "Entra does not evaluate report-only policies scoped to user actions; pdp reports "
            "what this one would do",
            REPORT_ONLY,
            refused=False,
        )
