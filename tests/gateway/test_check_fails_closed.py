"""Check answers every call that reaches pdp with a CheckResponse: garbage and size included.

Envoy's `failure_mode_allow: true` lets a request through when Check fails with an RPC
error; pdp's own refusals are therefore denials, never errors (README, "Envoy and Istio").
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from serving import grpc_server

from pdp.decide import Decider
from pdp.gateway.config import load_gateway_config
from pdp.gateway.envoy import auth
from pdp.gateway.service import EXT_AUTHZ_SERVICE, add_ext_authz
from pdp.limits import Limits
from pdp.observability.decisions import DecisionObserver
from pdp.policy_store import PolicyStore
from pdp.server.service import PolicyDecisionService

ROOT = Path(__file__).resolve().parents[2]


def checked(*bodies: bytes, max_message_bytes: int = 4096) -> list[auth.CheckResponse]:
    """Send raw bodies to a real server's Check; its answers, decoded."""
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    config = load_gateway_config(ROOT / "examples" / "gateway-config.yaml")

    async def scenario() -> list[auth.CheckResponse]:
        decider, observer = Decider(store), DecisionObserver()
        limits = Limits(max_message_bytes=max_message_bytes)
        more = {EXT_AUTHZ_SERVICE: lambda s: add_ext_authz(s, decider, config, observer, limits)}
        server, port = grpc_server(
            PolicyDecisionService(decider, observer, limits), more_services=more
        )
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                raw = ch.unary_unary(f"/{EXT_AUTHZ_SERVICE}/Check")
                answers = [await raw(body, timeout=10) for body in bodies]
                return [auth.CheckResponse.FromString(a) for a in answers]
        finally:
            await server.stop(grace=None)

    return asyncio.run(scenario())


def test_undecodable_and_oversize_requests_are_denied_not_errors() -> None:
    """Garbage bytes get 403, a message over --max-message-bytes 503: both CheckResponses."""
    garbage, too_big = checked(b"\xff\xff\xff\xff", b"\x0a" + b"\x01" * 5000)
    assert garbage.status.code == 7  # google.rpc PERMISSION_DENIED: Envoy denies
    assert garbage.denied_response.status.code == 403
    assert b"invalid_argument" in garbage.denied_response.body.encode()
    assert too_big.denied_response.status.code == 503
    assert b"resource_exhausted" in too_big.denied_response.body.encode()
