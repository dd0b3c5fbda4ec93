"""The Graph names of a sign-in, shared by every layer: the one place they are spelled.

A sign-in's closed sets (platform, client app type, trust type, risk levels, flows, guest
types, authentication methods) use the canonical Microsoft Graph spellings everywhere inside
pdp: in `SignInContext`, in the compiled policy set, in the engine, the risk detection and
the audit record. Each way in maps its wire values to these once; each way out maps these
to its wire values once. Lookup tables keyed by lower-case spelling give the canonical one,
so `All`, `all` and `ALL` read the same (real exports mix case).

The display spellings at the end are those of Graph's `signIn` resource (what Entra's
sign-in logs say), used by the audit record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final


def canonical(*values: str) -> dict[str, str]:
    """A table from each value's lower-case spelling to the value."""
    return {v.lower(): v for v in values}


# -- the closed sets of a sign-in (canonical spellings; "" means unknown or unset) ----------
PLATFORMS: Final = ("android", "iOS", "windows", "windowsPhone", "macOS", "linux")
CLIENT_APP_TYPES: Final = (
    "browser",
    "mobileAppsAndDesktopClients",
    "exchangeActiveSync",
    "other",
)
LEGACY_CLIENT_APP_TYPES: Final = frozenset({"exchangeActiveSync", "other"})
TRUST_TYPES: Final = ("AzureAD", "ServerAD", "Workplace")
RISK_LEVELS: Final = ("none", "low", "medium", "high")
INSIDER_RISK_LEVELS: Final = ("none", "minor", "moderate", "elevated")
FLOWS: Final = ("deviceCodeFlow", "authenticationTransfer")
GUEST_TYPES: Final = canonical(
    "internalGuest",
    "b2bCollaborationGuest",
    "b2bCollaborationMember",
    "b2bDirectConnectUser",
    "otherExternalUser",
    "serviceProvider",
)
AUTHENTICATION_METHOD_MODES: Final = canonical(
    "password",
    "voice",
    "hardwareOath",
    "softwareOath",
    "sms",
    "fido2",
    "windowsHelloForBusiness",
    "microsoftAuthenticatorPush",
    "deviceBasedPush",
    "temporaryAccessPassOneTime",
    "temporaryAccessPassMultiUse",
    "email",
    "x509CertificateSingleFactor",
    "x509CertificateMultiFactor",
    "federatedSingleFactor",
    "federatedMultiFactor",
    "qrCodePin",
    "passkeyDeviceBound",
    "passkeyDeviceBoundAuthenticator",
    "passkeyDeviceBoundWindowsHello",
)

# -- Graph signIn display spellings (Entra sign-in logs), for the audit record --------------
CLIENT_APP_USED: Final[Mapping[str, str]] = {
    "browser": "Browser",
    "mobileAppsAndDesktopClients": "Mobile Apps and Desktop clients",
    "exchangeActiveSync": "Exchange ActiveSync",
    "other": "Other clients",
}
OPERATING_SYSTEMS: Final[Mapping[str, str]] = {
    "android": "Android",
    "iOS": "iOS",
    "windows": "Windows",
    "windowsPhone": "Windows Phone",
    "macOS": "macOS",
    "linux": "Linux",
}
TRUST_TYPE_NAMES: Final[Mapping[str, str]] = {
    "AzureAD": "Azure AD joined",
    "ServerAD": "Hybrid Azure AD joined",
    "Workplace": "Azure AD registered",
}
