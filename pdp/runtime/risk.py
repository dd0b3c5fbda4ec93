"""pdp's risk assessor for one worker: built from RiskSettings, timed, closed at shutdown.

`open_assessor` asks `pdp.risk.assessor.build_assessor` for the assessor (each worker
builds its own, so each has its own event loop and Redis pool) and wraps it so that the
risk metrics are recorded around every assessment: the assessor counts its risk store
round trips (`calls`), so an assessment that made one is timed into
pdp_risk_store_seconds, and counted in pdp_risk_store_errors_total when it came back
degraded; assessments that needed no I/O are not timed. The round trip of
`record_allowed` (under `--record-sign-ins allowed`) is timed too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import structlog

from pdp.errors import StartupError
from pdp.observability.metrics import RISK_STORE_ERRORS, RISK_STORE_SECONDS
from pdp.risk.assessment import Assessment
from pdp.risk.assessor import HistoryAssessor, build_assessor
from pdp.risk.settings import RiskSettings

if TYPE_CHECKING:
    from pdp.context import SignInContext
    from pdp.policy.compile import CompiledPolicySet

_log = structlog.get_logger(__name__)


class MeasuredAssessor:
    """A RiskAssessor that records pdp_risk_store_seconds and pdp_risk_store_errors_total."""

    def __init__(self, inner: HistoryAssessor) -> None:
        self.inner = inner

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """The inner assessor's geo enrichment (no I/O)."""
        return self.inner.enrich(ctx)

    async def assess(self, ctx: SignInContext, compiled: CompiledPolicySet) -> Assessment:
        """The inner assessment, timed when it made a risk store round trip."""
        inner = self.inner
        calls = inner.calls
        started = time.perf_counter()
        assessment = await inner.assess(ctx, compiled)
        # An assessment without I/O returns without yielding, so a changed count is ours.
        if inner.calls != calls:
            RISK_STORE_SECONDS.observe(time.perf_counter() - started)
            if assessment.degraded:
                RISK_STORE_ERRORS.inc()
        return assessment

    async def record_allowed(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        """The inner assessor's recording of an allowed sign-in, timed when it made a trip."""
        inner = self.inner
        calls = inner.calls
        started = time.perf_counter()
        await inner.record_allowed(ctx, compiled)
        if inner.calls != calls:
            RISK_STORE_SECONDS.observe(time.perf_counter() - started)


async def open_assessor(settings: RiskSettings) -> MeasuredAssessor:
    """The worker's assessor, with its store's connection warmed.

    A cold first call (TLS, Cluster discovery) could otherwise exceed the per-call budget.
    """
    try:
        assessor = build_assessor(settings)
    except ValueError as exc:  # a bad URL, mode or range: a start-up error
        raise StartupError(f"risk settings: {exc}") from exc
    await assessor.store.ping()  # logs and returns False when Redis is down: we still start
    return MeasuredAssessor(assessor)


async def close_assessor(assessor: MeasuredAssessor) -> None:
    """Close the assessor's connections; a failure is logged, shutdown goes on."""
    try:
        await assessor.inner.close()
    except Exception:  # noqa: BLE001 - shutdown goes on; the failure is logged
        _log.exception("risk_assessor_close_failed")
