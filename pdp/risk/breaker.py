"""The risk store's circuit breaker: stop calling a failing Redis, and find out when it is back.

Closed, it counts the outcome of every round trip in a sliding window of `window_s`
seconds (ten buckets). It opens when, over that window, at least `min_calls` round trips
were made AND at least `failure_rate` of them failed: a burst of a few failures, or one slow
second at low traffic, does not open it. Open, it refuses calls without touching Redis
(`allow` is False: the caller counts a refusal, which is not a round trip); after
`reset_s` it lets one probe through (half-open): the probe's success closes it with an
empty window, its failure opens it for another `reset_s`.

What is a failure is the store's call: a Redis error reply, a broken connection, or no
reply by the first read after the deadline. A reply that arrived in time but was read late
because pdp's own event loop was busy is a success (see `pdp.risk.redis_wire`).
`clock` is monotonic seconds (injectable for tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable

_BUCKETS = 10


class CircuitBreaker:
    """Failure rate over a sliding window, then open for `reset_s`, then one probe."""

    def __init__(
        self,
        *,
        failure_rate: float = 0.5,
        min_calls: int = 20,
        window_s: float = 10.0,
        reset_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0.0 < failure_rate <= 1.0 or min_calls < 1 or window_s <= 0 or reset_s < 0:
            raise ValueError(
                "breaker: failure_rate must be in (0, 1], min_calls >= 1, window_s > 0 and"
                " reset_s >= 0"
            )
        self.failure_rate = failure_rate
        self.min_calls = min_calls
        self.reset_s = reset_s
        self._clock = clock
        self._bucket_s = window_s / _BUCKETS
        self._calls = [0] * _BUCKETS
        self._failures = [0] * _BUCKETS
        self._bucket = 0  # the absolute index of the current bucket
        self._opened_at: float | None = None
        self._probing = False
        self.opened = 0  # how many times the breaker opened (for logs and benchmarks)

    @property
    def state(self) -> str:
        """The state: closed, open, or half-open (a probe is in flight)."""
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._probing else "open"

    def allow(self) -> bool:
        """Whether a call may go to Redis now (when open, True once per `reset_s`: a probe)."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self.reset_s:
            return False
        self._probing = True
        return True

    def succeeded(self) -> bool:
        """Record a successful round trip; True when it closed the breaker (a probe)."""
        if self._opened_at is not None:
            self._opened_at = None
            self._probing = False
            self._calls = [0] * _BUCKETS
            self._failures = [0] * _BUCKETS
            return True
        self._calls[self._current()] += 1
        return False

    def failed(self) -> bool:
        """Record a failed round trip; True when it opened the breaker."""
        if self._opened_at is not None:  # a probe failed: open for another period
            self._probing = False
            self._opened_at = self._clock()
            return False
        index = self._current()
        self._calls[index] += 1
        self._failures[index] += 1
        calls = sum(self._calls)
        if calls >= self.min_calls and sum(self._failures) >= self.failure_rate * calls:
            self._opened_at = self._clock()
            self.opened += 1
            return True
        return False

    def abandoned(self) -> None:
        """A call ended without an outcome (cancelled): free the probe slot."""
        self._probing = False

    def _current(self) -> int:
        """The current bucket's slot, clearing the buckets that slid out of the window."""
        bucket = int(self._clock() / self._bucket_s)
        if bucket != self._bucket:
            stale = min(bucket - self._bucket, _BUCKETS)
            for step in range(1, stale + 1):
                slot = (self._bucket + step) % _BUCKETS
                self._calls[slot] = 0
                self._failures[slot] = 0
            self._bucket = bucket
        return bucket % _BUCKETS
