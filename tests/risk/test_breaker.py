"""The circuit breaker: a failure rate over a sliding window, a minimum of calls, one probe."""

from __future__ import annotations

import pytest

from pdp.risk.breaker import CircuitBreaker


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        """The time it is set to."""
        return self.now


def breaker(clock: Clock, **options: float) -> CircuitBreaker:
    """A breaker on `clock`: 50 % over 10 s with at least 10 calls, 2 s open, unless told."""
    settings = {"failure_rate": 0.5, "min_calls": 10, "window_s": 10.0, "reset_s": 2.0} | options
    return CircuitBreaker(clock=clock, **settings)  # type: ignore[arg-type]


def test_a_few_failures_never_open_it_below_the_minimum_of_calls() -> None:
    """Nine failures in a row are not enough evidence when ten calls are required."""
    clock = Clock()
    b = breaker(clock)
    assert not any(b.failed() for _ in range(9))
    assert b.state == "closed"
    assert b.failed()  # the tenth call: 10 of 10 failed
    assert b.state == "open"


def test_a_failure_rate_under_the_threshold_keeps_it_closed() -> None:
    """Forty percent failures over many calls: closed (the threshold is fifty)."""
    clock = Clock()
    b = breaker(clock)
    for i in range(100):
        clock.now += 0.05
        assert not (b.failed() if i % 5 >= 3 else b.succeeded())
    assert b.state == "closed"


def test_failures_slide_out_of_the_window() -> None:
    """Failures older than the window no longer count: old ones plus a few new stay closed."""
    clock = Clock()
    b = breaker(clock)
    for _ in range(9):
        b.failed()
    clock.now += 11.0  # the window moved past them
    for _ in range(9):
        assert not b.failed()
    assert b.state == "closed"


def test_open_refuses_then_lets_one_probe_through_after_the_reset_time() -> None:
    """Open: refused; after reset_s exactly one probe; its success closes with a fresh window."""
    clock = Clock()
    b = breaker(clock, min_calls=2)
    b.failed()
    assert b.failed()
    assert not b.allow()
    clock.now += 2.0
    assert b.allow()
    assert b.state == "half-open"
    assert not b.allow()  # one probe at a time
    assert not b.failed()  # the probe failed: open for another period
    assert not b.allow()
    clock.now += 2.0
    assert b.allow()
    assert b.succeeded()  # closed again
    assert b.state == "closed"
    assert b.allow()
    assert not b.failed()  # a fresh window: one failure of one call is under the minimum
    assert b.opened == 1


def test_an_abandoned_probe_frees_its_slot() -> None:
    """A probe cancelled before its outcome lets the next call probe."""
    clock = Clock()
    b = breaker(clock, min_calls=1)
    b.failed()
    clock.now += 2.0
    assert b.allow()
    b.abandoned()
    assert b.allow()


@pytest.mark.parametrize(
    "options",
    [{"failure_rate": 0.0}, {"failure_rate": 1.5}, {"min_calls": 0}, {"window_s": 0.0}],
)
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    """Rates outside (0, 1], no minimum or no window are errors."""
    with pytest.raises(ValueError, match="breaker"):
        breaker(Clock(), **options)
