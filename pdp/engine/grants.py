"""Which grant controls one sign-in meets, with each control's documented limits.

A control is met by what the sign-in shows (methods used, device state) or by the gateway
vouching for it in `satisfied_controls`. Microsoft documents where a control cannot be met
at all, and those limits win over both (a gateway cannot vouch for a compliant device in a
device-code flow, where the device that signs in is not the one that asks):

- compliantDevice: not in the device-code flow; not on Windows Phone (Windows 10+, iOS,
  Android, macOS and Linux only).
- domainJoinedDevice (hybrid joined): not in the device-code flow; Windows only.
- compliantApplication (app protection policy): iOS, Android and Windows (Edge) only; not
  for guests and external users, whose devices only their home tenant manages.
- passwordChange: not for guests and external users (they cannot reset their password in
  the resource tenant).
- termsOfUse: not for B2B direct connect users.
- authentication strengths: a guest's methods count only if the external-users page lists
  them for B2B users (SMS, voice, Authenticator push and phone sign-in, OATH tokens, FIDO2,
  Windows Hello for Business, certificates); registering or joining a device cannot be done
  with Windows Hello for Business or a device-bound passkey, which need a registered device.

An unknown platform is not held against a control: pdp only refuses what is documented.
Pages: concept-conditional-access-grant, authentication-conditional-access (external users),
concept-conditional-access-cloud-apps (user actions).
"""

from __future__ import annotations

from pdp.context import SignInContext
from pdp.policy.compile import CompiledPolicySet
from pdp.policy.remediation import DIRECT_CONNECT, MEMBER, audience_of
from pdp.policy.vocabulary import MFA_STRENGTH_ID

STRENGTH = "authenticationStrength:"
REGISTER_DEVICE = "urn:user:registerdevice"
_COMPLIANT_PLATFORMS = frozenset({"windows", "iOS", "android", "macOS", "linux"})
_APP_PROTECTION_PLATFORMS = frozenset({"iOS", "android", "windows"})
# Methods an external user can satisfy an authentication strength with (Table 1 of the
# external-users page, home or resource tenant); password is the first factor they go with.
GUEST_STRENGTH_METHODS = frozenset(
    {
        "password",
        "sms",
        "voice",
        "microsoftAuthenticatorPush",
        "deviceBasedPush",
        "softwareOath",
        "hardwareOath",
        "fido2",
        "windowsHelloForBusiness",
        "x509CertificateSingleFactor",
        "x509CertificateMultiFactor",
    }
)
# Methods that need an already registered device, so cannot register one.
DEVICE_BOUND_METHODS = frozenset(
    {
        "windowsHelloForBusiness",
        "passkeyDeviceBound",
        "passkeyDeviceBoundAuthenticator",
        "passkeyDeviceBoundWindowsHello",
    }
)


class Grants:
    """Which controls this sign-in meets; each control is worked out once, when first asked."""

    __slots__ = ("audience", "compiled", "ctx", "known", "methods")

    def __init__(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        self.ctx = ctx
        self.compiled = compiled
        self.known: dict[str, bool] = {}
        self.audience = audience_of(ctx.guest, ctx.guest_type)
        self.methods = ctx.methods
        if ctx.user_action == REGISTER_DEVICE:
            self.methods = self.methods - DEVICE_BOUND_METHODS

    def met(self, control: str) -> bool:
        """Whether this sign-in meets `control`."""
        known = self.known.get(control)
        if known is None:
            known = self.known[control] = self._possible(control) and self._check(control)
        return known

    def _possible(self, control: str) -> bool:
        """False where Microsoft documents that `control` cannot be met in this sign-in."""
        ctx = self.ctx
        platform = ctx.platform
        if control == "compliantDevice":
            return ctx.flow != "deviceCodeFlow" and (
                not platform or platform in _COMPLIANT_PLATFORMS
            )
        if control == "domainJoinedDevice":
            return ctx.flow != "deviceCodeFlow" and platform in ("", "windows")
        if control == "compliantApplication":
            return self.audience == MEMBER and (
                not platform or platform in _APP_PROTECTION_PLATFORMS
            )
        if control == "passwordChange":
            return self.audience == MEMBER
        if control.startswith("termsOfUse:"):
            return self.audience != DIRECT_CONNECT
        return True

    def _check(self, control: str) -> bool:
        ctx = self.ctx
        if control in ctx.satisfied_controls:
            return True
        if control == "mfa":
            return self._strength(MFA_STRENGTH_ID, guest_limits=False)
        if control == "compliantDevice":
            return ctx.compliant
        if control == "domainJoinedDevice":
            return ctx.trust_type == "ServerAD"
        if control.startswith(STRENGTH):
            return self._strength(control[len(STRENGTH) :], guest_limits=True)
        return False

    def _strength(self, strength_id: str, *, guest_limits: bool) -> bool:
        strength = self.compiled.strengths.get(strength_id)
        methods = self.methods
        if guest_limits and self.audience != MEMBER:
            methods = methods & GUEST_STRENGTH_METHODS
        return strength is not None and any(c <= methods for c in strength.combinations)
