"""The in-process `RiskStore`: the embedded default when no Redis is configured.

Each user's history is ONE bytes object: the user's records (`pdp.risk.record`, 50 bytes
each) concatenated in time order, so a full 20-entry history costs about 1.2 KB with its
key, and the garbage collector has nothing to walk (bytes and str hold no references): a
store of 100,000 users adds no measurable pause to a full collection.

Memory is bounded by a budget in bytes: every user costs the length of its key and records
plus a fixed overhead (the dict slot, the LRU links and the object headers, measured with
tracemalloc by tests/risk/test_memory_store.py); past the budget the least recently used
users are dropped first. Nothing expires by a clock: windows are measured in sign-in time
(see `pdp.risk.store`), so an old history simply stops counting. Every call runs without
awaiting, so on one event loop it is atomic like the Redis script. Each replica (and each
worker process) keeps its own histories: use Redis when several serve one tenant.
"""

from __future__ import annotations

import sys
from collections import OrderedDict

from pdp.risk import record as rec
from pdp.risk.store import History, Windows, check_windows

SIZE = rec.SIZE
# Per user beyond its key's characters and its records: the bytes object's header (33), the
# str header (sys.getsizeof("") = 49 for ASCII), the dict slot and ordered-dict node (~120).
USER_OVERHEAD = 33 + sys.getsizeof("") + 120
_EMPTY = History(b"", 0, False)
_time_at = rec.TIME.unpack_from


class MemoryStore:
    """Per-user sign-in histories in this process, bounded by a memory budget."""

    def __init__(
        self, *, history_size: int, recent_s: float, window_s: float, budget_bytes: int
    ) -> None:
        check_windows(history_size, recent_s, window_s)
        if budget_bytes < 1:
            raise ValueError(f"budget_bytes ({budget_bytes}) must be positive")
        self._size = history_size
        self._recent_s = recent_s
        self._window_s = window_s
        self.budget_bytes = budget_bytes
        self.used_bytes = 0  # the accounted size of every history held
        self.evicted = 0  # users dropped to stay within the budget
        self._users: OrderedDict[str, bytes] = OrderedDict()

    def __len__(self) -> int:
        """The number of users with a history held."""
        return len(self._users)

    async def record_and_fetch(self, user: str, sign_in: bytes, *, record: bool) -> History:
        """The user's history around `sign_in`, before it; records it when asked."""
        users = self._users
        blob = users.get(user)
        if blob is None:
            history = _EMPTY
        else:
            users.move_to_end(user)
            history = self._read(blob, sign_in)
        if record:
            self._write(user, blob, sign_in)
        return history

    def _read(self, blob: bytes, sign_in: bytes) -> History:
        windows = Windows.around(_time_at(sign_in)[0], self._recent_s, self._window_s)
        count = len(blob) // SIZE
        first = _first_at_or_after(blob, count, windows.recent_low)
        last = _first_after(blob, count, windows.recent_high)
        recent = blob[first * SIZE : last * SIZE] if first or last < count else blob
        country = rec.country_of(sign_in)
        if country == rec.NO_COUNTRY:
            return History(recent, 0, False)
        known, seen = 0, False
        at = rec.COUNTRY_AT
        start = _first_at_or_after(blob, count, windows.low)
        for offset in range(start * SIZE, _first_after(blob, count, windows.high) * SIZE, SIZE):
            other = blob[offset + at : offset + at + 2]
            if other != rec.NO_COUNTRY:
                known += 1
                seen = seen or other == country
        return History(recent, known, seen)

    def _write(self, user: str, blob: bytes | None, sign_in: bytes) -> None:
        if blob is None:
            self._users[user] = sign_in
            self.used_bytes += SIZE + len(user) + USER_OVERHEAD
            self._evict()
            return
        updated = _insert(blob, sign_in)
        if len(updated) > self._size * SIZE:
            updated = updated[-self._size * SIZE :]
        self._users[user] = updated
        self.used_bytes += len(updated) - len(blob)
        self._evict()

    def _evict(self) -> None:
        users = self._users
        while self.used_bytes > self.budget_bytes and users:
            user, blob = users.popitem(last=False)
            self.used_bytes -= len(blob) + len(user) + USER_OVERHEAD
            self.evicted += 1

    async def warm_up(self) -> bool:
        """Nothing to prepare: always ready."""
        return True

    async def close(self) -> None:
        """Drop every history."""
        self._users.clear()
        self.used_bytes = 0

    async def ping(self) -> bool:
        """Always true: the store is this process."""
        return True


def _first_at_or_after(blob: bytes, count: int, time: float) -> int:
    """The index of the first record at or after `time` (`count` when none)."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if _time_at(blob, mid * SIZE)[0] < time:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _first_after(blob: bytes, count: int, time: float) -> int:
    """The index of the first record after `time` (`count` when none)."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        if _time_at(blob, mid * SIZE)[0] <= time:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _insert(blob: bytes, sign_in: bytes) -> bytes:
    """`blob` with `sign_in` in byte order (= time order), unless the very same is there."""
    lo, hi = 0, len(blob) // SIZE
    while lo < hi:  # the first record >= sign_in, comparing whole records as bytes
        mid = (lo + hi) // 2
        if blob[mid * SIZE : mid * SIZE + SIZE] < sign_in:
            lo = mid + 1
        else:
            hi = mid
    at = lo * SIZE
    if blob[at : at + SIZE] == sign_in:
        return blob
    return blob[:at] + sign_in + blob[at:]
