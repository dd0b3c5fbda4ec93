"""The per-user sign-in history behind pdp's risk detection, as one small protocol.

A `RiskStore` answers one question per evaluation, in one call: "what did this user's
sign-ins look like before this one?", and (when asked to) records this one in the same
step. Two implementations pass the same contract suite (tests/risk/test_store_contract.py):
`pdp.risk.memory_store.MemoryStore` (in-process, the embedded default) and
`pdp.risk.redis_store.RedisStore` (shared by every replica, one round trip per call).

The semantics both keep:

- The history is ordered by sign-in time, oldest first; a sign-in recorded out of order
  (clock skew between gateways) lands in place. Two sign-ins with the same data at
  different times are two entries; the very same sign-in recorded twice is one.
- Recording appends, trims to the newest `history_size` entries by time and restarts the
  user's time to live (`history_ttl_s` after the last write), all atomically.
- A store that cannot answer (down, slow past its budget, circuit breaker open) raises
  `RiskStoreUnavailable`; what that means for the decision is the assessor's call.
"""

from __future__ import annotations

from typing import Protocol

from pdp.risk.assessment import Place


class RiskStoreUnavailable(Exception):  # noqa: N818 - the domain's word for the state
    """The risk store could not answer within its budget, or its circuit breaker is open.

    The message names the store by its redacted address and never carries a password.
    """


class RiskStore(Protocol):
    """Per-user sign-in history: fetch it, and record the current sign-in, in one call."""

    async def record_and_fetch(
        self, user: str, place: Place | None, *, record: bool, now: float
    ) -> list[Place]:
        """The user's history BEFORE this sign-in, oldest first by time.

        When `record` is true and `place` is not None, `place` is appended, the history is
        trimmed to the newest N by time and its time to live restarts, atomically with the
        read. `now` is the caller's clock for expiry (stores never read a clock for it).
        Raises RiskStoreUnavailable when the store cannot answer in time.
        """
        ...

    async def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers now (a health check; never raises)."""
        ...
