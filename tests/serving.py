"""A real grpc.aio server for in-process tests: pdp's own builder with its default limits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import grpc

from pdp.config import Settings
from pdp.limits import Limits
from pdp.server.grpc_server import build_server
from pdp.server.health import Health
from pdp.server.service import SERVICE_NAME, PolicyDecisionService

DEFAULTS = Settings(policies=Path("unused"))


def grpc_server(
    service: PolicyDecisionService,
    *,
    health: Health | None = None,
    more_services: Mapping[str, Callable[[grpc.aio.Server], None]] | None = None,
) -> tuple[grpc.aio.Server, int]:
    """`service` (and `more_services`) on 127.0.0.1 at a free port, with pdp's default limits."""
    return build_server(
        service,
        health or Health([SERVICE_NAME]),
        "127.0.0.1:0",
        limits=Limits(DEFAULTS.max_concurrent_rpcs, DEFAULTS.max_message_bytes),
        more_services=more_services,
    )
