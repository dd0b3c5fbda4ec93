"""The gRPC servicer: translate, call the shared decision path, map errors to status codes.

`PolicyDecisionService.Evaluate` reads the clock once and hands the request to
`Decider.decide`. Errors become statuses through the one table in `pdp.server.errors`:
a bad request is INVALID_ARGUMENT naming the field, no policy set yet is UNAVAILABLE, and
anything unexpected is INTERNAL, logged once with its traceback; the server keeps serving.
"""

from __future__ import annotations

import time

import grpc
import structlog

from pdp.decide import Decider
from pdp.server.errors import GRPC_STATUS, ErrorCode, error_code, public_message
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

_log = structlog.get_logger(__name__)


class PolicyDecisionService(pdp_pb2_grpc.PolicyDecisionServiceServicer):
    """pdp.v1.PolicyDecisionService over the shared Decider."""

    def __init__(self, decider: Decider) -> None:
        self._decider = decider

    async def Evaluate(  # noqa: N802 - the RPC's name, fixed by the generated servicer
        self,
        request: pb.EvaluateRequest,
        context: grpc.aio.ServicerContext[pb.EvaluateRequest, pb.EvaluateResponse],
    ) -> pb.EvaluateResponse:
        """Decide one sign-in; a failure aborts the call with the status of its ErrorCode."""
        try:
            return await self._decider.decide(request, time.time())
        except Exception as exc:  # noqa: BLE001 - every failure is answered, never raised
            code = error_code(exc)
            if code is ErrorCode.INTERNAL:
                _log.exception("evaluate_failed", error_code=code, request_id=request.request_id)
            await context.abort(GRPC_STATUS[code], public_message(exc))
