"""The grpc.aio server pdp listens with: its options, limits, services and port.

`build_server` puts the decision API, any further services (Envoy's ext_authz), health and
server reflection (v1 and v1alpha) on one server with the message-size and concurrency
limits, the gRPC metrics interceptor and the credentials, and binds its address. The
composition root (`pdp.runtime.app`) decides what goes in; this module only knows gRPC.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping

import grpc

from pdp.errors import StartupError
from pdp.limits import STREAMS, InFlight, Limits, hard_limit, message_cap
from pdp.server.health import HEALTH_SERVICE, Health
from pdp.server.reflection import add_reflection
from pdp.server.service import SERVICE_NAME, PolicyDecisionService


def build_server(
    service: PolicyDecisionService,
    health: Health,
    listen: str,
    *,
    limits: Limits,
    credentials: grpc.ServerCredentials | None = None,
    shared_port: bool = False,
    more_services: Mapping[str, Callable[[grpc.aio.Server], None]] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """The gRPC server for `service`, bound to `listen`, and the bound port.

    `shared_port` lets several worker processes bind the same port (SO_REUSEPORT); without
    it a port in use is an error. Port 0 binds a free port. `more_services` maps the full
    name of each further service (e.g. Envoy's ext_authz) to the function adding it to the
    server; reflection lists them too. `limits` are the ones the decision handlers apply;
    grpc's own are set above them (`pdp.limits`). Raises StartupError when the address
    cannot be bound.
    """
    cap = message_cap(limits.max_message_bytes)
    options = [
        ("grpc.so_reuseport", 1 if shared_port else 0),
        ("grpc.max_receive_message_length", cap),
        ("grpc.max_send_message_length", cap),
    ]
    server = grpc.aio.server(
        options=options, maximum_concurrent_rpcs=hard_limit(limits.in_flight.limit)
    )
    service.add_to_server(server)
    for add in (more_services or {}).values():
        add(server)
    streams = InFlight(STREAMS)  # health Watch and reflection: a budget of their own
    health.add_to_server(server, streams)
    add_reflection((SERVICE_NAME, *(more_services or {}), HEALTH_SERVICE), server, streams)
    if not shared_port:
        _check_bindable(listen)
    try:
        if credentials is None:
            port = server.add_insecure_port(listen)
        else:
            port = server.add_secure_port(listen, credentials)
    except RuntimeError as exc:
        raise StartupError(f"--listen {listen}: cannot listen: {exc}") from exc
    return server, port


def _check_bindable(listen: str) -> None:
    """Refuse an address in use (or not this host's) before grpc tries it.

    grpc would refuse it too, but only after logging its own lines on stderr; a start-up
    error is one line. Binding is tried the way grpc binds (SO_REUSEADDR) and let go.
    """
    host, _, port = listen.rpartition(":")
    try:
        addresses = socket.getaddrinfo(
            host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StartupError(f"--listen {listen}: cannot listen: {reason}") from None
