"""The gRPC servicer of pdp.v1.PolicyDecisionService: the API's way in, and its way out.

`Evaluate` reads the clock once, maps the EvaluateRequest to a `SignInContext`
(`convert_in`), asks the shared `Decider`, and maps the `Decision` to an EvaluateResponse
(`convert_out`). A call whose deadline has already passed when it reaches the handler is not
evaluated. Errors become statuses through the one table in `pdp.server.status`: a bad
request is INVALID_ARGUMENT naming the field, no policy set yet is UNAVAILABLE, and anything
unexpected is INTERNAL, logged once with its traceback; the server keeps serving. Every call
that reaches the handler is observed exactly once (metrics and one audit record), also when
it fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import structlog

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode, error_code, public_message
from pdp.observability.decisions import DecisionObserver
from pdp.server.convert_in import describe, to_context
from pdp.server.convert_out import to_response
from pdp.server.status import GRPC_STATUS
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

_log = structlog.get_logger(__name__)


class PolicyDecisionService(pdp_pb2_grpc.PolicyDecisionServiceServicer):
    """pdp.v1.PolicyDecisionService over the shared Decider."""

    def __init__(self, decider: Decider, observer: DecisionObserver) -> None:
        self._decider = decider
        self._observer = observer

    async def Evaluate(  # noqa: N802, RET503 - the RPC's name; context.abort() raises
        self,
        request: pb.EvaluateRequest,
        context: grpc.aio.ServicerContext[pb.EvaluateRequest, pb.EvaluateResponse],
    ) -> pb.EvaluateResponse:
        """Decide one sign-in; a failure aborts the call with the status of its ErrorCode."""
        started, created = time.perf_counter(), time.time()
        if not request.request_id:
            request.request_id = uuid.uuid4().hex  # the same id in the log and audit record
        ctx: SignInContext | None = None
        decision: Decision | None = None
        code: ErrorCode | None = None
        message = ""
        try:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                code, message = ErrorCode.DEADLINE_EXCEEDED, "deadline passed before evaluation"
            else:
                ctx = to_context(request, created)
                decision = await self._decider.decide(ctx)
                return to_response(decision, ctx)
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is answered, never raised
            decision = None  # a call that fails after deciding is audited as failed
            code, message = error_code(exc), public_message(exc)
            if code is ErrorCode.INTERNAL:
                _log.exception("evaluate_failed", error_code=code, request_id=request.request_id)
        finally:
            self._observer.observe(
                ctx if ctx is not None else describe(request, created),
                decision,
                created=created,
                started=started,
                failure=code,
            )
        assert code is not None  # every path without a response set one
        await context.abort(GRPC_STATUS[code], message)
