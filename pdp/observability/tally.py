"""Per-call counts as plain numbers, added into the Prometheus metrics when they are read.

A prometheus-client counter takes a lock (and with several workers writes a memory-mapped
file) on every increment. On the request path pdp instead bumps plain ints owned by the
event loop's thread (`CountTally`, `TimeTally`); `publish()` adds what accumulated since the
last publish into the declared metrics (`pdp.observability.metrics`), so their names, help,
labels and buckets stay declared once. Publishing happens when /metrics is scraped (the
`TallyPublisher` collector wraps the tallied metrics, so a scrape always sees every call
counted so far), every second in a worker of several (their metrics are files the supervisor
sums), and at shutdown.

Only one thread increments a tally; the publisher reads a tally's running totals and
remembers what it has already added, so it never writes what the event loop writes and
needs no lock on the request path.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics import Counter, Histogram, MetricWrapperBase
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class CountTally:
    """A counter child's increments, kept as an int until published."""

    __slots__ = ("_child", "_published", "count")

    def __init__(self, child: Counter) -> None:
        self._child = child
        self.count = 0
        self._published = 0

    def publish(self) -> None:
        """Add the increments since the last publish into the counter (publisher's thread)."""
        count = self.count
        if count != self._published:
            self._child.inc(count - self._published)
            self._published = count


class TimeTally:
    """A histogram child's observations, kept as bucket counts until published."""

    __slots__ = ("_bounds", "_child", "_published", "_published_sum", "counts", "total")

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: list[float] = list(child._upper_bounds)
        self.counts = [0] * len(self._bounds)
        self.total = 0.0
        self._published = [0] * len(self._bounds)
        self._published_sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (event loop thread)."""
        self.counts[bisect.bisect_left(self._bounds, value)] += 1
        self.total += value

    def publish(self) -> None:
        """Add the observations since the last publish into the histogram."""
        counts, total = list(self.counts), self.total
        buckets = self._child._buckets
        for i, (now, before) in enumerate(zip(counts, self._published, strict=True)):
            if now != before:
                buckets[i].inc(now - before)
        if total != self._published_sum:
            self._child._sum.inc(total - self._published_sum)
        self._published, self._published_sum = counts, total


class TallyPublisher(Collector):
    """Publishes every registered tally, then exposes the metrics they feed.

    Constructed over the tallied metrics, it takes their place in the registry, so a scrape
    publishes first and then reads them.
    """

    def __init__(
        self, metrics: Sequence[MetricWrapperBase], registry: CollectorRegistry = REGISTRY
    ) -> None:
        self._metrics = tuple(metrics)
        self._sources: list[Callable[[], None]] = []
        self.lock = threading.RLock()  # held while publishing
        for metric in self._metrics:
            registry.unregister(metric)
        registry.register(self)

    def add(self, publish: Callable[[], None]) -> None:
        """Call `publish` (which adds one owner's tallies into metrics) at every publish."""
        with self.lock:
            self._sources.append(publish)

    def remove(self, publish: Callable[[], None]) -> None:
        """Stop publishing `publish` (after publishing it one last time)."""
        with self.lock:
            publish()
            self._sources.remove(publish)

    def publish(self) -> None:
        """Add everything counted since the last publish into the metrics."""
        with self.lock:
            for source in self._sources:
                source()

    def collect(self) -> Iterable[Metric]:
        """Publish, then the tallied metrics' samples."""
        self.publish()
        for metric in self._metrics:
            yield from metric.collect()

    def describe(self) -> Iterable[Metric]:
        """The tallied metrics' descriptions (no publish needed to name them)."""
        for metric in self._metrics:
            yield from metric.describe()
