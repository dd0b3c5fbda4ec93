"""The forward-auth endpoint served in-process on a loopback port, over the ai-workspace example.

`example_config` is `examples/gateway-config.yaml` with a `tokens` section pointing at a test
JWKS server, and the gateway in front on the same machine (`trusted_proxies: 127.0.0.0/8`,
one trusted hop): the client's address is the last `X-Forwarded-For` entry. `serving`
runs a real `ForwardAuthServer` on 127.0.0.1 over a real `Decider` and yields its base URL.
The sign-ins are those of `tests/gateway/envoy_requests.py`: Ada, an ML engineer, from the
office or from home, on the dev or prod workspace, with a compliant laptop.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from entra_tokens import SigningKey, Version
from issuer_kit import AUDIENCES, token

from pdp.decide import Decider
from pdp.forward_auth.server import ForwardAuthServer
from pdp.gateway.config import GatewayConfig, parse_gateway_config
from pdp.limits import Limits
from pdp.observability.decisions import DecisionObserver
from pdp.policy_store import PolicyStore

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "examples" / "ai-workspace"
EXAMPLE_CONFIG = ROOT / "examples" / "gateway-config.yaml"
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
DEV_HOST = "dev.workspace.contoso.example"
PROD_HOST = "workspace.contoso.example"
OFFICE = "203.0.113.25"
HOME = "192.0.2.200"
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"
COMPLIANT_LAPTOP = {
    "X-Device-Id": "laptop-0042",
    "X-Device-Compliant": "true",
    "X-Device-Trust-Type": "AzureAD",
}
KEY = SigningKey("entra-key-1")


def example_config(jwks_uri: str, ca_file: Path, **tokens: Any) -> GatewayConfig:
    """The example gateway config, verifying tokens itself, behind a gateway on loopback."""
    data = yaml.safe_load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["network"] = {
        "trusted_hops": 1,
        "gateway_appends_xff": False,
        "trusted_proxies": ["127.0.0.0/8", "::1/128"],
    }
    data["tokens"] = {
        "audiences": list(AUDIENCES),
        "jwks_uri": jwks_uri,
        "jwks_ca_file": str(ca_file),
        **tokens,
    }
    return parse_gateway_config(data)


def engineer_token(
    amr: tuple[str, ...] = ("pwd", "mfa"),
    key: SigningKey = KEY,
    version: Version = "1.0",
    **claims: Any,
) -> str:
    """An Entra access token for Ada (ML Engineers), signed by `key`.

    v1.0 by default, whose `amr` says how she signed in; a v2.0 token has no `amr` (pass
    `acrs=["c1"]` for the authentication context whose policy demands MFA).
    """
    values: dict[str, Any] = {"groups": [ENGINEERS], "amr": list(amr), **claims}
    return token(key, version, **values)


def original_request(
    token: str | None,
    *,
    host: str = PROD_HOST,
    client: str = OFFICE,
    uri: str = "/notebooks/42",
    **extra: str,
) -> dict[str, str]:
    """The headers NGINX's auth subrequest carries for a browser's request to `host`."""
    headers = {
        "User-Agent": BROWSER,
        "Cookie": "workspace_session=7b1d",
        "X-Original-URI": uri,
        "X-Original-Method": "GET",
        "X-Forwarded-Host": host,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": client,
        **COMPLIANT_LAPTOP,
        **extra,
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def loaded_store() -> PolicyStore:
    """A store holding the ai-workspace policy set."""
    store = PolicyStore()
    store.load(POLICIES)
    return store


@asynccontextmanager
async def serving(
    config: GatewayConfig,
    observer: DecisionObserver | None = None,
    *,
    tls: ssl.SSLContext | None = None,
    grace_s: float = 5.0,
    limits: Limits | None = None,
) -> AsyncIterator[tuple[str, ForwardAuthServer]]:
    """A ForwardAuthServer on 127.0.0.1 (a free port): its /authz URL, and the server."""
    server = ForwardAuthServer(
        Decider(loaded_store()),
        config,
        observer or DecisionObserver(),
        "127.0.0.1:0",
        grace_s=grace_s,
        ssl_context=tls,
        limits=limits,
    )
    port = await server.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}/authz", server
    finally:
        await server.stop()
