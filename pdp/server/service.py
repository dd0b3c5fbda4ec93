"""The gRPC servicer of pdp.v1.PolicyDecisionService: the API's way in, and its way out.

`Evaluate` reads the clock once, maps the request's bytes to a `SignInContext` (through the
`ContextMemo`, which parses and validates only content it has not seen), asks the shared
`Decider`, and writes the `Decision` as the response's bytes (`ResponseWriter`, which
reuses the bytes of repeated outcomes). The handler takes and returns bytes: gRPC's own
(de)serialisation is skipped, so an undecodable message is this code's to refuse (as
INVALID_ARGUMENT, observed like any refusal) rather than grpc's (UNKNOWN, unobserved).

Past `--max-concurrent-rpcs` decision calls at once, or for a message over
`--max-message-bytes`, the call is refused at once with RESOURCE_EXHAUSTED (pdp's limits,
below grpc's own: `pdp.server.calls`), counted and audited like every refusal. A call whose
deadline has already passed when it reaches the handler is not evaluated.
Errors become statuses through the one table in `pdp.server.status`: a bad request is
INVALID_ARGUMENT naming the field, no policy set yet is UNAVAILABLE, and anything unexpected
is INTERNAL, logged once with its traceback; the server keeps serving. Every call that
reaches the handler is observed exactly once (metrics and one audit record), also when it
fails or is cancelled.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Final

import grpc
import structlog

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode, InvalidRequest, Overloaded, error_code, public_message
from pdp.limits import Limits
from pdp.observability.decisions import DecisionObserver
from pdp.observability.rpc_metrics import RpcSeries
from pdp.server.context_memo import ContextMemo, map_request, parse, request_id_of
from pdp.server.convert_in import describe
from pdp.server.convert_out import ResponseWriter
from pdp.server.status import GRPC_STATUS
from pdp.v1 import pdp_pb2

SERVICE_NAME: Final[str] = pdp_pb2.DESCRIPTOR.services_by_name["PolicyDecisionService"].full_name
_log = structlog.get_logger(__name__)


class PolicyDecisionService:
    """pdp.v1.PolicyDecisionService over the shared Decider, on serialized messages."""

    def __init__(
        self,
        decider: Decider,
        observer: DecisionObserver,
        limits: Limits | None = None,
        memo: ContextMemo | None = None,
    ) -> None:
        self._decider = decider
        self._observer = observer
        self._limits = Limits() if limits is None else limits
        self._map = map_request(ContextMemo() if memo is None else memo)
        self._writer = ResponseWriter()
        self._series = RpcSeries("unary", SERVICE_NAME, "Evaluate")

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register the service on `server`, with bytes in and out of the handler."""
        handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
            "Evaluate": grpc.unary_unary_rpc_method_handler(self.evaluate)
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE_NAME, handlers),)
        )
        server.add_registered_method_handlers(SERVICE_NAME, handlers)

    async def evaluate(  # noqa: RET503 - context.abort() raises
        self, body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
    ) -> bytes:
        """Decide one sign-in; a failure aborts the call with the status of its ErrorCode."""
        started, created = time.perf_counter(), time.time()
        series, limits = self._series, self._limits
        series.started.count += 1
        in_flight = limits.in_flight
        ctx: SignInContext | None = None
        decision: Decision | None = None
        code: ErrorCode | None = None
        message = ""
        status = grpc.StatusCode.OK
        in_flight.count += 1
        try:
            if in_flight.count > in_flight.limit:
                raise Overloaded(f"more than {in_flight.limit} calls at once: retry later")
            if len(body) > limits.max_message_bytes:
                raise Overloaded(f"request larger than {limits.max_message_bytes} bytes")
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                code, message = ErrorCode.DEADLINE_EXCEEDED, "deadline passed before evaluation"
            else:
                ctx = self._map(body, created)
                decision = await self._decider.decide(ctx)
                return self._writer.write(decision, ctx)
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is answered, never raised
            decision = None  # a call that fails after deciding is audited as failed
            code, message = error_code(exc), public_message(exc)
            if code is ErrorCode.INTERNAL:
                rid = ctx.request_id if ctx is not None else None
                _log.exception("evaluate_failed", error_code=code, request_id=rid)
        finally:
            in_flight.count -= 1
            if ctx is None:
                ctx = _described(body, created, code)
            self._observer.observe(ctx, decision, created=created, started=started, failure=code)
            if code is not None:
                status = GRPC_STATUS[code]
            series.done(status, started)
        await context.abort(status, message)


def _described(body: bytes, now: float, code: ErrorCode | None) -> SignInContext:
    """What the refused request said, for its record (a fresh id when it gave none).

    A call refused for load is described by its request id alone: reading the rest is
    work an overloaded server saves.
    """
    if code is ErrorCode.RESOURCE_EXHAUSTED:
        ctx = SignInContext(request_id=request_id_of(body), time=now)
    else:
        try:
            ctx = describe(parse(body), now)
        except InvalidRequest:  # not even a message
            ctx = SignInContext(request_id="", time=now)
    if not ctx.request_id:
        ctx.request_id = uuid.uuid4().hex
    return ctx
