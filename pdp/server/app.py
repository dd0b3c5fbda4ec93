"""The composition root: build one worker's gRPC server from its parts, and run it.

`serve` wires the pieces in the order a request meets them: the policy store and the audit
log, the risk assessor, the decider, the servicer and its observer, then the gRPC server
(`build_server`: limits, metrics interceptor, the decision API, health, reflection,
credentials, port). It starts listening with health NOT_SERVING, compiles the first policy
set (refusing to start on an invalid one), turns SERVING, then watches the policy path
until SIGTERM or SIGINT. Shutdown: health NOT_SERVING, stop accepting, give calls in flight
`--grace` seconds, close the risk assessor, write every queued audit record, return.
`run_event_loop` runs a coroutine on uvloop when it is installed, else on asyncio's loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, TypeVar

import grpc
import structlog
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from pdp.config import Settings
from pdp.decide import Decider
from pdp.gateway.service import EXT_AUTHZ_SERVICE, add_ext_authz
from pdp.observability.audit import AuditLog
from pdp.observability.decisions import DecisionObserver
from pdp.observability.metrics import start_metrics_server
from pdp.policy_store import PolicyStore
from pdp.server.health import HEALTH_SERVICE, Health
from pdp.server.interceptors import MetricsInterceptor
from pdp.server.reload import PolicyReloader, policy_count
from pdp.server.risk import close_assessor, open_assessor
from pdp.server.service import PolicyDecisionService
from pdp.server.tls import server_credentials
from pdp.v1 import pdp_pb2, pdp_pb2_grpc

T = TypeVar("T")
SERVICE_NAME: Final[str] = pdp_pb2.DESCRIPTOR.services_by_name["PolicyDecisionService"].full_name
ORPHAN_CHECK_S: Final = 1.0
_log = structlog.get_logger(__name__)


def build_server(
    service: PolicyDecisionService,
    health: Health,
    settings: Settings,
    *,
    shared_port: bool = False,
    more_services: Mapping[str, Callable[[grpc.aio.Server], None]] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """The gRPC server for `service`, bound to settings.listen, and the bound port.

    `shared_port` lets several worker processes bind the same port (SO_REUSEPORT); without
    it a port in use is an error. Port 0 binds a free port. `more_services` maps the full
    name of each further service (e.g. Envoy's ext_authz) to the function adding it to the
    server; reflection lists them too. Raises OSError when the address cannot be bound or
    the TLS files cannot be read.
    """
    options = [
        ("grpc.so_reuseport", 1 if shared_port else 0),
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.aio.server(
        interceptors=[MetricsInterceptor()],
        options=options,
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
    )
    pdp_pb2_grpc.add_PolicyDecisionServiceServicer_to_server(service, server)
    for add in (more_services or {}).values():
        add(server)
    health.add_to_server(server)
    names = (SERVICE_NAME, *(more_services or {}), HEALTH_SERVICE, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    credentials = server_credentials(settings)
    try:
        if credentials is None:
            port = server.add_insecure_port(settings.listen)
        else:
            port = server.add_secure_port(settings.listen, credentials)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {settings.listen}: {exc}") from exc
    return server, port


async def serve(
    settings: Settings,
    ready: Callable[[int], None],
    *,
    shared_port: bool = False,
    metrics: bool = True,
    parent_pid: int | None = None,
) -> int:
    """Serve until SIGTERM or SIGINT (or the death of `parent_pid`); the decisions made.

    `ready(port)` is called once the first policy set is in force and health is SERVING.
    `metrics` serves /metrics from this process (a single worker). Raises PolicySetError
    (nothing is served) when the first policy set is invalid, and OSError when an address
    cannot be bound or a file cannot be opened.
    """
    store = PolicyStore()
    audit = AuditLog(settings.audit_log) if settings.audit_log else None
    assessor = await open_assessor(settings.risk)
    decider = Decider(store, assessor)
    observer = DecisionObserver(audit, truncate_ip=settings.audit_truncate_ip)
    health = Health([SERVICE_NAME])
    service = PolicyDecisionService(decider, observer)
    reloader = PolicyReloader(store, settings.policies, settings.reload_interval_s)
    stopping = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    metrics_server = None
    server: grpc.aio.Server | None = None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    loop.add_signal_handler(signal.SIGHUP, _on_hangup, reloader, audit)
    try:
        gateway = settings.gateway()
        ext_authz = {
            EXT_AUTHZ_SERVICE: lambda server: add_ext_authz(
                server, decider, gateway, observer=observer
            )
        }
        server, port = build_server(
            service, health, settings, shared_port=shared_port, more_services=ext_authz
        )
        if metrics and settings.metrics_port:
            metrics_server = start_metrics_server(settings.host, settings.metrics_port)
        await server.start()
        compiled = await reloader.load_first()
        health.serving()
        tasks.append(asyncio.create_task(reloader.run()))
        if parent_pid is not None:
            tasks.append(asyncio.create_task(_stop_when_orphaned(parent_pid, stopping)))
        _log.info(
            "serving",
            policy_version=compiled.version,
            host=settings.host,
            port=port,
            policy_count=policy_count(compiled),
            policies=str(settings.policies),
            tls="mutual" if settings.client_ca else "on" if settings.tls_cert else "off",
            metrics_port=settings.metrics_port if metrics else None,
            event_loop=type(loop).__module__.split(".")[0],
            pid=os.getpid(),
        )
        ready(port)
        await stopping.wait()
        _log.info("stopping", grace_s=settings.grace_s)
    finally:
        health.shutting_down()
        if server is not None:
            await server.stop(grace=settings.grace_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_assessor(assessor)
        if audit is not None:
            audit.close()  # every queued record is written before this returns
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
    _log.info("stopped", decisions=observer.decided)
    return observer.decided


def _on_hangup(reloader: PolicyReloader, audit: AuditLog | None) -> None:
    """SIGHUP: reload the policies now, and reopen the audit file (after log rotation)."""
    reloader.request()
    if audit is not None:
        audit.reopen()


async def _stop_when_orphaned(parent_pid: int, stopping: asyncio.Event) -> None:
    """A worker whose supervisor died (even by SIGKILL) stops instead of holding the port."""
    while os.getppid() == parent_pid:
        await asyncio.sleep(ORPHAN_CHECK_S)
    _log.warning("supervisor_gone", parent_pid=parent_pid)
    stopping.set()


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop  # noqa: PLC0415 - optional: pip install 'pdp[fast]'
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
