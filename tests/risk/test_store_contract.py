"""One contract for every RiskStore: in-process, Redis standalone and a 3-node Redis Cluster.

Each test runs against each store. The last one replays random sequences far from the wall
clock (2001, and 2040) through the store under test and through the in-process store, and
requires the very same answer for every call: windows are measured in sign-in time.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from pdp.risk import record as rec
from pdp.risk.assessment import Place
from pdp.risk.memory_store import MemoryStore
from pdp.risk.redis_store import RedisStore
from pdp.risk.settings import RiskSettings, TravelSettings
from pdp.risk.store import History, RiskStore

PARIS = Place(1_000.0, 48.8566, 2.3522, 20.0, "FR", "192.0.2.10")
NEW_YORK = Place(4_600.0, 40.7128, -74.006, 10.0, "US", "198.51.100.20")
SYDNEY_V6 = Place(9_000.125, -33.8688, 151.2093, 1000.0, "AU", "2001:db8:85a3::8a2e:370:7334")
DAY = 86_400.0

Scenario = Callable[[RiskStore], Awaitable[None]]


class Backend:
    """Makes one kind of store."""

    name = "memory"

    def make(self, *, history_size: int, recent_s: float, window_s: float) -> RiskStore:
        """A new, empty store (called inside the event loop)."""
        return MemoryStore(
            history_size=history_size, recent_s=recent_s, window_s=window_s, budget_bytes=1 << 24
        )


class RedisBackend(Backend):
    """A RedisStore built from settings, as `pdp serve` builds it."""

    def __init__(self, url: str, mode: str) -> None:
        self.url = url
        self.name = mode

    def make(self, *, history_size: int, recent_s: float, window_s: float) -> RiskStore:
        """A RedisStore on the test's (emptied) server or cluster, with a generous budget."""
        travel = TravelSettings(history_size=history_size, history_window_s=int(window_s))
        settings = RiskSettings(
            redis_url=self.url, redis_mode=self.name, redis_timeout_ms=2_000, travel=travel
        )
        return RedisStore.from_settings(settings, recent_s=recent_s)


@pytest.fixture(params=["memory", "standalone", "cluster"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each store kind in turn."""
    if request.param == "memory":
        return Backend()
    if request.param == "standalone":
        return RedisBackend(request.getfixturevalue("redis_server").url, "standalone")
    return RedisBackend(request.getfixturevalue("redis_cluster").url, "cluster")


def run(
    backend: Backend,
    scenario: Scenario,
    *,
    history_size: int = 5,
    recent_s: float = 30 * DAY,
    window_s: float = 30 * DAY,
) -> None:
    """Run `scenario` against a fresh, warmed-up store of `backend`, closing it afterwards."""

    async def main() -> None:
        store = backend.make(history_size=history_size, recent_s=recent_s, window_s=window_s)
        try:
            assert await store.warm_up()
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


async def record(store: RiskStore, user: str, place: Place) -> list[Place]:
    """Record `place` and return the history (travel window) before it."""
    history = await store.record_and_fetch(user, rec.of_place(place), record=True)
    return rec.to_places(history.recent)


async def fetch(store: RiskStore, user: str, time: float = 10_000.0) -> list[Place]:
    """Read the history around `time` without recording anything."""
    sign_in = rec.pack(time, 0.0, 0.0, 0.0, "", rec.NO_IP)
    return rec.to_places((await store.record_and_fetch(user, sign_in, record=False)).recent)


def at(time: float, place: Place = PARIS) -> Place:
    """`place` at another time."""
    return replace(place, time=time)


def test_unknown_user_has_an_empty_history(backend: Backend) -> None:
    """A user never seen has no history, and reading one records nothing."""

    async def scenario(store: RiskStore) -> None:
        assert await fetch(store, "u-1") == []
        sign_in = rec.of_place(PARIS)
        assert await store.record_and_fetch("u-1", sign_in, record=False) == History(b"", 0, False)
        assert await fetch(store, "u-1") == []

    run(backend, scenario)


def test_record_returns_the_history_before_the_sign_in(backend: Backend) -> None:
    """Each call returns the earlier sign-ins, oldest first, and appends the current one."""

    async def scenario(store: RiskStore) -> None:
        assert await record(store, "u-1", PARIS) == []
        assert await record(store, "u-1", NEW_YORK) == [PARIS]
        assert await record(store, "u-1", SYDNEY_V6) == [PARIS, NEW_YORK]
        assert await fetch(store, "u-1") == [PARIS, NEW_YORK, SYDNEY_V6]

    run(backend, scenario)


def test_history_is_trimmed_to_the_newest_n_by_time(backend: Backend) -> None:
    """Past N entries the oldest by sign-in time go, whatever order they came in."""

    async def scenario(store: RiskStore) -> None:
        times = [float(t) for t in range(1_000, 1_010)]
        random.Random(7).shuffle(times)
        for t in times:
            await record(store, "u-1", at(t))
        assert [p.time for p in await fetch(store, "u-1")] == [1_005, 1_006, 1_007, 1_008, 1_009]

    run(backend, scenario)


def test_out_of_order_sign_ins_land_in_place(backend: Backend) -> None:
    """A sign-in stamped earlier than the last one is inserted by time, nothing lost."""

    async def scenario(store: RiskStore) -> None:
        await record(store, "u-1", at(1_000))
        await record(store, "u-1", at(3_000, NEW_YORK))
        before = await record(store, "u-1", at(2_000, SYDNEY_V6))
        assert [p.time for p in before] == [1_000, 3_000]
        history = await fetch(store, "u-1")
        assert history == [at(1_000), at(2_000, SYDNEY_V6), at(3_000, NEW_YORK)]

    run(backend, scenario)


def test_users_are_isolated(backend: Backend) -> None:
    """One user's sign-ins never show in another's history."""

    async def scenario(store: RiskStore) -> None:
        await record(store, "u-1", PARIS)
        await record(store, "u-2", NEW_YORK)
        assert await fetch(store, "u-1") == [PARIS]
        assert await fetch(store, "u-2") == [NEW_YORK]
        assert await fetch(store, "u-3") == []

    run(backend, scenario)


def test_identical_places_at_different_times_are_both_kept(backend: Backend) -> None:
    """Two sign-ins from the same place and IP are two entries when their times differ."""

    async def scenario(store: RiskStore) -> None:
        await record(store, "u-1", at(1_000))
        await record(store, "u-1", at(1_000.5))
        await record(store, "u-1", at(1_000))  # the very same sign-in again: one entry
        assert await fetch(store, "u-1") == [at(1_000), at(1_000.5)]

    run(backend, scenario)


def test_places_keep_their_fields(backend: Backend) -> None:
    """IPv6, southern and western coordinates, unknown country and no IP come back as stored."""
    nowhere = Place(5_000.0, -0.5, -179.9999, 0.0, "", "")

    async def scenario(store: RiskStore) -> None:
        await record(store, "u-1", SYDNEY_V6)
        await record(store, "u-1", nowhere)
        assert await fetch(store, "u-1") == [nowhere, SYDNEY_V6]

    run(backend, scenario)


def test_only_the_travel_window_comes_back_both_sides_bounds_included(backend: Backend) -> None:
    """Around a sign-in at t, the records within recent_s of t (before or after) come back."""

    async def scenario(store: RiskStore) -> None:
        for t in (0.0, 899.0, 900.0, 1_000.0, 1_100.0, 1_100.5, 5_000.0):
            await record(store, "u-1", at(t))
        assert [p.time for p in await fetch(store, "u-1", 1_000.0)] == [900, 1_000, 1_100]
        assert [p.time for p in await fetch(store, "u-1", 50.0)] == [0]
        assert await fetch(store, "u-1", 3_000.0) == []

    run(backend, scenario, history_size=10, recent_s=100.0, window_s=1_000.0)


def test_the_country_summary_covers_the_history_window_only(backend: Backend) -> None:
    """Known countries are counted within window_s of the sign-in, both sides; seen is exact."""

    async def scenario(store: RiskStore) -> None:
        for t, country in ((0.0, "FR"), (500.0, "DE"), (1_000.0, ""), (1_400.0, "FR")):
            await record(store, "u-1", replace(at(t), country=country))

        async def summary(time: float, country: str) -> tuple[int, bool]:
            sign_in = rec.pack(time, 0.0, 0.0, 0.0, country, rec.NO_IP)
            history = await store.record_and_fetch("u-1", sign_in, record=False)
            return history.known, history.seen

        assert await summary(1_000.0, "FR") == (3, True)  # 0 (bound) .. 1,400: FR, DE, FR
        assert await summary(1_000.0, "US") == (3, False)
        assert await summary(1_401.0, "FR") == (2, True)  # 401 .. 2,401: DE, FR
        assert await summary(2_400.0, "DE") == (1, False)  # 1,400 .. 3,400: FR
        assert await summary(1_000.0, "") == (0, False)  # an unknown country is not compared

    run(backend, scenario, history_size=10, recent_s=100.0, window_s=1_000.0)


def test_ping_answers(backend: Backend) -> None:
    """A reachable store answers its health check."""

    async def scenario(store: RiskStore) -> None:
        assert await store.ping() is True

    run(backend, scenario)


YEAR_2001 = 978_307_200.0
YEAR_2040 = 2_208_988_800.0


def _random_sequence(seed: int, start: float, calls: int) -> list[tuple[str, bytes, bool]]:
    """`calls` sign-ins of 3 users around `start`: out of order, days to months apart."""
    rng = random.Random(seed)
    cities = [PARIS, NEW_YORK, SYDNEY_V6, Place(0, 52.52, 13.405, 50.0, "DE", "85.214.0.1")]
    sequence = []
    for _ in range(calls):
        city = rng.choice(cities)
        time = start + rng.choice([rng.uniform(0, 3 * DAY), rng.uniform(0, 90 * DAY)])
        place = replace(city, time=round(time, 3), country=rng.choice([city.country, ""]))
        sequence.append((f"user-{rng.randrange(3)}", rec.of_place(place), rng.random() < 0.8))
    return sequence


def test_replayed_old_sequences_get_the_in_process_answer(backend: Backend) -> None:
    """Sequences in 2001 and 2040 (far from the wall clock): every answer equals the in-process one.

    The history and travel windows are the defaults (30 days, about 25 h), measured in
    sign-in time; a store measuring them on its own clock would keep month-old records.
    """
    travel = TravelSettings()
    sizes = {"history_size": travel.history_size, "window_s": float(travel.history_window_s)}
    recent_s = 25 * 3600.0
    sequence = _random_sequence(11, YEAR_2001, 150) + _random_sequence(12, YEAR_2040, 150)

    async def replay(store: RiskStore) -> list[History]:
        return [await store.record_and_fetch(u, s, record=r) for u, s, r in sequence]

    expected: list[History] = []

    async def reference() -> None:
        store = Backend().make(recent_s=recent_s, **sizes)  # type: ignore[arg-type]
        expected.extend(await replay(store))

    asyncio.run(reference())
    assert any(h.known and not h.recent for h in expected)  # the windows did matter

    async def scenario(store: RiskStore) -> None:
        assert await replay(store) == expected

    run(backend, scenario, recent_s=recent_s, **sizes)  # type: ignore[arg-type]
