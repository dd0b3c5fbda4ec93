"""What pdp's own risk detection concluded about one sign-in, handed to the engine.

The engine raises the sign-in risk it evaluates policies with to the maximum of the
upstream level and `Assessment.sign_in_risk`; the detections travel to the response and the
audit record as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pdp.context import SignInContext
    from pdp.policy.compile import CompiledPolicySet

RISK_ORDER = {"none": 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class Place:
    """Where and when one sign-in happened (an entry of a user's sign-in history)."""

    time: float  # epoch seconds
    latitude: float
    longitude: float
    accuracy_radius_km: float
    country: str  # ISO 3166 alpha-2, "" when unknown
    ip_address: str


@dataclass(frozen=True, slots=True)
class Detection:
    """One risk detection with its evidence (e.g. impossibleTravel from Paris to New York)."""

    kind: str  # impossibleTravel, unlikelyTravel, unfamiliarLocation, riskStoreUnavailable
    level: str  # low, medium, high
    previous: Place | None = None
    current: Place | None = None
    distance_km: float = 0.0  # effective: great circle minus both accuracy radii, floor 0
    speed_kmh: float = 0.0


@dataclass(frozen=True, slots=True)
class Assessment:
    """pdp's risk for one sign-in: a level and the detections behind it."""

    sign_in_risk: str = "none"
    detections: tuple[Detection, ...] = ()
    degraded: bool = False  # the risk store could not be consulted


NO_RISK = Assessment()


def max_level(a: str, b: str) -> str:
    """The higher of two risk levels."""
    return a if RISK_ORDER.get(a, 0) >= RISK_ORDER.get(b, 0) else b


class RiskAssessor(Protocol):
    """pdp's own risk detection, consulted once per decision before the engine runs.

    Implementations may skip their work (and any I/O) when `compiled` has no policy that
    could use the result; they never raise: failures come back as a degraded Assessment.
    """

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """The context with its location filled in (geo-IP), for the engine's locations."""
        ...

    async def assess(self, ctx: SignInContext, compiled: CompiledPolicySet) -> Assessment:
        """The risk pdp itself sees in this sign-in."""
        ...

    async def record_allowed(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        """Record an allowed sign-in, when only allowed ones are recorded (else nothing)."""
        ...
