"""Envoy CheckRequests as Envoy sends them, and a real pdp gRPC server to send them to.

The scenarios use the ai-workspace example (`examples/ai-workspace/` policies and
`examples/gateway-config.yaml`): a load balancer at 10.0.0.5 in front of Envoy appends
the client's address to x-forwarded-for, jwt_authn writes the verified Entra token's payload
under `jwt_payload`, and a device-posture proxy sets the x-device-* headers.

`envoy_check` adds the headers as an edge Envoy (`use_remote_address: true`,
`xff_num_trusted_hops: 1`) hands them to ext_authz, as tests/gateway/test_envoy_e2e.py
observes a real one do: it appends its peer to x-forwarded-for (its own host address
instead when the peer is 127.0.0.1 or ::1) and sets x-envoy-external-address to the entry
`xff_num_trusted_hops` from the right of the XFF it received (its peer when there is none).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format

from pdp.decide import Decider
from pdp.gateway.config import GatewayConfig
from pdp.gateway.envoy import auth, auth_grpc
from pdp.gateway.service import add_ext_authz
from pdp.observability.decisions import DecisionObserver
from pdp.policy_store import PolicyStore
from pdp.server.service import PolicyDecisionService
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "ai-workspace"
EXAMPLE_CONFIG = ROOT / "examples" / "gateway-config.yaml"
TENANT = "7c0e5a1b-1111-4a2b-8c3d-000000000001"
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
ADA = "0a0da000-0000-4000-8000-00000000ada1"
PIPELINE = "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001"
DEV_APP = "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01"
PROD_APP = "8a4f0c1e-2d3b-4c5a-9e7f-00000000f001"
DEV_HOST = "dev.workspace.contoso.example"
PROD_HOST = "workspace.contoso.example"
LB = "10.0.0.5"
ENVOY_HOST = "10.0.1.7"  # Envoy's own host address, which it appends for a loopback peer
OFFICE = "203.0.113.25"
HOME = "192.0.2.200"
RUNNER = "192.0.2.10"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
JWT_NAMESPACE = "envoy.filters.http.jwt_authn"
COMPLIANT_LAPTOP = {
    "x-device-id": "laptop-0042",
    "x-device-compliant": "true",
    "x-device-trust-type": "AzureAD",
}
T = TypeVar("T")


def engineer_claims(
    amr: tuple[str, ...] = ("pwd", "mfa"), signed_in_ago_s: float = 1800, **extra: Any
) -> dict[str, Any]:
    """The payload of an Entra access token for Ada, an ML engineer."""
    now = int(time.time())
    return {
        "aud": "api://contoso-workspace",
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "iat": now - 60,
        "exp": now + 3540,
        "tid": TENANT,
        "oid": ADA,
        "sub": "m7bR2n-ada-pairwise-subject",
        "azp": "c0ffee00-0000-4000-8000-00000000c11e",
        "groups": [ENGINEERS],
        "amr": list(amr),
        "auth_time": int(now - signed_in_ago_s),
        "scp": "Workspace.ReadWrite",
        **extra,
    }


def pipeline_claims() -> dict[str, Any]:
    """The payload of an app-only token of the training pipeline's service principal."""
    now = int(time.time())
    return {
        "aud": "api://contoso-workspace",
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "iat": now - 60,
        "exp": now + 3540,
        "tid": TENANT,
        "oid": "9f9f0000-0000-4000-8000-00000000005b",
        "sub": "9f9f0000-0000-4000-8000-00000000005b",
        "azp": PIPELINE,
        "idtyp": "app",
        "roles": ["Pipeline.Run"],
    }


def envoy_check(
    *,
    host: str,
    client: str,
    claims: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, str] | None = None,
    forwarded: str | None = None,
    peer: str = LB,
    path: str = "/notebooks/42",
    envoy_hops: int | None = 1,
    principal: str = "",
) -> Any:
    """A CheckRequest shaped like Envoy's: pseudo-headers, XFF from the LB, jwt_authn metadata.

    `forwarded` is the x-forwarded-for Envoy received (default: `client`, as the LB appended
    it); `envoy_hops` is Envoy's xff_num_trusted_hops, or None for an Envoy with
    `use_remote_address: false` (a sidecar), which passes x-forwarded-for on untouched.
    """
    received = client if forwarded is None else forwarded
    http_headers = {
        ":authority": host,
        ":method": "GET",
        ":path": path,
        ":scheme": "https",
        "user-agent": BROWSER,
        "cookie": "workspace_session=7b1d",
        "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        **edge_envoy_headers(received, peer, envoy_hops),
        "x-forwarded-proto": "https",
        "x-request-id": str(uuid.uuid4()),
        **COMPLIANT_LAPTOP,
        **(headers or {}),
    }
    attributes: dict[str, Any] = {
        "source": {
            "address": {"socketAddress": {"address": peer, "portValue": 51234}},
            "principal": principal,  # the peer certificate's URI SAN, under mTLS
        },
        "destination": {"address": {"socketAddress": {"address": "10.0.1.7", "portValue": 8443}}},
        "request": {
            "time": "2026-11-21T09:00:00Z",
            "http": {
                "id": "11702375419208421390",
                "method": "GET",
                "headers": {k: v for k, v in http_headers.items() if v is not None},
                "path": path,
                "host": host,
                "scheme": "https",
                "protocol": "HTTP/1.1",
            },
        },
        "contextExtensions": extensions or {},
    }
    if claims is not None:
        attributes["metadataContext"] = {"filterMetadata": {JWT_NAMESPACE: {"jwt_payload": claims}}}
    return json_format.ParseDict({"attributes": attributes}, auth.CheckRequest())


def edge_envoy_headers(received: str, peer: str, hops: int | None) -> dict[str, str]:
    """x-forwarded-for and x-envoy-external-address as Envoy passes them to ext_authz."""
    if hops is None:
        return {"x-forwarded-for": received} if received else {}
    entries = [e.strip() for e in received.split(",")] if received else []
    external = peer
    if hops and len(entries) >= hops:
        with contextlib.suppress(ValueError):
            external = str(ipaddress.ip_address(entries[-hops]))
    appended = ENVOY_HOST if peer in ("127.0.0.1", "::1") else peer
    return {
        "x-forwarded-for": ",".join([*entries, appended]),
        "x-envoy-external-address": external,
    }


@dataclass(frozen=True, slots=True)
class Stubs:
    """Clients of one running server: Envoy's Authorization and pdp's own service."""

    check: Any
    evaluate: Any


def loaded_store() -> PolicyStore:
    """A store holding the ai-workspace policy set."""
    store = PolicyStore()
    store.load(POLICIES)
    return store


@asynccontextmanager
async def serving(
    store: PolicyStore, config: GatewayConfig, observer: DecisionObserver | None = None
) -> AsyncIterator[Stubs]:
    """A real grpc.aio server with Evaluate and Check on 127.0.0.1, and a real channel to it."""
    decider = Decider(store)
    observer = observer or DecisionObserver()
    server = grpc.aio.server()
    PolicyDecisionService(decider, observer).add_to_server(server)
    add_ext_authz(server, decider, config, observer)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield Stubs(
                check=auth_grpc.AuthorizationStub(channel),
                evaluate=pdp_pb2_grpc.PolicyDecisionServiceStub(channel),
            )
    finally:
        await server.stop(grace=None)


def run(
    config: GatewayConfig,
    scenario: Callable[[Stubs], Awaitable[T]],
    store: PolicyStore | None = None,
) -> T:
    """Run `scenario` against a fresh server (the example policies unless `store` is given)."""

    async def main() -> T:
        async with serving(loaded_store() if store is None else store, config) as stubs:
            return await scenario(stubs)

    return asyncio.run(main())


def check_all(config: GatewayConfig, *requests: Any, store: PolicyStore | None = None) -> list[Any]:
    """Send each CheckRequest through a real server; their CheckResponses in order."""

    async def scenario(stubs: Stubs) -> list[Any]:
        return [await stubs.check.Check(r, timeout=10) for r in requests]

    return run(config, scenario, store)
