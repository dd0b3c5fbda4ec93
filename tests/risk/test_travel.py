"""Impossible travel (pdp.risk.travel): distances, the thresholds at their edges, the cases."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.risk.assessment import Detection, Place
from pdp.risk.settings import TravelSettings
from pdp.risk.travel import (
    EARTH_RADIUS_KM,
    IMPOSSIBLE_TRAVEL,
    UNFAMILIAR_LOCATION,
    UNLIKELY_TRAVEL,
    detect,
    haversine_km,
    level_of,
    travel_window_s,
)

DEFAULTS = TravelSettings()
PROPERTIES = settings(max_examples=300, deadline=None, database=None)
T0 = 1_777_636_800.0  # 2026-05-01T12:00:00Z
HOUR = 3600.0

PARIS = (48.8566, 2.3522)
LYON = (45.7640, 4.8357)
NEW_YORK = (40.7128, -74.0060)
LOS_ANGELES = (34.0522, -118.2437)
LONDON = (51.5074, -0.1278)
SYDNEY = (-33.8688, 151.2093)
VERSAILLES = (48.8049, 2.1204)  # about 18 km from Paris


def place(
    where: tuple[float, float],
    time: float = T0,
    *,
    ip: str = "",
    country: str = "",
    radius: float = 0.0,
) -> Place:
    """A sign-in at `where` (lat, lon) and `time`; each place gets its own IP unless given."""
    return Place(
        time=time,
        latitude=where[0],
        longitude=where[1],
        accuracy_radius_km=radius,
        country=country,
        ip_address=ip or _ip_of(where),
    )


def _ip_of(where: tuple[float, float]) -> str:
    """A documentation IPv6 address of its own for each place (to 0.01 degree)."""
    return f"2001:db8:{round(where[0] * 100) & 0xFFFF:x}:{round(where[1] * 100) & 0xFFFF:x}::1"


def pair_at(effective_km: float) -> tuple[Place, Place]:
    """Two equator sign-ins whose effective distance is exactly `effective_km`.

    The points are ~1.5x the target apart and the earlier one's accuracy radius takes up the
    rest; the subtraction is exact (Sterbenz), so thresholds can be hit on the nose.
    """
    lon = math.degrees(1.5 * effective_km / EARTH_RADIUS_KM)
    great_circle = haversine_km(0.0, 0.0, 0.0, lon)
    radius = great_circle - effective_km
    assert great_circle - (radius + 0.0) == effective_km  # as detect() computes it
    earlier = place((0.0, 0.0), T0, ip="192.0.2.1", radius=radius)
    return earlier, place((0.0, lon), T0, ip="192.0.2.2")


def kinds(detections: tuple[Detection, ...]) -> list[tuple[str, str]]:
    """The (kind, level) of each detection, in order."""
    return [(d.kind, d.level) for d in detections]


# --- distances ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        (PARIS, NEW_YORK, 5837.0),
        (PARIS, LYON, 392.0),
        (LONDON, SYDNEY, 16_994.0),
        (NEW_YORK, LOS_ANGELES, 3936.0),
    ],
    ids=["paris-new-york", "paris-lyon", "london-sydney", "new-york-los-angeles"],
)
def test_haversine_matches_known_city_pairs(
    a: tuple[float, float], b: tuple[float, float], km: float
) -> None:
    """Great-circle distances of well-known city pairs are within 0.5 % of the published ones."""
    assert haversine_km(*a, *b) == pytest.approx(km, rel=0.005)
    assert haversine_km(*b, *a) == pytest.approx(km, rel=0.005)


def test_haversine_of_a_point_to_itself_and_antipode() -> None:
    """A point is 0 km from itself and half a circumference from its antipode."""
    assert haversine_km(*PARIS, *PARIS) == 0.0
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)


# --- the cases of the issue ----------------------------------------------------------------


def test_first_sign_in_has_no_detection() -> None:
    """With an empty history there is nothing to compare with: no detection."""
    assert detect([], place(PARIS, country="FR"), DEFAULTS) == ()


def test_same_place_is_not_judged() -> None:
    """Two sign-ins a minute apart from Paris and Versailles (< 20 km) are the same place."""
    history = [place(PARIS)]
    current = place(VERSAILLES, T0 + 60)
    loose = dataclasses.replace(DEFAULTS, unlikely_distance_km=0.0, impossible_distance_km=0.0)
    assert detect(history, current, loose) == ()


def test_same_ip_far_away_is_ignored() -> None:
    """A pair from the same IP is never judged, however far apart its geo-IP places are."""
    history = [place(PARIS, ip="203.0.113.9")]
    current = place(NEW_YORK, T0 + 60, ip="203.0.113.9")
    assert detect(history, current, DEFAULTS) == ()


def test_paris_then_new_york_one_hour_later_is_impossible_travel() -> None:
    """Paris then New York an hour later (~5,800 km/h): one impossibleTravel, level high."""
    earlier = place(PARIS, country="FR")
    current = place(NEW_YORK, T0 + HOUR, country="US")
    (found,) = detect([earlier], current, DEFAULTS)
    assert (found.kind, found.level) == (IMPOSSIBLE_TRAVEL, "high")
    assert found.previous == earlier
    assert found.current == current
    assert found.distance_km == round(haversine_km(*PARIS, *NEW_YORK), 1)
    assert found.speed_kmh == found.distance_km
    assert level_of((found,)) == "high"


def test_paris_then_lyon_two_hours_later_is_nothing() -> None:
    """Paris then Lyon two hours later (~196 km/h) is a train ride: no detection."""
    assert detect([place(PARIS)], place(LYON, T0 + 2 * HOUR), DEFAULTS) == ()


def test_simultaneous_attempts_from_distant_continents_are_high() -> None:
    """Two attempts 30 s apart (London, Sydney) compare over the 60 s floor: high."""
    (found,) = detect([place(LONDON)], place(SYDNEY, T0 + 30), DEFAULTS)
    assert (found.kind, found.level) == (IMPOSSIBLE_TRAVEL, "high")
    assert found.speed_kmh == pytest.approx(haversine_km(*LONDON, *SYDNEY) * 60, abs=0.1)


def test_nearby_cities_within_accuracy_radii_are_nothing() -> None:
    """Paris and Lyon a minute apart with 200 km radii each are not surely apart: none."""
    history = [place(PARIS, radius=200.0)]
    assert detect(history, place(LYON, T0 + 60, radius=200.0), DEFAULTS) == ()


def test_radii_are_subtracted_from_the_distance() -> None:
    """The reported distance is the great circle minus both accuracy radii."""
    history = [place(PARIS, radius=100.0)]
    (found,) = detect(history, place(NEW_YORK, T0 + HOUR, radius=50.0), DEFAULTS)
    assert found.distance_km == round(haversine_km(*PARIS, *NEW_YORK) - (100.0 + 50.0), 1)


def test_reversed_timestamps_give_the_forward_result() -> None:
    """A current sign-in stamped before its history (clock skew) is judged as if in order."""
    forward = detect([place(PARIS)], place(NEW_YORK, T0 + HOUR), DEFAULTS)
    backward = detect([place(PARIS, T0 + HOUR)], place(NEW_YORK, T0), DEFAULTS)
    assert kinds(backward) == kinds(forward) == [(IMPOSSIBLE_TRAVEL, "high")]
    assert backward[0].speed_kmh == forward[0].speed_kmh > 0
    assert backward[0].distance_km == forward[0].distance_km


def test_ipv6_sign_ins_are_judged_and_same_ipv6_is_ignored() -> None:
    """IPv6 sign-ins are judged like IPv4 ones; the same IPv6 address far away is ignored."""
    earlier = place(PARIS, ip="2a01:e0a::1")
    assert kinds(detect([earlier], place(NEW_YORK, T0 + HOUR, ip="2600:1f18::1"), DEFAULTS)) == [
        (IMPOSSIBLE_TRAVEL, "high")
    ]
    assert detect([earlier], place(NEW_YORK, T0 + HOUR, ip="2a01:e0a::1"), DEFAULTS) == ()


def test_most_severe_pair_wins_and_ties_go_to_the_highest_speed() -> None:
    """Of several suspicious pairs, the one detection is the most severe, then the fastest."""
    lyon = place(LYON, T0 - 600)  # Lyon -> New York in 10 min: the fastest
    paris = place(PARIS, T0 - HOUR)
    los_angeles = place(LOS_ANGELES, T0 - 6 * HOUR)  # 3,936 km in 6 h: nothing
    (found,) = detect([paris, lyon, los_angeles], place(NEW_YORK, T0), DEFAULTS)
    assert found.previous == lyon
    slower = detect([paris, los_angeles], place(NEW_YORK, T0), DEFAULTS)
    assert slower[0].previous == paris


def test_severity_beats_speed() -> None:
    """A high pair is reported over a faster medium one (Lyon 30 s before, under 500 km)."""
    lyon = place(LYON, T0 - 30)  # 392 km in the 60 s floor: ~23,500 km/h, but medium
    new_york = place(NEW_YORK, T0 - HOUR)  # ~5,800 km/h over 5,837 km: high
    (found,) = detect([lyon, new_york], place(PARIS, T0), DEFAULTS)
    assert (found.level, found.previous) == ("high", new_york)
    assert kinds(detect([lyon], place(PARIS, T0), DEFAULTS)) == [(UNLIKELY_TRAVEL, "medium")]


# --- thresholds at their edges (exact effective distances, radii subtracted) --------------


@pytest.mark.parametrize(
    ("elapsed_s", "expected"),
    [(3599.0, "high"), (3600.0, "high"), (3601.0, "medium")],
    ids=["above", "at", "below"],
)
def test_impossible_speed_edge(elapsed_s: float, expected: str) -> None:
    """1,000 km (effective) in 1 h is exactly 1,000 km/h: high; one second slower: medium."""
    earlier, current = pair_at(1000.0)
    current = dataclasses.replace(current, time=T0 + elapsed_s)
    assert level_of(detect([earlier], current, DEFAULTS)) == expected


@pytest.mark.parametrize(
    ("km", "expected"),
    [(499.9, "medium"), (500.0, "high"), (500.1, "high")],
    ids=["below", "at", "above"],
)
def test_impossible_distance_edge(km: float, expected: str) -> None:
    """Within the minute, >= 500 km (effective) is high; just under it only medium."""
    earlier, current = pair_at(km)
    assert level_of(detect([earlier], dataclasses.replace(current, time=T0 + 60), DEFAULTS)) == (
        expected
    )


@pytest.mark.parametrize(
    ("elapsed_s", "expected"),
    [(3599.0, "medium"), (3600.0, "medium"), (3601.0, "none")],
    ids=["above", "at", "below"],
)
def test_unlikely_speed_edge(elapsed_s: float, expected: str) -> None:
    """805 km (effective) in 1 h is exactly 805 km/h: medium; one second slower: nothing."""
    earlier, current = pair_at(805.0)
    current = dataclasses.replace(current, time=T0 + elapsed_s)
    assert level_of(detect([earlier], current, DEFAULTS)) == expected


@pytest.mark.parametrize(
    ("km", "expected"),
    [(99.9, "none"), (100.0, "medium"), (100.1, "medium")],
    ids=["below", "at", "above"],
)
def test_unlikely_distance_edge(km: float, expected: str) -> None:
    """Within the minute, >= 100 km (effective) is medium; just under it nothing."""
    earlier, current = pair_at(km)
    assert level_of(detect([earlier], dataclasses.replace(current, time=T0 + 60), DEFAULTS)) == (
        expected
    )


@pytest.mark.parametrize(
    ("km", "expected"),
    [(19.9, "none"), (20.0, "medium"), (20.1, "medium")],
    ids=["below", "at", "above"],
)
def test_same_place_edge(km: float, expected: str) -> None:
    """With no distance minimum, pairs under 20 km (effective) are still the same place."""
    loose = dataclasses.replace(DEFAULTS, unlikely_distance_km=0.0)
    earlier, current = pair_at(km)
    assert level_of(detect([earlier], dataclasses.replace(current, time=T0), loose)) == expected


def test_elapsed_floor_is_a_setting() -> None:
    """The elapsed-time floor comes from the settings: 100 km at once is 6,000 km/h or 600."""
    earlier, current = pair_at(100.0)
    (found,) = detect([earlier], current, DEFAULTS)
    assert found.speed_kmh == 6000.0
    slow_floor = dataclasses.replace(DEFAULTS, min_elapsed_s=600.0)
    assert detect([earlier], current, slow_floor) == ()


# --- unfamiliar location -------------------------------------------------------------------


def _french_history(count: int) -> list[Place]:
    """`count` sign-ins from Paris, one a day, all in France."""
    return [
        place(PARIS, T0 - (count - i) * 86_400, ip="81.2.69.1", country="FR") for i in range(count)
    ]


def test_unfamiliar_country_after_five_sign_ins() -> None:
    """After five French sign-ins, one from Germany a day later is unfamiliar (low)."""
    current = place((52.52, 13.405), T0 + 86_400, ip="85.214.0.1", country="DE")
    (found,) = detect(_french_history(5), current, DEFAULTS)
    assert (found.kind, found.level, found.previous) == (UNFAMILIAR_LOCATION, "low", None)
    assert found.current == current


def test_unfamiliar_country_needs_five_sign_ins() -> None:
    """With four sign-ins of history a new country is not yet unfamiliar."""
    current = place((52.52, 13.405), T0 + 86_400, ip="85.214.0.1", country="DE")
    assert detect(_french_history(4), current, DEFAULTS) == ()


def test_familiar_or_unknown_country_is_not_unfamiliar() -> None:
    """A country already seen, or an unknown one, raises nothing."""
    history = _french_history(5)
    assert detect(history, place(LYON, T0 + 86_400, ip="81.2.69.7", country="FR"), DEFAULTS) == ()
    assert detect(history, place(LYON, T0 + 86_400, ip="81.2.69.7"), DEFAULTS) == ()


def test_travel_and_unfamiliar_are_ordered_most_severe_first() -> None:
    """New York an hour after five Paris sign-ins is high travel first, then unfamiliar."""
    current = place(NEW_YORK, T0 - 86_400 + HOUR, ip="192.0.2.77", country="US")
    found = detect(_french_history(5), current, DEFAULTS)
    assert kinds(found) == [(IMPOSSIBLE_TRAVEL, "high"), (UNFAMILIAR_LOCATION, "low")]
    assert level_of(found) == "high"


def test_unlikely_travel_is_medium() -> None:
    """Paris then New York seven hours later (~834 km/h) is unlikelyTravel, medium."""
    found = detect([place(PARIS)], place(NEW_YORK, T0 + 7 * HOUR), DEFAULTS)
    assert kinds(found) == [(UNLIKELY_TRAVEL, "medium")]


def test_level_of_nothing_is_none() -> None:
    """No detections means level "none"."""
    assert level_of(()) == "none"


# --- properties ----------------------------------------------------------------------------

latitudes = st.floats(min_value=-90.0, max_value=90.0)
longitudes = st.floats(min_value=-180.0, max_value=180.0)
radii = st.floats(min_value=0.0, max_value=1000.0)
# Whole seconds: mirroring (2 * T0 - t) is then exact, so only the rules can break symmetry.
times = st.integers(min_value=int(T0) - 30 * 86_400, max_value=int(T0) + 30 * 86_400).map(float)
places = st.builds(
    Place,
    time=times,
    latitude=latitudes,
    longitude=longitudes,
    accuracy_radius_km=radii,
    country=st.sampled_from(["", "FR", "US", "AU"]),
    ip_address=st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1", "198.51.100.9"]),
)


def _evidence(detections: tuple[Detection, ...]) -> list[tuple[str, str, float, float]]:
    """Kind, level, distance and speed of each detection (what must not depend on order)."""
    return [(d.kind, d.level, d.distance_km, d.speed_kmh) for d in detections]


@PROPERTIES
@given(history=st.lists(places, max_size=8), current=places)
def test_speed_and_distance_are_never_negative(history: list[Place], current: Place) -> None:
    """Whatever the order of the timestamps, speeds and distances are finite and >= 0."""
    for found in detect(history, current, DEFAULTS):
        assert found.speed_kmh >= 0.0
        assert found.distance_km >= 0.0
        assert math.isfinite(found.speed_kmh)


@PROPERTIES
@given(a=places, b=places)
def test_detect_is_symmetric_in_time_order(a: Place, b: Place) -> None:
    """Judging b after a gives the same travel evidence as judging a after b."""
    travel = {IMPOSSIBLE_TRAVEL, UNLIKELY_TRAVEL}
    forward = [e for e in _evidence(detect([a], b, DEFAULTS)) if e[0] in travel]
    backward = [e for e in _evidence(detect([b], a, DEFAULTS)) if e[0] in travel]
    assert forward == backward


@PROPERTIES
@given(history=st.lists(places, max_size=8), current=places)
def test_mirrored_timestamps_give_the_same_result(history: list[Place], current: Place) -> None:
    """Reversing the arrow of time for every sign-in changes no detection's evidence."""

    def mirror(p: Place) -> Place:
        return dataclasses.replace(p, time=2 * T0 - p.time)

    mirrored = detect([mirror(p) for p in history], mirror(current), DEFAULTS)
    assert _evidence(mirrored) == _evidence(detect(history, current, DEFAULTS))


@PROPERTIES
@given(history=st.lists(places, max_size=8), current=places, extra=radii)
def test_a_larger_accuracy_radius_never_raises_the_level(
    history: list[Place], current: Place, extra: float
) -> None:
    """Being less sure where the sign-in was can only lower (or keep) the level."""
    vaguer = dataclasses.replace(current, accuracy_radius_km=current.accuracy_radius_km + extra)
    levels = ["none", "low", "medium", "high"]
    before = levels.index(level_of(detect(history, current, DEFAULTS)))
    assert levels.index(level_of(detect(history, vaguer, DEFAULTS))) <= before


def test_the_travel_window_is_about_25_hours_by_default() -> None:
    """Half the Earth's circumference at 805 km/h, plus a second: about 24.9 h."""
    assert travel_window_s(DEFAULTS) == pytest.approx(math.pi * EARTH_RADIUS_KM / 805 * 3600 + 1)
    assert 24 * HOUR < travel_window_s(DEFAULTS) < 25 * HOUR
    assert travel_window_s(dataclasses.replace(DEFAULTS, unlikely_speed_kmh=0.0)) == math.inf


# Times spread over 5 days, so that many pairs fall outside the travel window.
wide_times = st.integers(min_value=int(T0) - 5 * 86_400, max_value=int(T0) + 5 * 86_400).map(float)
wide_places = st.builds(
    Place,
    time=wide_times,
    latitude=latitudes,
    longitude=longitudes,
    accuracy_radius_km=st.floats(min_value=0.0, max_value=50.0),
    country=st.sampled_from(["", "FR", "US"]),
    ip_address=st.sampled_from(["192.0.2.1", "192.0.2.2", "2001:db8::1"]),
)


@PROPERTIES
@given(history=st.lists(wide_places, max_size=12), current=wide_places)
def test_judging_the_travel_window_alone_finds_the_same_travel(
    history: list[Place], current: Place
) -> None:
    """What the stores return (the travel window only) yields the travel detection of all."""
    window = travel_window_s(DEFAULTS)
    recent = [p for p in history if abs(p.time - current.time) <= window]
    travel = {IMPOSSIBLE_TRAVEL, UNLIKELY_TRAVEL}
    everything = [d for d in detect(history, current, DEFAULTS) if d.kind in travel]
    windowed = [d for d in detect(recent, current, DEFAULTS) if d.kind in travel]
    assert windowed == everything
