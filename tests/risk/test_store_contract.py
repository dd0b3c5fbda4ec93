"""One contract for every RiskStore: in-process, Redis standalone and a 3-node Redis Cluster.

Each test runs against each store. Time to live is checked by letting time pass: the
in-process store is handed a later `now`, the Redis ones really wait (TTL of 1 s).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from pdp.risk.assessment import Place
from pdp.risk.memory_store import MemoryStore
from pdp.risk.redis_store import RedisStore
from pdp.risk.settings import RiskSettings, TravelSettings
from pdp.risk.store import RiskStore

PARIS = Place(1_000.0, 48.8566, 2.3522, 20.0, "FR", "192.0.2.10")
NEW_YORK = Place(4_600.0, 40.7128, -74.006, 10.0, "US", "198.51.100.20")
SYDNEY_V6 = Place(9_000.125, -33.8688, 151.2093, 1000.0, "AU", "2001:db8:85a3::8a2e:370:7334")

Scenario = Callable[[RiskStore], Awaitable[None]]


class Backend:
    """Makes one kind of store and lets time pass for it."""

    name = "memory"

    def make(self, *, history_size: int, ttl_s: int) -> RiskStore:
        """A new, empty store (called inside the event loop)."""
        return MemoryStore(history_size=history_size, ttl_s=ttl_s, max_users=1_000)

    async def later(self, now: float, seconds: float) -> float:
        """`now` plus `seconds`, after that much time has passed for the store."""
        return now + seconds


class RedisBackend(Backend):
    """A RedisStore built from settings, as `pdp serve` builds it."""

    def __init__(self, url: str, mode: str) -> None:
        self.url = url
        self.name = mode

    def make(self, *, history_size: int, ttl_s: int) -> RiskStore:
        """A RedisStore on the test's (emptied) server or cluster, with a generous budget."""
        travel = TravelSettings(history_size=history_size, history_ttl_s=ttl_s)
        settings = RiskSettings(
            redis_url=self.url, redis_mode=self.name, redis_timeout_ms=2_000, travel=travel
        )
        return RedisStore.from_settings(settings)

    async def later(self, now: float, seconds: float) -> float:
        """Really wait: Redis expires keys by its own clock."""
        await asyncio.sleep(seconds)
        return now + seconds


@pytest.fixture(params=["memory", "standalone", "cluster"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Each store kind in turn."""
    if request.param == "memory":
        return Backend()
    if request.param == "standalone":
        return RedisBackend(request.getfixturevalue("redis_server").url, "standalone")
    return RedisBackend(request.getfixturevalue("redis_cluster").url, "cluster")


def run(
    backend: Backend, scenario: Scenario, *, history_size: int = 5, ttl_s: int = 86_400
) -> None:
    """Run `scenario` against a fresh store of `backend`, closing it afterwards."""

    async def main() -> None:
        store = backend.make(history_size=history_size, ttl_s=ttl_s)
        try:
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


async def record(
    store: RiskStore, user: str, place: Place, now: float | None = None
) -> list[Place]:
    """Record `place` and return the history before it."""
    return await store.record_and_fetch(
        user, place, record=True, now=place.time if now is None else now
    )


async def fetch(store: RiskStore, user: str, now: float = 10_000.0) -> list[Place]:
    """Read the history without recording anything."""
    return await store.record_and_fetch(user, None, record=False, now=now)


def at(time: float, place: Place = PARIS) -> Place:
    """`place` at another time."""
    return replace(place, time=time)


def test_unknown_user_has_an_empty_history(backend: Backend) -> None:
    """A user never seen has no history, and reading one records nothing."""

    async def scenario(store: RiskStore) -> None:
        assert await fetch(store, "u-1") == []
        assert await store.record_and_fetch("u-1", PARIS, record=False, now=1_000) == []
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


def test_no_place_records_nothing(backend: Backend) -> None:
    """record=True without a place only reads."""

    async def scenario(store: RiskStore) -> None:
        await record(store, "u-1", PARIS)
        assert await store.record_and_fetch("u-1", None, record=True, now=2_000) == [PARIS]
        assert await fetch(store, "u-1") == [PARIS]

    run(backend, scenario)


def test_history_is_trimmed_to_the_newest_n_by_time(backend: Backend) -> None:
    """Past N entries the oldest by sign-in time go, whatever order they came in."""

    async def scenario(store: RiskStore) -> None:
        times = [float(t) for t in range(1_000, 1_010)]
        random.Random(7).shuffle(times)
        for t in times:
            await record(store, "u-1", at(t), now=2_000)
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


def test_history_expires_ttl_after_the_last_write(backend: Backend) -> None:
    """A write restarts the time to live; a history unwritten for longer is gone."""

    async def scenario(store: RiskStore) -> None:
        now = 1_000.0
        await record(store, "u-1", at(now), now=now)
        now = await backend.later(now, 0.6)
        await record(store, "u-1", at(now, NEW_YORK), now=now)
        now = await backend.later(now, 0.6)  # 1.2 s after the first write, 0.6 after the last
        assert len(await fetch(store, "u-1", now)) == 2
        now = await backend.later(now, 0.6)  # 1.2 s after the last write
        assert await fetch(store, "u-1", now) == []

    run(backend, scenario, ttl_s=1)


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


def test_ping_answers(backend: Backend) -> None:
    """A reachable store answers its health check."""

    async def scenario(store: RiskStore) -> None:
        assert await store.ping() is True

    run(backend, scenario)


def test_memory_store_forgets_the_least_recently_used_user() -> None:
    """Past `max_users`, the user touched longest ago is dropped first."""

    async def scenario() -> None:
        store = MemoryStore(history_size=5, ttl_s=60, max_users=2)
        await record(store, "u-1", PARIS)
        await record(store, "u-2", PARIS)
        await fetch(store, "u-1", now=1_000)  # u-1 is now the most recently used
        await record(store, "u-3", PARIS)
        assert len(store) == 2
        assert await fetch(store, "u-2", now=1_000) == []
        assert await fetch(store, "u-1", now=1_000) == [PARIS]

    asyncio.run(scenario())


def test_memory_store_expiry_follows_the_callers_clock_only() -> None:
    """Expiry uses the `now` passed in; a replayed old sign-in cannot shorten a live history."""

    async def scenario() -> None:
        store = MemoryStore(history_size=5, ttl_s=60, max_users=10)
        await record(store, "u-1", at(1_000), now=1_000)
        await record(store, "u-1", at(10), now=10)  # replayed: expiry stays at 1_060
        assert len(await fetch(store, "u-1", now=1_059)) == 2
        assert await fetch(store, "u-1", now=1_060) == []

    asyncio.run(scenario())
