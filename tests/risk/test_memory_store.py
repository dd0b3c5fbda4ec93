"""The in-process store's memory: a budget it keeps (measured with tracemalloc), LRU beyond.

The store's accounting must not under-count what Python really allocates, or the budget
would not bound the process; nor over-count much, or it would waste the budget.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from pdp.risk import record as rec
from pdp.risk.memory_store import USER_OVERHEAD, MemoryStore

DAY = 86_400.0


def _fill(store: MemoryStore, users: int, per_user: int) -> None:
    async def fill() -> None:
        for i in range(users):
            user = f"{i:08d}-0000-4000-8000-{i:012d}"  # GUID-like ids, as Entra's
            for k in range(per_user):
                sign_in = rec.pack(1e9 + k * 3600, 48.85, 2.35, 20.0, "FR", rec.ip_bytes(i, 4))
                await store.record_and_fetch(user, sign_in, record=True)

    asyncio.run(fill())


def test_the_budget_bounds_what_python_allocates() -> None:
    """Filled past its 4 MiB budget, the store holds at most ~4 MiB and drops the oldest users."""
    budget = 4 * 1024 * 1024
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        store = MemoryStore(history_size=20, recent_s=DAY, window_s=30 * DAY, budget_bytes=budget)
        _fill(store, users=5_000, per_user=20)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert store.used_bytes <= budget
    assert store.evicted > 0
    assert 0.8 * budget <= held <= 1.1 * budget, (held, store.used_bytes, len(store))
    assert abs(held - store.used_bytes) <= 0.1 * budget


def test_least_recently_used_users_go_first() -> None:
    """Past the budget, the user touched longest ago is dropped; a read counts as a touch."""
    per_user = rec.SIZE + len("u-1") + USER_OVERHEAD
    store = MemoryStore(history_size=5, recent_s=DAY, window_s=DAY, budget_bytes=2 * per_user)
    paris = rec.pack(1_000.0, 48.85, 2.35, 20.0, "FR", rec.NO_IP)

    async def scenario() -> tuple[int, int]:
        await store.record_and_fetch("u-1", paris, record=True)
        await store.record_and_fetch("u-2", paris, record=True)
        await store.record_and_fetch("u-1", paris, record=False)  # u-1 is now the most recent
        await store.record_and_fetch("u-3", paris, record=True)
        kept = await store.record_and_fetch("u-1", paris, record=False)
        gone = await store.record_and_fetch("u-2", paris, record=False)
        return len(kept.recent) // rec.SIZE, len(gone.recent)

    assert asyncio.run(scenario()) == (1, 0)
    assert len(store) == 2


def test_a_full_store_gives_the_garbage_collector_nothing_to_walk() -> None:
    """100,000 users of 20 sign-ins add no object the cyclic collector tracks but the dict.

    Each history is one bytes object and each key a str, neither tracked, so a full
    collection does not grow with the store. (Place objects, the first design, meant
    2,000,000 tracked objects and a 360 ms pause at this size; README has the figures.)
    """
    store = MemoryStore(history_size=20, recent_s=DAY, window_s=30 * DAY, budget_bytes=1 << 30)
    gc.collect()
    before = len(gc.get_objects())
    _fill(store, users=100_000, per_user=1)
    gc.collect()
    assert len(store) == 100_000
    assert len(gc.get_objects()) - before < 100
