"""Impossible travel: the pure judgement of one sign-in's place against the user's history.

Owns the distance math (`haversine_km`) and the rules of issue 3, with the thresholds of
`TravelSettings`:

- For each earlier sign-in: the great-circle distance minus BOTH accuracy radii, floored at
  0 (MaxMind's radius is the 67 % confidence radius, so only the distance the two places are
  surely apart counts); the elapsed time is |now - then| (out-of-order times from clock skew
  never give negative speeds) floored at `min_elapsed_s` (simultaneous attempts still compare).
- Pairs from the same IP, or closer than `same_place_km`, are not judged.
- speed >= `impossible_speed_kmh` over >= `impossible_distance_km`: `impossibleTravel`, high;
  speed >= `unlikely_speed_kmh` over >= `unlikely_distance_km`: `unlikelyTravel`, medium.
  Only the most severe pair is reported (ties: the highest speed).
- A country the history never showed, once it holds `unfamiliar_after` sign-ins of known
  country: `unfamiliarLocation`, low.

No I/O and no clock: the caller reads the history and stamps the current sign-in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pdp.risk.assessment import RISK_ORDER, Detection, Place
from pdp.risk.settings import TravelSettings

EARTH_RADIUS_KM = 6371.0  # mean radius; haversine is within ~0.5 % of the ellipsoid

IMPOSSIBLE_TRAVEL = "impossibleTravel"
UNLIKELY_TRAVEL = "unlikelyTravel"
UNFAMILIAR_LOCATION = "unfamiliarLocation"

_MIN_ELAPSED_FLOOR_S = 1.0  # even a zero `min_elapsed_s` setting cannot divide by zero


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2.0
    half_dlambda = math.radians(lon2 - lon1) / 2.0
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def detect(
    history: Sequence[Place], current: Place, settings: TravelSettings
) -> tuple[Detection, ...]:
    """The detections for `current` given the user's earlier sign-ins, most severe first."""
    detections: list[Detection] = []
    travel = _worst_travel(history, current, settings)
    if travel is not None:
        detections.append(travel)
    if _is_unfamiliar(history, current, settings):
        detections.append(Detection(kind=UNFAMILIAR_LOCATION, level="low", current=current))
    detections.sort(key=lambda d: RISK_ORDER[d.level], reverse=True)
    return tuple(detections)


def level_of(detections: Sequence[Detection]) -> str:
    """The highest level among `detections`, "none" when there are none."""
    level = "none"
    for detection in detections:
        if RISK_ORDER.get(detection.level, 0) > RISK_ORDER[level]:
            level = detection.level
    return level


def _worst_travel(
    history: Sequence[Place], current: Place, settings: TravelSettings
) -> Detection | None:
    """The most severe travel pair of `current` with an earlier sign-in, if any is suspicious."""
    floor_s = max(settings.min_elapsed_s, _MIN_ELAPSED_FLOOR_S)
    best: tuple[int, float, float, float] | None = None  # rank, speed, distance, -elapsed
    best_pair: tuple[Place, str, str] | None = None  # earlier place, kind, level
    for earlier in history:
        if current.ip_address and earlier.ip_address == current.ip_address:
            continue
        distance = (
            haversine_km(earlier.latitude, earlier.longitude, current.latitude, current.longitude)
            - (earlier.accuracy_radius_km + current.accuracy_radius_km)  # commutes: symmetric
        )
        distance = max(distance, 0.0)
        if not distance >= settings.same_place_km:  # also skips NaN from bad coordinates
            continue
        elapsed_s = max(abs(current.time - earlier.time), floor_s)
        speed = distance / (elapsed_s / 3600.0)
        if speed >= settings.impossible_speed_kmh and distance >= settings.impossible_distance_km:
            kind, level = IMPOSSIBLE_TRAVEL, "high"
        elif speed >= settings.unlikely_speed_kmh and distance >= settings.unlikely_distance_km:
            kind, level = UNLIKELY_TRAVEL, "medium"
        else:
            continue
        key = (RISK_ORDER[level], speed, distance, -elapsed_s)
        if best is None or key > best:
            best = key
            best_pair = (earlier, kind, level)
    if best is None or best_pair is None:
        return None
    earlier, kind, level = best_pair
    return Detection(
        kind=kind,
        level=level,
        previous=earlier,
        current=current,
        distance_km=round(best[2], 1),
        speed_kmh=round(best[1], 1),
    )


def _is_unfamiliar(history: Sequence[Place], current: Place, settings: TravelSettings) -> bool:
    """Whether `current` is in a country the history, long enough to judge, never showed.

    Only sign-ins of known country count towards `unfamiliar_after`: a history whose
    countries were unknown has seen nothing to compare with.
    """
    if not current.country:
        return False
    seen = [place.country for place in history if place.country]
    return len(seen) >= settings.unfamiliar_after and current.country not in seen
