"""The gRPC server metrics: one grpc.aio interceptor counting and timing every RPC.

The series are the grpc-ecosystem ones (`grpc_server_started_total`,
`grpc_server_handled_total`, `grpc_server_handling_seconds`) with the same labels and code
names ("OK", "InvalidArgument", ...), so existing gRPC dashboards work. Each method's
wrapped handler and label children are built on its first call and reused, so a call costs
two int increments and one bucket count (`pdp.observability.tally`: published into the
metrics when they are read). Methods no service registered are
answered UNIMPLEMENTED by grpc and not counted (their names would be unbounded labels), nor
are calls refused over --max-concurrent-rpcs, which grpc answers before any handler runs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import grpc

from pdp.observability.metrics import GRPC_HANDLED, GRPC_HANDLING_SECONDS, GRPC_STARTED, PUBLISHER
from pdp.observability.tally import CountTally, TimeTally

# grpc-go's codes.Code names, which the grpc-ecosystem metrics use as label values.
CODE_NAMES: Final[dict[grpc.StatusCode, str]] = {
    code: "".join(part.title() for part in code.name.split("_")) for code in grpc.StatusCode
}
CODE_NAMES[grpc.StatusCode.OK] = "OK"
CODE_NAMES[grpc.StatusCode.CANCELLED] = "Canceled"
_OK: Final = grpc.StatusCode.OK

if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]


class _Series:
    """The tallies of one method, bound once; published with every other tally."""

    def __init__(self, grpc_type: str, service: str, method: str) -> None:
        labels = (grpc_type, service, method)
        self.labels = labels
        self.started = CountTally(GRPC_STARTED.labels(*labels))
        self.seconds = TimeTally(GRPC_HANDLING_SECONDS.labels(*labels))
        self.handled: dict[grpc.StatusCode, CountTally] = {}
        PUBLISHER.add(self.publish)

    def done(self, code: grpc.StatusCode, started: float) -> None:
        self.seconds.observe(time.perf_counter() - started)
        tally = self.handled.get(code)
        if tally is None:
            tally = self.handled[code] = CountTally(
                GRPC_HANDLED.labels(*self.labels, CODE_NAMES[code])
            )
        tally.count += 1

    def publish(self) -> None:
        self.started.publish()
        self.seconds.publish()
        for tally in list(self.handled.values()):
            tally.publish()


def _code(context: Context, error: BaseException | None) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    code = context.code()  # set by abort() or set_code(); None when the handler left it
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if error is not None else _OK


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    """Counts started and handled RPCs and times them, per registered method."""

    def __init__(self) -> None:
        self._wrapped: dict[int, tuple[Handler, Handler]] = {}  # id(handler) -> (it, wrapped)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        """The method's handler, wrapped (once per handler) to record its metrics."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        cached = self._wrapped.get(id(handler))
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = _wrap(handler, handler_call_details.method)
        self._wrapped[id(handler)] = (handler, wrapped)
        return wrapped


def _wrap(handler: Handler, full_method: str) -> Handler:
    service, _, method = full_method.lstrip("/").rpartition("/")
    streaming = (handler.request_streaming, handler.response_streaming)
    grpc_type = {
        (False, False): "unary",
        (True, False): "client_stream",
        (False, True): "server_stream",
        (True, True): "bidi_stream",
    }[streaming]
    series = _Series(grpc_type, service, method)
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if not handler.response_streaming:
        behavior: Any = handler.stream_unary if handler.request_streaming else handler.unary_unary
        assert behavior is not None

        async def unary_response(request: Any, context: Context) -> Any:
            series.started.count += 1
            started = time.perf_counter()
            error: BaseException | None = None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                series.done(_code(context, error), started)

        if handler.request_streaming:
            return grpc.stream_unary_rpc_method_handler(unary_response, **options)
        return grpc.unary_unary_rpc_method_handler(unary_response, **options)

    stream_behavior: Any = (
        handler.stream_stream if handler.request_streaming else handler.unary_stream
    )
    assert stream_behavior is not None

    async def stream_response(request: Any, context: Context) -> AsyncIterator[Any]:
        series.started.count += 1
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            result = stream_behavior(request, context)
            if inspect.isasyncgen(result):
                async for item in result:
                    yield item
            else:  # a coroutine writing with context.write()
                await result
        except BaseException as exc:
            error = exc
            raise
        finally:
            series.done(_code(context, error), started)

    if handler.request_streaming:
        return grpc.stream_stream_rpc_method_handler(stream_response, **options)
    return grpc.unary_stream_rpc_method_handler(stream_response, **options)
