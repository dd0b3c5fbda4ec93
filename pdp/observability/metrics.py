"""Every Prometheus metric pdp exports, declared once, with help text, unit and buckets.

Nothing else in pdp creates a metric: code imports the objects below (or the helpers that
keep pre-bound label children, so the hot path never formats a label). Labels stay
bounded: gRPC method names of registered services, status codes, decisions, policy ids of
the loaded sets, outcomes, and the policy set version; never user, device, IP or
application ids from requests.

With several workers, each process writes its values to PROMETHEUS_MULTIPROC_DIR and the
supervisor serves the sum (`multiprocess_registry`); gauges say how they combine.
README's "Observability" section has the same table.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Final

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    multiprocess,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from pdp.errors import StartupError
from pdp.observability.tally import TallyPublisher

disable_created_metrics()  # type: ignore[no-untyped-call] # no *_created series: they double the series count for nothing

MULTIPROCESS: Final = "PROMETHEUS_MULTIPROC_DIR" in os.environ

# 50 us to 1 s: an in-process decision takes tens of microseconds, a Redis round trip about
# a millisecond, a call stuck behind a slow risk store up to its budget.
HANDLING_BUCKETS: Final = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0,
)  # fmt: skip
RISK_STORE_BUCKETS: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1,
)  # fmt: skip

# -- gRPC server (the grpc-ecosystem/go-grpc-middleware names and labels) -------------------
GRPC_LABELS: Final = ("grpc_type", "grpc_service", "grpc_method")
GRPC_STARTED = Counter("grpc_server_started_total", "RPCs started on the server.", GRPC_LABELS)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    (*GRPC_LABELS, "grpc_code"),
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC's handler to its end, in seconds.",
    GRPC_LABELS,
    buckets=HANDLING_BUCKETS,
)

# -- the forward-auth HTTP endpoint ------------------------------------------------------------
HTTP_REQUESTS = Counter(
    "pdp_http_requests_total",
    "Forward-auth HTTP requests answered, by status code (200, 401, 403, 404).",
    ("code",),
)
HTTP_SECONDS = Histogram(
    "pdp_http_request_seconds",
    "Time from the start of a forward-auth request's handler to its answer, in seconds.",
    buckets=HANDLING_BUCKETS,
)

# -- decisions ---------------------------------------------------------------------------------
DECISIONS = Counter(
    "pdp_decisions_total", "Decisions made, by decision (allow, challenge, deny).", ("decision",)
)
POLICY_RESULTS = Counter(
    "pdp_policy_results_total",
    "Results of the policies that applied to a decision (success, failure, reportOnly*).",
    ("policy_id", "result"),
)
RISK_DEGRADED_DECISIONS = Counter(
    "pdp_risk_degraded_decisions_total",
    "Decisions made without pdp's risk state (the response's risk.degraded).",
)

# -- risk store (reported by pdp.risk.redis_store through pdp.runtime.risk) -----------------
RISK_STORE_SECONDS = Histogram(
    "pdp_risk_store_seconds",
    "Risk store round trips (Redis), from sending the command to reading its reply, in "
    "seconds; calls refused by the open circuit breaker are not round trips.",
    buckets=RISK_STORE_BUCKETS,
)
RISK_STORE_ERRORS = Counter(
    "pdp_risk_store_errors_total",
    "Risk store round trips that failed: no reply by the first read after the budget "
    "(timeout), a broken or refused connection (connection), or an error reply (reply).",
    ("reason",),
)
RISK_STORE_REFUSALS = Counter(
    "pdp_risk_store_refusals_total",
    "Risk store calls refused without a round trip because the circuit breaker was open.",
)
RISK_STORE_LATE_READS = Counter(
    "pdp_risk_store_late_reads_total",
    "Risk store replies read after the call's budget because pdp's event loop was busy "
    "(the reply was there: used, and not counted as a failure).",
)

# -- policy set --------------------------------------------------------------------------------
POLICIES_LOADED = Gauge(
    "pdp_policies_loaded",
    "Policies in the policy set in force (enabled, report-only and disabled).",
    multiprocess_mode="livemostrecent",
)
POLICY_RELOADS = Counter(
    "pdp_policy_reloads_total",
    "Policy set loads after the first, by outcome (success, failure).",
    ("outcome",),
)
POLICY_SET_INFO = Gauge(
    "pdp_policy_set_info",
    "The version (content hash) of the policy set in force: 1 for the current version.",
    ("version",),
    multiprocess_mode="livemax",
)
POLICY_SET_LOADED_SECONDS = Gauge(
    "pdp_policy_set_loaded_timestamp_seconds",
    "When the policy set in force was loaded, in Unix seconds.",
    multiprocess_mode="livemostrecent",
)

# -- audit log and workers ---------------------------------------------------------------------
AUDIT_DROPPED = Counter(
    "pdp_audit_records_dropped_total",
    "Audit records lost, by reason: queue_full (the writer's queue was over its byte "
    "bound), write_failed (the file or pipe refused them: disk full, I/O error, deleted and "
    "not recreatable), shutdown (still queued when shutdown's deadline passed, or after "
    "close), record_failed (could not be built: a bug, logged).",
    ("reason",),
)
AUDIT_TRUNCATED = Counter(
    "pdp_audit_records_truncated_total",
    "Audit records written with a field cut or a list capped to keep the line within its "
    "bounds (the record's truncatedFields names them).",
)
WORKER_RESTARTS = Counter(
    "pdp_worker_restarts_total",
    "Worker processes started by the supervisor to replace one that died.",
)


# The per-call metrics are counted as plain ints on the request path and published into the
# metrics above when they are read (`pdp.observability.tally`).
PUBLISHER = TallyPublisher(
    (GRPC_STARTED, GRPC_HANDLED, GRPC_HANDLING_SECONDS, DECISIONS, POLICY_RESULTS,
     RISK_DEGRADED_DECISIONS, AUDIT_DROPPED)
)  # fmt: skip


def set_policy_set(version: str, previous: str | None, policy_count: int, when: float) -> None:
    """Record that the set `version` (of `policy_count` policies) replaced `previous`."""
    if previous is not None and previous != version:
        if MULTIPROCESS:  # removal is not supported there: 0, and the supervisor hides it
            POLICY_SET_INFO.labels(previous).set(0)
        else:
            POLICY_SET_INFO.remove(previous)
    POLICY_SET_INFO.labels(version).set(1)
    POLICIES_LOADED.set(policy_count)
    POLICY_SET_LOADED_SECONDS.set(when)


class _HideRetiredVersions(Collector):
    """The multiprocess collector, less pdp_policy_set_info samples at 0 (retired versions)."""

    def __init__(self, inner: Collector) -> None:
        self._inner = inner

    def collect(self) -> Iterable[Metric]:
        for metric in self._inner.collect():
            if metric.name == "pdp_policy_set_info":
                metric.samples = [s for s in metric.samples if s.value != 0]
            yield metric


def multiprocess_registry(path: str) -> CollectorRegistry:
    """A registry summing the values every worker wrote under `path` (the supervisor's)."""
    registry = CollectorRegistry(auto_describe=False)
    inner = multiprocess.MultiProcessCollector(None, path=path)  # type: ignore[no-untyped-call]
    registry.register(_HideRetiredVersions(inner))
    return registry


def label_names() -> Iterator[tuple[str, tuple[str, ...]]]:
    """Each declared metric's exposed name (counters with _total) and label names."""
    for value in globals().values():
        if isinstance(value, Counter | Gauge | Histogram):
            suffix = "_total" if isinstance(value, Counter) else ""
            yield value._name + suffix, tuple(value._labelnames)


def start_metrics_server(host: str, port: int, registry: CollectorRegistry | None = None) -> Any:
    """Serve /metrics on host:port from a thread; returns the server (call .shutdown()).

    Raises StartupError naming the flag and the address when it cannot be bound.
    """
    try:
        server, _ = start_http_server(port, addr=host, registry=registry or REGISTRY)
    except OSError as exc:
        raise StartupError(
            f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from None
    return server
