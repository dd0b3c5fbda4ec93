"""grpc.health.v1.Health for pdp: NOT_SERVING until a policy set is in force and from shutdown.

The statuses are the overall one ("") and `pdp.v1.PolicyDecisionService`'s, always equal:
pdp serves its one API or nothing. `serving()` is called once the first policy set is
compiled; `shutting_down()` at SIGTERM, after which nothing sets SERVING again. A reload
does not change the status: the set in force keeps serving while the next one compiles.

grpcio-health-checking's servicer is not used because its Watch streams never end, so one
watching client would hold every graceful shutdown for the whole --grace period; here a
Watch stream sends NOT_SERVING at shutdown and then completes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from pdp.limits import InFlight
from pdp.server.calls import generated_handlers, register

SERVING: Final[int] = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: Final[int] = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: Final[int] = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
HEALTH_SERVICE: Final[str] = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


class Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """The health of the services named at construction (plus the overall "")."""

    def __init__(self, services: Iterable[str]) -> None:
        self._status = dict.fromkeys(("", *services), NOT_SERVING)
        self._changed = asyncio.Event()
        self._final = False

    def add_to_server(self, server: grpc.aio.Server, streams: InFlight) -> None:
        """Register grpc.health.v1.Health on `server`, counted; Watch streams within `streams`."""
        handlers = generated_handlers(health_pb2_grpc.add_HealthServicer_to_server, self)
        register(server, HEALTH_SERVICE, handlers[HEALTH_SERVICE], streams)

    def serving(self) -> None:
        """Every service SERVING (ignored once shutting down)."""
        if not self._final:
            self._set(SERVING)

    def shutting_down(self) -> None:
        """Every service NOT_SERVING for good; Watch streams say so and end."""
        self._final = True
        self._set(NOT_SERVING)

    def _set(self, status: int) -> None:
        for service in self._status:
            self._status[service] = status
        self._changed.set()  # wakes every watcher, then a fresh event for the next change
        self._changed = asyncio.Event()

    async def Check(self, request: Any, context: Any) -> Any:  # noqa: N802 - the RPC's name
        """The service's status; NOT_FOUND for a service pdp does not have."""
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(self, request: Any, context: Any) -> None:  # noqa: N802 - the RPC's name
        """The status now and at every change; ends after the shutdown's NOT_SERVING."""
        last = None
        while True:
            changed = self._changed
            status = self._status.get(request.service, SERVICE_UNKNOWN)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            if self._final:
                return
            await changed.wait()
