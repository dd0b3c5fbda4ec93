"""The composition root: build the gRPC server from its parts, and run it until a signal.

`build_server` wires the pieces in the order a request meets them (policy store ->
decider -> servicer -> gRPC server -> listening port); `serve` loads the policy set,
refuses to start on an invalid one, serves until SIGTERM or SIGINT, then stops gracefully.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import structlog

from pdp.decide import Decider
from pdp.policy_store import PolicyStore
from pdp.server.service import PolicyDecisionService
from pdp.v1 import pdp_pb2_grpc

STOP_GRACE_S = 5.0  # in-flight calls get this long to finish on shutdown
_log = structlog.get_logger(__name__)


def build_server(store: PolicyStore, listen: str) -> tuple[grpc.aio.Server, int]:
    """A server deciding against `store`, bound to `listen` (HOST:PORT), and the bound port.

    Port 0 binds a free port. Raises OSError when the address cannot be bound.
    """
    decider = Decider(store)
    service = PolicyDecisionService(decider)
    server = grpc.aio.server()
    pdp_pb2_grpc.add_PolicyDecisionServiceServicer_to_server(service, server)
    try:
        port = server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {listen}: {exc}") from exc
    return server, port


async def serve(policies: Path, listen: str) -> None:
    """Serve `policies` on `listen` until SIGTERM or SIGINT.

    Raises PolicySetError (nothing is served) when the policy set is invalid, and OSError
    when `listen` cannot be bound. Prints `listening on HOST:PORT` once the server is up.
    """
    store = PolicyStore()
    for diagnostic in store.load(policies):
        _log.warning("policy_diagnostic", diagnostic=str(diagnostic))
    compiled = store.current
    server, port = build_server(store, listen)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stopping.set)
    host = listen.rsplit(":", 1)[0]
    await server.start()
    try:
        _log.info(
            "serving",
            policy_version=compiled.version,
            host=host,
            port=port,
            policy_count=len(compiled.policies) + len(compiled.disabled),
            policies=str(policies),
        )
        print(f"listening on {host}:{port}", flush=True)
        await stopping.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        _log.info("stopping", grace_s=STOP_GRACE_S)
        await server.stop(grace=STOP_GRACE_S)
    _log.info("stopped")
