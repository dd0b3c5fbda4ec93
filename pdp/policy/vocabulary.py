"""The Graph vocabulary pdp knows: enum members, special values and built-in objects.

Each closed set maps the lower-cased spelling to the canonical Graph spelling, so that
`All`, `all` and `ALL` read the same (real exports mix case). Built-in authentication
strengths are data here, not code, because Microsoft updates them (they can be overridden
by the policy set itself); the application bundles are data files (`pdp.policy.app_bundles`).
"""

from __future__ import annotations

from pdp.policy.app_bundles import BUNDLES
from pdp.policy.model import AuthenticationStrength


def _canon(*values: str) -> dict[str, str]:
    return {v.lower(): v for v in values}


STATES = _canon("enabled", "disabled", "enabledForReportingButNotEnforced")
PLATFORMS = _canon("android", "iOS", "windows", "windowsPhone", "macOS", "linux", "all")
CLIENT_APP_TYPES = _canon(
    "all", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"
)
# Deprecated spellings still found in old exports, and what they mean now.
CLIENT_APP_TYPE_ALIASES = {
    "easunsupported": ("exchangeActiveSync",),
    "eassupported": ("exchangeActiveSync",),
    "modern": ("browser", "mobileAppsAndDesktopClients"),
}
RISK_LEVELS = _canon("low", "medium", "high", "none", "hidden")
INSIDER_RISK_LEVELS = _canon("minor", "moderate", "elevated")
TRANSFER_METHODS = _canon("deviceCodeFlow", "authenticationTransfer")
USER_ACTIONS = _canon("urn:user:registersecurityinfo", "urn:user:registerdevice")
GRANT_OPERATORS = _canon("AND", "OR")
# Built-in grant controls in Graph's prompting order (phase 2 of CA evaluation); block first.
BUILT_IN_CONTROLS = _canon(
    "block",
    "mfa",
    "compliantDevice",
    "domainJoinedDevice",
    "approvedApplication",
    "compliantApplication",
    "passwordChange",
    "riskRemediation",
)
# Built-in controls Microsoft no longer enforces: Entra treats them as not selected.
RETIRED_CONTROLS = {
    "approvedApplication": (
        "Microsoft stopped enforcing 'Require approved client app' after March 2026: Entra "
        "treats it as not selected, and so does pdp; require an app protection policy "
        "(compliantApplication) instead (source: https://learn.microsoft.com/en-us/entra/"
        "identity/conditional-access/migrate-approved-client-app)"
    ),
}
PERSISTENT_BROWSER_MODES = _canon("always", "never")
SIGN_IN_FREQUENCY_UNITS = {"hours": 3600, "days": 86400}
SIGN_IN_FREQUENCY_AUTHENTICATION_TYPES = _canon(
    "primaryAndSecondaryAuthentication", "secondaryAuthentication"
)
CLOUD_APP_SECURITY_TYPES = _canon("mcasConfigured", "monitorOnly", "blockDownloads")
CAE_MODES = _canon("strictEnforcement", "strictLocation", "disabled")
DEVICE_STATES = _canon("All", "Compliant", "DomainJoined")

MFA_STRENGTH_ID = "00000000-0000-0000-0000-000000000002"
PASSWORDLESS_MFA_STRENGTH_ID = "00000000-0000-0000-0000-000000000003"
PHISHING_RESISTANT_MFA_STRENGTH_ID = "00000000-0000-0000-0000-000000000004"


def _strength(id_: str, name: str, *combinations: str) -> AuthenticationStrength:
    return AuthenticationStrength(
        id=id_,
        display_name=name,
        combinations=tuple(frozenset(c.split(",")) for c in combinations),
    )


# Graph GET /policies/authenticationStrengthPolicies, policyType builtIn.
BUILT_IN_STRENGTHS: dict[str, AuthenticationStrength] = {
    s.id: s
    for s in (
        _strength(
            MFA_STRENGTH_ID,
            "Multifactor authentication",
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
            "deviceBasedPush",
            "temporaryAccessPassOneTime",
            "temporaryAccessPassMultiUse",
            "password,microsoftAuthenticatorPush",
            "password,softwareOath",
            "password,hardwareOath",
            "password,x509CertificateSingleFactor",
            "password,x509CertificateMultiFactor",
            "password,sms",
            "password,voice",
            "federatedMultiFactor",
            "microsoftAuthenticatorPush,federatedSingleFactor",
            "softwareOath,federatedSingleFactor",
            "hardwareOath,federatedSingleFactor",
            "sms,federatedSingleFactor",
            "voice,federatedSingleFactor",
        ),
        _strength(
            PASSWORDLESS_MFA_STRENGTH_ID,
            "Passwordless MFA",
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
            "deviceBasedPush",
        ),
        _strength(
            PHISHING_RESISTANT_MFA_STRENGTH_ID,
            "Phishing-resistant MFA",
            "windowsHelloForBusiness",
            "fido2",
            "x509CertificateMultiFactor",
        ),
    )
}

# Application groups Graph accepts in includeApplications / excludeApplications (and the
# Windows Azure Service Management API app id, which Entra expands the same way). Their
# membership is Microsoft's and changes: it is data (`pdp.policy.app_bundles`), which a pdp
# config document can extend or replace (`pdp.applicationGroups`).
DEFAULT_APPLICATION_GROUPS: dict[str, frozenset[str]] = {
    name: bundle.app_ids for name, bundle in BUNDLES.items()
}
