"""The per-user sign-in history behind pdp's risk detection, as one small protocol.

A `RiskStore` answers one question per evaluation, in one call: "what did this user's
sign-ins look like around this one?", and (when asked to) records this one in the same
step. Two implementations pass the same contract suite (tests/risk/test_store_contract.py):
`pdp.risk.memory_store.MemoryStore` (in-process, the embedded default) and
`pdp.risk.redis_store.RedisStore` (shared by every replica, one command per call).

The semantics both keep, on the records of `pdp.risk.record`:

- The history is ordered by sign-in time, oldest first (ties by the record's bytes); a
  sign-in recorded out of order (clock skew between gateways) lands in place. Two sign-ins
  with the same data at different times are two entries; the very same sign-in recorded
  twice is one.
- Windows are measured in sign-in time, never on a wall clock: for a sign-in at time t the
  store returns the records within `recent_s` of t (the travel window: both sides, bounds
  included) and counts, over the records within `window_s` of t (30 days), those of known
  country and whether t's country is among them. A replayed or backfilled sequence is
  therefore judged the same whenever it is replayed, and by either store.
- Recording inserts, then trims to the newest `history_size` entries by time, atomically
  with the read, which sees the history BEFORE this sign-in. Expiry (Redis's key TTL, the
  in-process store's memory budget) only bounds memory.
- A store that cannot answer (down, slow past its budget, circuit breaker open) raises
  `RiskStoreUnavailable`; what that means for the decision is the assessor's call.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol


class RiskStoreUnavailable(Exception):  # noqa: N818 - the domain's word for the state
    """The risk store could not answer within its budget, or its circuit breaker is open.

    The message names the store by its redacted address and never carries a password.
    """


class History(NamedTuple):
    """What a store returns for one sign-in: all the travel judgement needs, nothing more."""

    recent: bytes  # records within the travel window, oldest first, concatenated
    known: int  # records within the history window that have a country
    seen: bool  # whether the sign-in's country is among those


class Windows(NamedTuple):
    """The inclusive time bounds a store reads for a sign-in at `time` (see the module)."""

    recent_low: float
    recent_high: float
    low: float
    high: float

    @classmethod
    def around(cls, time: float, recent_s: float, window_s: float) -> Windows:
        """The bounds for a sign-in at `time`; -inf / inf where a window is unbounded."""
        return cls(time - recent_s, time + recent_s, time - window_s, time + window_s)


def check_windows(history_size: int, recent_s: float, window_s: float) -> None:
    """Raise ValueError unless the size is positive and 0 < recent_s <= window_s."""
    if history_size < 1 or not 0 < recent_s <= window_s or math.isnan(window_s):
        raise ValueError(
            f"history_size ({history_size}) must be positive and 0 < recent_s ({recent_s})"
            f" <= window_s ({window_s})"
        )


class RiskStore(Protocol):
    """Per-user sign-in history: read it, and record the current sign-in, in one call."""

    async def record_and_fetch(self, user: str, sign_in: bytes, *, record: bool) -> History:
        """The user's history around the sign-in `sign_in` (a record), before it.

        When `record` is true, the sign-in is inserted and the history trimmed to the
        newest N by time, atomically with the read. Raises RiskStoreUnavailable when the
        store cannot answer in time.
        """
        ...

    async def warm_up(self) -> bool:
        """Prepare for the first call (connections, scripts); whether the store answers."""
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers now (a health check; never raises)."""
        ...
