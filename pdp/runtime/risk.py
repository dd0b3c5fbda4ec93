"""pdp's risk assessor for one worker: built from RiskSettings, warmed, measured, closed.

`open_assessor` asks `pdp.risk.assessor.build_assessor` for the assessor (each worker
builds its own, so each has its own event loop and Redis connections), connects it before
the first decision (`warm_up`: the connection and the script load, so the first decision
costs one command) and wires the store's events to the risk metrics:
pdp_risk_store_seconds (round trips only), pdp_risk_store_errors_total{reason},
pdp_risk_store_refusals_total (the breaker was open: no round trip) and
pdp_risk_store_late_reads_total. An unreachable Redis at start is logged and the server
starts degraded, as after an outage. The assessor returned is the RiskAssessor itself:
nothing is wrapped around the decision path.
"""

from __future__ import annotations

import structlog

from pdp.errors import StartupError
from pdp.observability.metrics import (
    RISK_STORE_ERRORS,
    RISK_STORE_LATE_READS,
    RISK_STORE_REFUSALS,
    RISK_STORE_SECONDS,
)
from pdp.risk.assessor import HistoryAssessor, build_assessor
from pdp.risk.redis_store import RedisStore
from pdp.risk.settings import RiskSettings

_log = structlog.get_logger(__name__)
_REASONS = ("timeout", "connection", "reply")
_ERRORS = {reason: RISK_STORE_ERRORS.labels(reason) for reason in _REASONS}


def _failed(reason: str) -> None:
    _ERRORS[reason].inc()


def measure(store: RedisStore) -> None:
    """Report `store`'s round trips, failures and refusals to the risk metrics."""
    store.events.round_trip = RISK_STORE_SECONDS.observe
    store.events.failed = _failed
    store.events.refused = RISK_STORE_REFUSALS.inc
    store.events.late_read = RISK_STORE_LATE_READS.inc


async def open_assessor(settings: RiskSettings) -> HistoryAssessor:
    """The worker's assessor, measured and warmed up.

    Raises StartupError (one line naming the option) for a bad --redis-url, --redis-mode,
    TLS file or trusted range; never for an unreachable Redis.
    """
    try:
        assessor = build_assessor(settings)
    except ValueError as exc:  # a bad URL, mode or range: a start-up error
        raise StartupError(f"risk settings: {exc}") from None
    if isinstance(assessor.store, RedisStore):
        measure(assessor.store)
    await assessor.warm_up()  # logs and returns False when Redis is down: we still start
    return assessor


async def close_assessor(assessor: HistoryAssessor) -> None:
    """Close the assessor's connections; a failure is logged, shutdown goes on."""
    try:
        await assessor.close()
    except Exception:  # noqa: BLE001 - shutdown goes on; the failure is logged
        _log.exception("risk_assessor_close_failed")
