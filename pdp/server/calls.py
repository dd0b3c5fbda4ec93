"""Other services' calls counted and bounded like the decision calls: health, reflection.

The decision handlers (Evaluate, Check) count their own calls (`RpcSeries`) and apply
`pdp.limits` themselves. Services pdp registers from generated code or libraries (health,
reflection) are registered through `register`, which wraps each of their handlers once to
count its calls and to keep its streams within their own budget (`pdp.limits.STREAMS`): an
idle stream over the budget is refused with RESOURCE_EXHAUSTED, so streams never starve
decisions. No gRPC interceptor runs per call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Final

import grpc

from pdp.limits import InFlight
from pdp.observability.rpc_metrics import RpcSeries

_OK: Final = grpc.StatusCode.OK

if TYPE_CHECKING:  # generic only in the type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]


def register(
    server: grpc.aio.Server, service: str, handlers: Mapping[str, Handler], streams: InFlight
) -> None:
    """Serve `handlers` of `service` on `server`, each counted; its streams within `streams`.

    Only as generic handlers: grpc's registered-method path is kept for the decision
    services, since every further service registered there made each Evaluate call cost
    more (about 30k instructions per call for health and reflection, measured with
    callgrind on grpcio 1.85).
    """
    wrapped = {method: _counted(h, service, method, streams) for method, h in handlers.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))


def generated_handlers(add_to_server: Any, servicer: Any) -> dict[str, dict[str, Handler]]:
    """The method handlers a generated `add_*Servicer_to_server` function would register."""
    recorder = _Recorder()
    add_to_server(servicer, recorder)
    return recorder.services


class _Recorder:
    """Stands in for a server to read what a generated registration function adds."""

    def __init__(self) -> None:
        self.services: dict[str, dict[str, Handler]] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        """Ignored: the registered handlers below are the same."""

    def add_registered_method_handlers(self, service: str, handlers: dict[str, Handler]) -> None:
        self.services[service] = handlers


def _counted(handler: Handler, service: str, method: str, streams: InFlight) -> Handler:
    kinds = {
        (False, False): "unary",
        (True, False): "client_stream",
        (False, True): "server_stream",
        (True, True): "bidi_stream",
    }
    series = RpcSeries(
        kinds[handler.request_streaming, handler.response_streaming], service, method
    )
    options = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.request_streaming and not handler.response_streaming:
        raise ValueError(f"{service}/{method}: client-streaming methods are not counted")
    if not handler.response_streaming:
        behavior: Any = handler.unary_unary
        assert behavior is not None

        async def unary(request: Any, context: Context) -> Any:
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

        return grpc.unary_unary_rpc_method_handler(unary, **options)

    stream_behavior: Any = (
        handler.stream_stream if handler.request_streaming else handler.unary_stream
    )
    assert stream_behavior is not None

    async def streaming(request: Any, context: Context) -> AsyncIterator[Any]:
        series.started.count += 1
        started = time.perf_counter()
        if streams.full:
            series.done(grpc.StatusCode.RESOURCE_EXHAUSTED, started)
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"more than {streams.limit} streams open: retry later",
            )
        streams.count += 1
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
            streams.count -= 1
            series.done(_code(context, error), started)

    if handler.request_streaming:
        return grpc.stream_stream_rpc_method_handler(streaming, **options)
    return grpc.unary_stream_rpc_method_handler(streaming, **options)


def _code(context: Context, error: BaseException | None) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError | GeneratorExit):
        return grpc.StatusCode.CANCELLED
    code = context.code()  # set by abort() or set_code(); None when the handler left it
    if isinstance(code, grpc.StatusCode):
        return code
    return grpc.StatusCode.UNKNOWN if error is not None else _OK
