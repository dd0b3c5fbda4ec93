"""The in-process `RiskStore`: the embedded default when no Redis is configured.

Histories live in a dict ordered by last use and bounded by `max_users` (the least
recently used user is dropped first), each a list of places sorted by time. Expiry follows
Redis's per-key TTL: a user's whole history goes `ttl_s` after its last write, measured
with the `now` the caller passes (the store never reads a clock), and a write never moves
the expiry earlier (a replayed old sign-in cannot shorten a live history). Every call runs
without awaiting, so on one event loop it is atomic like the Redis script. Each replica
keeps its own histories: use Redis when several replicas serve one tenant.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

from pdp.risk.assessment import Place


@dataclass(slots=True)
class _History:
    expires_at: float
    places: list[Place] = field(default_factory=list)  # sorted by time, oldest first


def _time_of(place: Place) -> float:
    return place.time


class MemoryStore:
    """Per-user sign-in histories in this process, bounded in users, entries and time."""

    def __init__(self, *, history_size: int, ttl_s: float, max_users: int) -> None:
        if history_size < 1 or ttl_s <= 0 or max_users < 1:
            raise ValueError(
                f"history_size ({history_size}), ttl_s ({ttl_s}) and max_users ({max_users})"
                " must be positive"
            )
        self._size = history_size
        self._ttl_s = ttl_s
        self._max_users = max_users
        self._users: OrderedDict[str, _History] = OrderedDict()

    def __len__(self) -> int:
        """The number of users with a history held (expired ones until next touched)."""
        return len(self._users)

    async def record_and_fetch(
        self, user: str, place: Place | None, *, record: bool, now: float
    ) -> list[Place]:
        """The user's history before this sign-in; records `place` when asked (see RiskStore)."""
        history = self._users.get(user)
        if history is not None and now >= history.expires_at:
            del self._users[user]
            history = None
        before = list(history.places) if history is not None else []
        if not record or place is None:
            if history is not None:
                self._users.move_to_end(user)
            return before
        if history is None:
            history = _History(expires_at=now + self._ttl_s)
            self._users[user] = history
            if len(self._users) > self._max_users:
                self._users.popitem(last=False)
        else:
            self._users.move_to_end(user)
            history.expires_at = max(history.expires_at, now + self._ttl_s)
        _insert(history.places, place)
        del history.places[: -self._size]
        return before

    async def close(self) -> None:
        """Drop every history."""
        self._users.clear()

    async def ping(self) -> bool:
        """Always true: the store is this process."""
        return True


def _insert(places: list[Place], place: Place) -> None:
    """Insert `place` in time order after equal times, unless the same sign-in is there."""
    lo = bisect.bisect_left(places, place.time, key=_time_of)
    hi = bisect.bisect_right(places, place.time, lo=lo, key=_time_of)
    if place not in places[lo:hi]:
        places.insert(hi, place)
