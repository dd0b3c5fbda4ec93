"""What pdp's own risk detection concluded about one sign-in, handed to the engine.

The engine raises the sign-in risk it evaluates policies with to the maximum of the
upstream level and `Assessment.sign_in_risk`; the detections travel to the response and the
audit record as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

RISK_ORDER = {"none": 0, "low": 1, "medium": 2, "high": 3}


@dataclass(frozen=True, slots=True)
class Detection:
    """One risk detection with its evidence (e.g. impossibleTravel from Paris to New York)."""

    kind: str  # impossibleTravel, unlikelyTravel, unfamiliarLocation
    level: str  # low, medium, high
    detail: str  # human-readable evidence


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
