"""Impossible travel: the pure judgement of one sign-in against the user's history.

Owns the distance math (`haversine_km`), the travel window the stores read, and the rules,
with the thresholds of `TravelSettings`:

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

`judge` works on what a store returns (records, see `pdp.risk.record`): the sign-ins within
the travel window and the country summary of the history window. `detect` is the same
judgement for Places. No I/O and no clock: the caller reads the history and stamps the
current sign-in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pdp.risk import record
from pdp.risk.assessment import RISK_ORDER, Detection, Place
from pdp.risk.settings import TravelSettings
from pdp.risk.store import History

EARTH_RADIUS_KM = 6371.0  # mean radius; haversine is within ~0.5 % of the ellipsoid

IMPOSSIBLE_TRAVEL = "impossibleTravel"
UNLIKELY_TRAVEL = "unlikelyTravel"
UNFAMILIAR_LOCATION = "unfamiliarLocation"

_MIN_ELAPSED_FLOOR_S = 1.0  # even a zero `min_elapsed_s` setting cannot divide by zero
_RADIANS = math.pi / 180.0  # exactly what math.radians multiplies by


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2.0
    half_dlambda = math.radians(lon2 - lon1) / 2.0
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def travel_window_s(settings: TravelSettings) -> float:
    """How far apart in time two sign-ins can be and still be judged as travel.

    No two places are further apart than half the Earth's circumference, so any pair further
    apart in time than that distance takes at the slowest speed judged is too slow to flag:
    the stores return only the sign-ins within this window (about 25 h by default). Infinite
    when a speed threshold is not positive.
    """
    slowest = min(settings.unlikely_speed_kmh, settings.impossible_speed_kmh)
    if not slowest > 0.0:
        return math.inf
    return math.pi * EARTH_RADIUS_KM / slowest * 3600.0 + 1.0  # + 1 s against rounding


def detect(
    history: Sequence[Place], current: Place, settings: TravelSettings
) -> tuple[Detection, ...]:
    """The detections for `current` given the user's earlier sign-ins, most severe first.

    The form for Places (tests, tools): the records are judged exactly as `judge` judges
    what a store returns, over the whole of `history`.
    """
    seen = [place.country for place in history if place.country]
    summary = History(b"".join(map(record.of_place, history)), len(seen), current.country in seen)
    return judge(summary, record.of_place(current), settings, current)


def judge(
    history: History, current: bytes, settings: TravelSettings, place: Place | None = None
) -> tuple[Detection, ...]:
    """The detections for the sign-in `current` (a record) given what its store returned.

    `place` is `current` as a Place, when the caller has it (else it is decoded for the
    evidence). Only the records a detection names become Places.
    """
    travel = _worst_travel(history.recent, current, settings)
    unfamiliar = (
        history.known >= settings.unfamiliar_after
        and not history.seen
        and record.country_of(current) != record.NO_COUNTRY
    )
    if travel is None and not unfamiliar:
        return ()
    if place is None:
        place = record.to_place(current)
    detections: list[Detection] = []
    if travel is not None:
        earlier, kind, level, distance, speed = travel
        detections.append(
            Detection(
                kind=kind,
                level=level,
                previous=record.to_place(earlier),
                current=place,
                distance_km=round(distance, 1),
                speed_kmh=round(speed, 1),
            )
        )
    if unfamiliar:  # low: after any travel detection, which is medium or high
        detections.append(Detection(kind=UNFAMILIAR_LOCATION, level="low", current=place))
    return tuple(detections)


def level_of(detections: Sequence[Detection]) -> str:
    """The highest level among `detections`, "none" when there are none."""
    level = "none"
    for detection in detections:
        if RISK_ORDER.get(detection.level, 0) > RISK_ORDER[level]:
            level = detection.level
    return level


_Fields = tuple[float, float, float, float, bytes, bytes]


def _worst_travel(
    recent: bytes, current: bytes, settings: TravelSettings
) -> tuple[_Fields, str, str, float, float] | None:
    """The most severe travel pair of `current` with an earlier record, if any is suspicious.

    The distance is `haversine_km(earlier, current)` computed step by step in the same
    order (so thresholds hit exactly as there), with the current sign-in's terms hoisted.
    """
    if not recent:
        return None
    now, latitude, longitude, accuracy, _, ip = record.RECORD.unpack(current)
    skip_ip = ip if ip != record.NO_IP else None
    phi2 = latitude * _RADIANS
    cos_phi2 = math.cos(phi2)
    floor_s = max(settings.min_elapsed_s, _MIN_ELAPSED_FLOOR_S)
    same_place_km = settings.same_place_km
    skip_same_spot = same_place_km > 0.0  # 0 km apart is then never judged: skip the math
    impossible_kmh, impossible_km = settings.impossible_speed_kmh, settings.impossible_distance_km
    unlikely_kmh, unlikely_km = settings.unlikely_speed_kmh, settings.unlikely_distance_km
    sin, cos, asin, sqrt = math.sin, math.cos, math.asin, math.sqrt
    best: tuple[int, float, float, float] | None = None  # rank, speed, distance, -elapsed
    best_pair: tuple[_Fields, str, str] | None = None  # earlier record, kind, level
    for fields in record.RECORD.iter_unpack(recent):
        then, lat1, lon1, accuracy1, _, ip1 = fields
        if ip1 == skip_ip or (skip_same_spot and lat1 == latitude and lon1 == longitude):
            continue  # the same IP; or the very same coordinates (a geo-IP city), 0 km
        phi1 = lat1 * _RADIANS
        half_dphi = (phi2 - phi1) / 2.0
        half_dlambda = (longitude - lon1) * _RADIANS / 2.0
        h = sin(half_dphi) ** 2 + cos(phi1) * cos_phi2 * sin(half_dlambda) ** 2
        distance = 2.0 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h))) - (accuracy1 + accuracy)
        distance = max(distance, 0.0)
        if not distance >= same_place_km:  # also skips NaN from bad coordinates
            continue
        elapsed_s = max(abs(now - then), floor_s)
        speed = distance / (elapsed_s / 3600.0)
        if speed >= impossible_kmh and distance >= impossible_km:
            rank, kind, level = 3, IMPOSSIBLE_TRAVEL, "high"
        elif speed >= unlikely_kmh and distance >= unlikely_km:
            rank, kind, level = 2, UNLIKELY_TRAVEL, "medium"
        else:
            continue
        key = (rank, speed, distance, -elapsed_s)
        if best is None or key > best:
            best = key
            best_pair = (fields, kind, level)
    if best is None or best_pair is None:
        return None
    earlier, kind, level = best_pair
    return earlier, kind, level, best[2], best[1]
