"""Session controls of the enforced policies that apply, merged to the most restrictive.

The shortest sign-in frequency wins (everyTime beats any period), kept apart by what it asks
for: a full sign-in (authenticationType primaryAndSecondaryAuthentication) or the second
factor only (secondaryAuthentication), so a gateway knows which prompt to show. Persistent
browser `never` beats `always`; any enabled restriction stays enabled; Defender for Cloud
Apps and continuous access evaluation keep their strictest mode.
"""

from __future__ import annotations

from pdp.engine.decision import Session
from pdp.policy.compile import CompiledPolicySet
from pdp.policy.model import EVERY_TIME, Policy

_CAS_ORDER = {"monitorOnly": 1, "mcasConfigured": 2, "blockDownloads": 3}
_CAE_ORDER = {"disabled": 0, "strictEnforcement": 1, "strictLocation": 2}


def merged_session(compiled: CompiledPolicySet, mask: int) -> Session:
    """The merged session controls of the policies in `mask`."""
    merge = _SessionMerge()
    while mask:
        low = mask & -mask
        mask ^= low
        merge.add(compiled.policies[low.bit_length() - 1].policy)
    return merge.result()


def _shorter(current: int | None, new: int) -> int:
    """The more restrictive of two frequencies (seconds or EVERY_TIME)."""
    if current is None or new == EVERY_TIME:
        return new
    return current if current == EVERY_TIME else min(current, new)


class _SessionMerge:
    """Accumulates the most restrictive session controls."""

    __slots__ = (
        "cae",
        "cas",
        "enforced_restrictions",
        "frequency",
        "persistent",
        "resilience",
        "secondary_frequency",
        "secure",
    )

    def __init__(self) -> None:
        self.frequency: int | None = None
        self.secondary_frequency: int | None = None
        self.persistent: str | None = None
        self.enforced_restrictions = False
        self.cas: str | None = None
        self.cae: str | None = None
        self.secure = False
        self.resilience = False

    def add(self, policy: Policy) -> None:
        s = policy.session
        if s.sign_in_frequency is not None:
            if s.secondary_authentication_only:
                self.secondary_frequency = _shorter(self.secondary_frequency, s.sign_in_frequency)
            else:
                self.frequency = _shorter(self.frequency, s.sign_in_frequency)
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
            secondary_sign_in_frequency=self.secondary_frequency,
            persistent_browser=self.persistent,
            application_enforced_restrictions=self.enforced_restrictions,
            cloud_app_security=self.cas,
            continuous_access_evaluation=self.cae,
            secure_sign_in_session=self.secure,
            disable_resilience_defaults=self.resilience,
        )
