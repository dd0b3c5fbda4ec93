"""Interleaved rounds: the same load on several servers in turn, and ratios from one run.

On a shared machine the load from others comes and goes; one long run per server puts
that drift into the ratio between them. Here every round runs every server once, short,
in the order A B, then B A (so a steady drift cancels), and a ratio is given both over
all rounds and as its range across rounds: a wide range says the machine was noisy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

from drivers import Run, Target, percentile_ms

VERDICT = {True: "met", False: "NOT met"}
HEADER = (
    "| server | load | connections x streams | rounds | calls | req/s "
    "| p50 ms | p90 ms | p99 ms | CPU µs/call |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|"


@dataclasses.dataclass(frozen=True, slots=True)
class Series:
    """The runs of one server at one load, one per round."""

    runs: tuple[Run, ...]

    @property
    def requests(self) -> int:
        """Calls completed over all rounds."""
        return sum(run.requests for run in self.runs)

    @property
    def failed(self) -> int:
        """Calls answered with an error over all rounds."""
        return sum(run.failed for run in self.runs)

    @property
    def throughput(self) -> float:
        """Calls per second over all rounds."""
        return self.requests / sum(run.seconds for run in self.runs)

    @property
    def cpu_us_per_call(self) -> float:
        """Server CPU µs per call over all rounds."""
        return sum(run.cpu_s for run in self.runs) * 1e6 / max(self.requests, 1)

    def percentile_ms(self, q: float) -> float:
        """The `q` quantile of every call's latency over all rounds, in ms."""
        return percentile_ms([us for run in self.runs for us in run.latencies_us], q)

    def render(self, shape: str) -> str:
        """One Markdown table row."""
        first = self.runs[0]
        p50, p90, p99 = (self.percentile_ms(q) for q in (0.5, 0.9, 0.99))
        return (
            f"| {first.server} | {first.load} | {shape} | {len(self.runs)} "
            f"| {self.requests:,} | {self.throughput:,.0f} | {p50:.2f} | {p90:.2f} "
            f"| {p99:.2f} | {self.cpu_us_per_call:,.0f} |"
        )


def interleaved(
    measure: Callable[[Target, float | None], Run],
    targets: Sequence[Target],
    rounds: int,
    rate: float | None = None,
) -> dict[str, Series]:
    """`rounds` runs of `measure` on each target, alternating the order every round."""
    runs: dict[str, list[Run]] = {target.name: [] for target in targets}
    for round_ in range(rounds):
        for target in targets if round_ % 2 == 0 else reversed(targets):
            runs[target.name].append(measure(target, rate))
    return {name: Series(tuple(series)) for name, series in runs.items()}


@dataclasses.dataclass(frozen=True, slots=True)
class Goal:
    """A ratio between two servers, over all rounds and per round, against its limit."""

    text: str  # what is divided by what, e.g. "CPU per call null / pdp"
    value: float
    per_round: tuple[float, ...]
    limit: float
    at_least: bool  # the goal is value >= limit (else value <= limit)
    detail: str = ""  # the two figures behind the ratio

    @property
    def met(self) -> bool:
        """Whether the ratio over all rounds meets the limit."""
        return self.value >= self.limit if self.at_least else self.value <= self.limit

    def render(self) -> str:
        """One line: `goal: TEXT = VALUE (rounds LOW-HIGH; >= LIMIT: met)`."""
        finite = [r for r in self.per_round if math.isfinite(r)]
        spread = f"rounds {min(finite):.2f}-{max(finite):.2f}; " if finite else ""
        detail = f" = {self.detail}" if self.detail else ""
        sign = ">=" if self.at_least else "<="
        return (
            f"goal: {self.text}{detail} = {self.value:.2f} "
            f"({spread}{sign} {self.limit}: {VERDICT[self.met]})"
        )


def ratio(
    text: str,
    numerator: Series,
    denominator: Series,
    metric: Callable[[Series], float],
    limit: float,
    *,
    at_least: bool,
    unit: str = "",
) -> Goal:
    """`metric(numerator) / metric(denominator)`, overall and round by round."""
    per_round = tuple(
        _divide(metric(Series((a,))), metric(Series((b,))))
        for a, b in zip(numerator.runs, denominator.runs, strict=True)
    )
    top, bottom = metric(numerator), metric(denominator)
    digits = 2 if unit == "ms" else 0
    detail = f"{top:,.{digits}f} / {bottom:,.{digits}f} {unit}" if unit else ""
    return Goal(text, _divide(top, bottom), per_round, limit, at_least, detail)


def _divide(top: float, bottom: float) -> float:
    return top / bottom if bottom else math.nan


def cpu_per_call(series: Series) -> float:
    """Server CPU µs per call."""
    return series.cpu_us_per_call


def throughput(series: Series) -> float:
    """Calls per second."""
    return series.throughput


def p99(series: Series) -> float:
    """The 99th percentile latency in ms."""
    return series.percentile_ms(0.99)
