"""pdp's risk assessor for one worker: built from RiskSettings, timed, closed at shutdown.

`open_assessor` asks `pdp.risk.assessor.build_assessor` for the assessor (each worker
builds its own, so each has its own event loop and Redis pool) and wraps it so that the
risk metrics are recorded around every assessment: the assessor counts its risk store
round trips (`calls`), so an assessment that made one is timed into
pdp_risk_store_seconds, and counted in pdp_risk_store_errors_total when it came back
degraded; assessments that needed no I/O are not timed (an assessor without `calls` has
every assessment timed). The round trip of `record_allowed` (under `--record-sign-ins
allowed`) is timed too. Without that module pdp decides on upstream risk alone.
"""

from __future__ import annotations

import importlib
import inspect
import time
from typing import TYPE_CHECKING, Any

import structlog

from pdp.observability.metrics import RISK_STORE_ERRORS, RISK_STORE_SECONDS
from pdp.risk.assessment import Assessment, RiskAssessor
from pdp.risk.settings import RiskSettings

if TYPE_CHECKING:
    from pdp.context import SignInContext
    from pdp.policy.compile import CompiledPolicySet

_log = structlog.get_logger(__name__)
ASSESSOR_MODULE = "pdp.risk.assessor"


class MeasuredAssessor:
    """A RiskAssessor that records pdp_risk_store_seconds and pdp_risk_store_errors_total."""

    def __init__(self, inner: RiskAssessor) -> None:
        self.inner = inner

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """The inner assessor's geo enrichment (no I/O)."""
        return self.inner.enrich(ctx)

    async def assess(self, ctx: SignInContext, compiled: CompiledPolicySet) -> Assessment:
        """The inner assessment, timed when it made a risk store round trip."""
        inner: Any = self.inner
        calls = getattr(inner, "calls", None)
        started = time.perf_counter()
        assessment: Assessment = await inner.assess(ctx, compiled)
        # An assessment without I/O returns without yielding, so a changed count is ours.
        if calls is None or inner.calls != calls:
            RISK_STORE_SECONDS.observe(time.perf_counter() - started)
            if assessment.degraded:
                RISK_STORE_ERRORS.inc()
        return assessment

    async def record_allowed(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        """The inner assessor's recording of an allowed sign-in, timed when it made a trip."""
        inner: Any = self.inner
        calls = getattr(inner, "calls", None)
        started = time.perf_counter()
        await inner.record_allowed(ctx, compiled)
        if calls is not None and inner.calls != calls:
            RISK_STORE_SECONDS.observe(time.perf_counter() - started)


async def open_assessor(settings: RiskSettings) -> MeasuredAssessor | None:
    """The worker's assessor, or None when pdp.risk.assessor is not part of this build."""
    try:
        module: Any = importlib.import_module(ASSESSOR_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != ASSESSOR_MODULE:
            raise
        _log.info("risk_assessor_absent", detail="deciding on upstream risk only")
        return None
    try:
        built = module.build_assessor(settings)
        if inspect.isawaitable(built):
            built = await built
    except ValueError as exc:  # a bad URL, mode or range: a start-up error
        raise ValueError(f"risk settings: {exc}") from exc
    if built is None:
        return None
    return MeasuredAssessor(built)


async def close_assessor(assessor: MeasuredAssessor | None) -> None:
    """Close the assessor's connections, when it has a close() (sync or async)."""
    close = getattr(assessor.inner, "close", None) if assessor is not None else None
    if close is None:
        return
    try:
        result = close()
        if inspect.isawaitable(result):
            await result
    except Exception:  # noqa: BLE001 - shutdown goes on; the failure is logged
        _log.exception("risk_assessor_close_failed")
