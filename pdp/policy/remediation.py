"""Grant controls as a user meets them: which can be met during the sign-in, and the words.

A requirement decides between CHALLENGE and DENY: if one of its controls is something the
user can do now (sign in with MFA or a stronger method, change a password, accept terms of
use, complete a custom factor, sign in again) the gateway challenges; if none is (a
compliant or hybrid-joined device, an approved or protected app) the sign-in is denied with
a message saying what to do. What a user can do depends on who signs in: a guest cannot
change the password of an account another tenant holds, and a B2B direct connect user
cannot accept terms of use (the audiences below). The texts are built once per policy set,
never per request.
"""

from __future__ import annotations

from pdp.policy.model import AuthenticationStrength

BLOCK_MESSAGE = (
    "Your organization's Conditional Access policy blocks this sign-in. If you need access, "
    "contact your administrator and give them the request id."
)
LEGACY_CLIENT_MESSAGE = (
    "This app uses a sign-in method that cannot meet your organization's requirements. "
    "Use a web browser or an up-to-date app that supports modern authentication."
)

_NOT_INTERACTIVE = frozenset(
    {
        "compliantDevice",
        "domainJoinedDevice",
        "approvedApplication",
        "compliantApplication",
        "riskRemediation",
    }
)
_INTERACTIVE_BUILT_IN = frozenset(
    {"mfa", "passwordChange", "reauthentication", "secondaryReauthentication"}
)
_KNOWN_BUILT_IN = _NOT_INTERACTIVE | _INTERACTIVE_BUILT_IN

_MESSAGES = {
    "mfa": "Complete multifactor authentication to continue.",
    "compliantDevice": (
        "Your device is not compliant with your organization's policy. "
        "Install pending updates and try again."
    ),
    "domainJoinedDevice": (
        "Sign in from a device joined to your organization's domain "
        "(Microsoft Entra hybrid joined)."
    ),
    "approvedApplication": "Use an approved client app to access this resource.",
    "compliantApplication": (
        "Use an app protected by your organization's app protection policy to access this resource."
    ),
    "passwordChange": "Change your password to continue.",
    "riskRemediation": "Your account needs attention: sign in again and follow the prompts.",
    "reauthentication": "Your session has expired. Sign in again to continue.",
    "secondaryReauthentication": (
        "Verify your identity again with your second authentication method to continue."
    ),
}

# Who signs in, as far as what they can do during the sign-in goes (see `audience_of`).
MEMBER, GUEST, DIRECT_CONNECT = 0, 1, 2
AUDIENCES = (MEMBER, GUEST, DIRECT_CONNECT)
# Controls an external user cannot complete in the resource tenant (documented on the
# external-users page): a password change, and for B2B direct connect also terms of use.
_GUEST_CANNOT = frozenset({"passwordChange"})


def audience_of(guest: bool, guest_type: str) -> int:
    """MEMBER, GUEST (any guest or external user) or DIRECT_CONNECT (B2B direct connect)."""
    if not guest:
        return MEMBER
    return DIRECT_CONNECT if guest_type == "b2bDirectConnectUser" else GUEST


def interactive(
    control: str, strengths: dict[str, AuthenticationStrength], audience: int = MEMBER
) -> bool:
    """Whether a user of `audience` can meet `control` during this sign-in (CHALLENGE, not DENY)."""
    if audience != MEMBER and control in _GUEST_CANNOT:
        return False
    if audience == DIRECT_CONNECT and control.startswith("termsOfUse:"):
        return False
    if control in _INTERACTIVE_BUILT_IN:
        return True
    if control in _NOT_INTERACTIVE:
        return False
    if control.startswith("authenticationStrength:"):
        return control.split(":", 1)[1] in strengths  # an undefined strength cannot be met
    if control.startswith("termsOfUse:"):
        return True
    # Custom authentication factors are completed by the user; unknown built-in controls
    # (future Graph values) are treated the same way, and stay unmet until the gateway
    # vouches for them in satisfied_controls.
    return True


def message_for(control: str, strengths: dict[str, AuthenticationStrength]) -> str:
    """The remediation text for an unmet control."""
    if control in _MESSAGES:
        return _MESSAGES[control]
    if control.startswith("authenticationStrength:"):
        strength = strengths.get(control.split(":", 1)[1])
        if strength is None:
            return (
                "Your organization requires an authentication strength this service does not "
                "know. Contact your administrator."
            )
        return f"Sign in with a method that meets '{strength.display_name}'."
    if control.startswith("termsOfUse:"):
        return "Accept your organization's terms of use to continue."
    return f"Complete the additional verification your organization requires ({control})."
