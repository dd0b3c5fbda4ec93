"""The limits every way in applies before it decides: calls at once, and message size.

pdp refuses what is over its own limits itself, at once and counted, rather than leaving
the refusal to grpc (whose refusals reach clients as CANCELLED or RESOURCE_EXHAUSTED before
any of pdp's code runs, so they are neither counted nor audited, and Envoy's Check would get
an RPC error instead of a denial). `Limits` is shared by every decision handler of a worker:
`--max-concurrent-rpcs` calls at once and `--max-message-bytes` per message. Long-lived
streams (health Watch, reflection) have a budget of their own (`STREAMS`), so idle streams
can never starve decisions. grpc's own limits (`hard_limit`, `message_cap`) are set above
pdp's and only ever meet a flood that outruns the event loop, or a message too large to read.
"""

from __future__ import annotations

from typing import Final

STREAMS: Final = 64  # health Watch and reflection streams open at once, per worker
HEADROOM: Final = 64  # calls grpc admits beyond pdp's own limits (health checks, ...)


def hard_limit(decisions: int) -> int:
    """Grpc's own limit of calls in progress, above every limit pdp applies itself."""
    return decisions + 2 * STREAMS + HEADROOM


def message_cap(max_message_bytes: int) -> int:
    """Grpc's own limit of a message's size: above pdp's, so pdp refuses and counts first."""
    return max(4 * max_message_bytes, 4 * 1024 * 1024)


class InFlight:
    """Calls in progress against a limit; one per kind of call (decisions, streams)."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @property
    def full(self) -> bool:
        """Whether one more call would exceed the limit."""
        return self.count >= self.limit


class Limits:
    """What the decision handlers admit: calls at once (shared by every way in) and size."""

    __slots__ = ("in_flight", "max_message_bytes")

    def __init__(self, max_concurrent: int = 1000, max_message_bytes: int = 1_048_576) -> None:
        self.in_flight = InFlight(max_concurrent)
        self.max_message_bytes = max_message_bytes
