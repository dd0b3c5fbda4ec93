"""Grant controls and session controls of a policy set, indexed for the combining rule.

Policies are grouped by distinct requirement (one clause of a policy's grant: any one of its
controls meets it) and by sign-in frequency, each with the bitmask of the policies that have
it, so a request checks a requirement once for all of them (`pdp.engine.combine`). Per
requirement the index also knows whether a user could meet it during the sign-in, for each
audience (members, guests, B2B direct connect), and whether it names an authentication
strength, which the security-info registration precedence needs. Built once per set.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pdp.policy.model import AuthenticationStrength
from pdp.policy.remediation import AUDIENCES, interactive, message_for

if TYPE_CHECKING:
    from pdp.policy.compile import CompiledPolicy

REGISTER_SECURITY_INFO = "urn:user:registersecurityinfo"
STRENGTH = "authenticationStrength:"
REAUTHENTICATION = "reauthentication"
SECONDARY_REAUTHENTICATION = "secondaryReauthentication"

# One distinct requirement: (controls, policies having it, whether each audience can meet
# it now, {policy bit: the requirement's position in that policy's clause}).
IndexedRequirement = tuple[tuple[str, ...], int, tuple[bool, ...], dict[int, int]]


@dataclass(slots=True)
class Frequencies:
    """Sign-in frequencies of one kind (full sign-in, or second factor only)."""

    index: tuple[tuple[int, int], ...] = ()  # (seconds or EVERY_TIME, policies)
    mask: int = 0  # policies with such a frequency
    positions: dict[int, int] = field(default_factory=dict)  # bit -> place in its clause


@dataclass(slots=True)
class GrantIndex:
    """The grant and session side of a compiled policy set."""

    block_mask: int = 0
    requirements: tuple[IndexedRequirement, ...] = ()
    strength_requirements: int = 0  # bit i set: requirements[i] names a strength
    full: Frequencies = field(default_factory=Frequencies)
    secondary: Frequencies = field(default_factory=Frequencies)
    session_mask: int = 0  # policies with any session control
    # Security-info registration: the policies that target the user action, and the enforced
    # ones among them that require an authentication strength.
    registration_actions: int = 0
    registration_strengths: int = 0
    interactive_controls: tuple[frozenset[str], ...] = ()  # per audience
    messages: dict[str, str] = field(default_factory=dict)  # control -> remediation text

    def is_interactive(self, controls: Iterable[str], audience: int) -> bool:
        """Whether a user of `audience` could meet a requirement during this sign-in."""
        meetable = self.interactive_controls[audience]
        return any(c in meetable for c in controls)


def index_grants(
    policies: Sequence[CompiledPolicy], strengths: dict[str, AuthenticationStrength]
) -> GrantIndex:
    """Group policies by requirement and by sign-in frequency, in first-appearance order."""
    g = GrantIndex()
    controls = {c for cp in policies for r in cp.requirements for c in r}
    controls |= {REAUTHENTICATION, SECONDARY_REAUTHENTICATION}
    g.interactive_controls = tuple(
        frozenset(c for c in controls if interactive(c, strengths, audience))
        for audience in AUDIENCES
    )
    g.messages = {c: message_for(c, strengths) for c in controls}
    requirements: dict[tuple[str, ...], tuple[int, dict[int, int]]] = {}
    frequencies: dict[bool, dict[int, int]] = {False: {}, True: {}}
    for cp in policies:
        bit = 1 << cp.bit
        if cp.block:
            g.block_mask |= bit
        for position, requirement in enumerate(cp.requirements):
            mask, positions = requirements.get(requirement, (0, {}))
            positions[cp.bit] = position
            requirements[requirement] = (mask | bit, positions)
        apps = cp.policy.conditions.applications
        if REGISTER_SECURITY_INFO in apps.include_user_actions:
            g.registration_actions |= bit
            if cp.enforced and any(c.startswith(STRENGTH) for r in cp.requirements for c in r):
                g.registration_strengths |= bit
        session = cp.policy.session
        if session.names():
            g.session_mask |= bit
        if session.sign_in_frequency is not None:
            kind = session.secondary_authentication_only
            table = frequencies[kind]
            table[session.sign_in_frequency] = table.get(session.sign_in_frequency, 0) | bit
            target = g.secondary if kind else g.full
            target.mask |= bit
            target.positions[cp.bit] = len(cp.requirements) + kind
    g.requirements = tuple(
        (requirement, mask, tuple(g.is_interactive(requirement, a) for a in AUDIENCES), positions)
        for requirement, (mask, positions) in requirements.items()
    )
    for i, (requirement, *_) in enumerate(g.requirements):
        if any(c.startswith(STRENGTH) for c in requirement):
            g.strength_requirements |= 1 << i
    g.full.index = tuple(frequencies[False].items())
    g.secondary.index = tuple(frequencies[True].items())
    return g
