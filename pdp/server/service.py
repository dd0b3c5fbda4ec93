"""The gRPC servicer: translate, call the shared decision path, map errors to status codes.

`PolicyDecisionService.Evaluate` gives the call its request id (the caller's, or a new
one) and binds it to every log record of the call, reads the clock once and hands the
request to `Decider.decide`. A call whose deadline has already passed when it reaches the
handler is not evaluated. Errors become statuses through the one table in
`pdp.server.errors`: a bad request is INVALID_ARGUMENT naming the field, no policy set yet
is UNAVAILABLE, and anything unexpected is INTERNAL, logged once with its traceback; the
server keeps serving. Every call that reaches the handler is observed exactly once
(metrics and one audit record), also when it fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import structlog

from pdp.decide import Decider
from pdp.observability.decisions import DecisionObserver
from pdp.server.convert_in import MAX_REQUEST_ID
from pdp.server.errors import GRPC_STATUS, ErrorCode, error_code, failure, public_message
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

_log = structlog.get_logger(__name__)


class PolicyDecisionService(pdp_pb2_grpc.PolicyDecisionServiceServicer):
    """pdp.v1.PolicyDecisionService over the shared Decider."""

    def __init__(self, decider: Decider, observer: DecisionObserver | None = None) -> None:
        self._decider = decider
        self._observer = observer or DecisionObserver()

    async def Evaluate(  # noqa: N802, RET503 - the RPC's name; context.abort() raises
        self,
        request: pb.EvaluateRequest,
        context: grpc.aio.ServicerContext[pb.EvaluateRequest, pb.EvaluateResponse],
    ) -> pb.EvaluateResponse:
        """Decide one sign-in; a failure aborts the call with the status of its ErrorCode."""
        started, created = time.perf_counter(), time.time()
        if not request.request_id:
            request.request_id = uuid.uuid4().hex  # as convert_in would
        structlog.contextvars.bind_contextvars(request_id=request.request_id[:MAX_REQUEST_ID])
        response: pb.EvaluateResponse | None = None
        code: ErrorCode | None = None
        message = ""
        try:
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                code, message = ErrorCode.DEADLINE_EXCEEDED, "deadline passed before evaluation"
            else:
                response = await self._decider.decide(request, created)
                return response
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is answered, never raised
            code, message = error_code(exc), public_message(exc)
            if code is ErrorCode.INTERNAL:
                _log.exception("evaluate_failed", error_code=code)
        finally:
            self._observer.observe(
                request,
                response,
                created=created,
                started=started,
                failure=None if code is None else failure(code),
            )
        assert code is not None  # every path without a response set one
        await context.abort(GRPC_STATUS[code], message)
