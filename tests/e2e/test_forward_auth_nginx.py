"""Behind real NGINX (auth_request, the shipped config): pdp verifies the token and decides.

One `pdp serve --http-listen` with `deploy/nginx/gateway-config.yaml` (pointed at a local
JWKS server over TLS with a test CA), Debian's nginx with `deploy/nginx/pdp-forward-auth.conf`,
and the protected app, all on loopback ports. The client is 127.0.0.1, outside the
ai-workspace example's trusted ranges: the dev workspace lets in an engineer who did MFA on
a compliant laptop, production (trusted ranges only) is blocked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from entra_tokens import OTHER_TENANT, SigningKey
from gateways import ROOT, Nginx, Upstream, get
from issuer_kit import Issuer, token
from pdp_process import PdpProcess, free_port
from system_tools import require_tool

POLICIES = ROOT / "examples" / "ai-workspace"
GATEWAY_CONFIG = ROOT / "deploy" / "nginx" / "gateway-config.yaml"
DEV = "dev.workspace.contoso.example"
PROD = "workspace.contoso.example"
OFFICE = "203.0.113.25"  # inside the example's corporate range
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
KEY = SigningKey("nginx-e2e-key")
LAPTOP = {
    "X-Device-Id": "laptop-0042",
    "X-Device-Compliant": "true",
    "X-Device-Trust-Type": "AzureAD",
}
CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A different authentication level is required", acr_values="c1"'
)


def pdp_gateway_config(folder: Path, issuer: Issuer) -> Path:
    """The shipped NGINX gateway config, for loopback, the test JWKS and a posture proxy."""
    data: dict[str, Any] = yaml.safe_load(GATEWAY_CONFIG.read_text(encoding="utf-8"))
    data["network"]["trusted_proxies"] = ["127.0.0.0/8"]
    data["tokens"]["jwks_uri"] = issuer.jwks_uri
    data["tokens"]["jwks_ca_file"] = str(issuer.ca_file)
    data["device"] = {  # a device-posture proxy in front would set these
        "id": "header:x-device-id",
        "compliant": "header:x-device-compliant",
        "trust_type": "header:x-device-trust-type",
    }
    path = folder / "gateway-config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


class Stack:
    """pdp, nginx and the app, running; `ask` sends one request through nginx."""

    def __init__(self, pdp: PdpProcess, nginx: Nginx, app: Upstream, audit: Path) -> None:
        self.pdp, self.nginx, self.app, self.audit = pdp, nginx, app, audit

    def ask(self, host: str, token: str | None, **headers: str) -> tuple[int, dict[str, str], str]:
        """One browser request to `host` with `token` as its bearer."""
        sent = {"User-Agent": "Mozilla/5.0 (Macintosh)", **LAPTOP, **headers}
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        return get(self.nginx.port, host, sent)

    def records(self) -> list[dict[str, Any]]:
        """The audit records written so far."""
        text = self.audit.read_text(encoding="utf-8") if self.audit.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    def record(self, request_id: str) -> dict[str, Any]:
        """The audit record of one request (waiting for the writer thread)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = [r for r in self.records() if r["id"] == request_id]
            if found:
                return found[0]
            time.sleep(0.05)
        pytest.fail(f"no audit record {request_id}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack: pdp (forward-auth on), the JWKS over TLS, the app, nginx in front."""
    binary = require_tool("nginx", "nginx", also=("/usr/sbin/nginx",))
    folder = tmp_path_factory.mktemp("nginx-e2e")
    issuer = Issuer(folder, [KEY])
    app = Upstream()
    http_port = free_port()
    audit = folder / "audit.jsonl"
    args = [
        "--gateway-config", str(pdp_gateway_config(folder, issuer)),
        "--http-listen", f"127.0.0.1:{http_port}",
        "--audit-log", str(audit),
    ]  # fmt: skip
    pdp = PdpProcess(POLICIES, *args).__enter__()
    try:
        pdp.wait_ready()
        nginx = Nginx(binary, folder, http_port, app.port)
        checked = nginx.test_config()
        assert checked.returncode == 0, checked.stderr
        with nginx:
            yield Stack(pdp, nginx, app, audit)
    finally:
        pdp.__exit__(None, None, None)
        app.close()
        issuer.close()


def engineer(amr: list[str], version: Any = "1.0", **claims: Any) -> str:
    """Ada's token (ML Engineers): v1.0 with `amr`, or v2.0 (pass `acrs`)."""
    return token(KEY, version, groups=[ENGINEERS], amr=amr, **claims)


def test_an_engineer_with_mfa_reaches_dev_with_pdps_headers(stack: Stack) -> None:
    """200 from the app, which gets x-pdp-* from pdp, never the client's forged copies."""
    before = len(stack.app.seen)
    status, headers, body = stack.ask(
        DEV,
        engineer(["pwd", "mfa"]),
        **{"X-Pdp-Decision": "forged", "X-Pdp-Session-Max-Age": "999999"},
    )
    assert (status, body) == (200, "app")
    [seen] = stack.app.seen[before:]
    assert seen["x-pdp-decision"] == "allow"
    assert seen["x-pdp-session-max-age"] == "86400"
    rid = seen["x-pdp-request-id"]
    assert headers["x-pdp-request-id"] == rid  # quoted back to the client too
    record = stack.record(rid)
    assert record["decision"] == "allow"
    assert record["userId"] == "0a0da000-0000-4000-8000-00000000ada1"
    assert record["ipAddress"] == "127.0.0.1"
    # A v2.0 token (no amr) proves MFA through the authentication context c1.
    status, _, _ = stack.ask(DEV, engineer([], "2.0", acrs=["c1"]))
    assert status == 200


def test_password_only_gets_the_mfa_step_up_challenge(stack: Stack) -> None:
    """401 with pdp's RFC 9470 WWW-Authenticate, passed on by nginx; the app is not reached."""
    before = len(stack.app.seen)
    status, headers, _ = stack.ask(DEV, engineer(["pwd"]))
    assert status == 401
    assert headers["www-authenticate"] == CHALLENGE
    assert stack.record(headers["x-pdp-request-id"])["decision"] == "challenge"
    assert len(stack.app.seen) == before


def test_production_from_outside_the_trusted_ranges_is_blocked(stack: Stack) -> None:
    """403 from nginx; the audit names the blocking policy."""
    before = len(stack.app.seen)
    status, headers, _ = stack.ask(PROD, engineer(["pwd", "mfa"]))
    assert status == 403
    record = stack.record(headers["x-pdp-request-id"])
    assert record["decision"] == "deny"
    assert "AI04" in json.dumps(record["appliedConditionalAccessPolicies"])
    assert len(stack.app.seen) == before


def test_a_forged_x_forwarded_for_is_not_believed(stack: Stack) -> None:
    """The client claims the office address; pdp reads the entry nginx added: blocked."""
    status, headers, _ = stack.ask(PROD, engineer(["pwd", "mfa"]), **{"X-Forwarded-For": OFFICE})
    assert status == 403
    record = stack.record(headers["x-pdp-request-id"])
    assert record["ipAddress"] == "127.0.0.1"
    assert record["decision"] == "deny"


@pytest.mark.parametrize(
    ("claims", "key", "reason"),
    [
        ({"now": int(time.time()) - 4000}, KEY, "token_expired"),
        ({"aud": "api://someone-elses-api"}, KEY, "token_audience"),
        ({"tenant": OTHER_TENANT}, KEY, "token_tenant"),
        ({}, SigningKey("unknown-kid"), "token_unknown_key"),
    ],
    ids=["expired", "wrong-audience", "wrong-tenant", "unknown-key"],
)
def test_refused_tokens_get_401_and_the_reason_in_the_audit(
    stack: Stack, claims: dict[str, Any], key: SigningKey, reason: str
) -> None:
    """Nginx answers 401 with invalid_token; the audit names the reason, never the token."""
    jwt = token(key, "1.0", groups=[ENGINEERS], amr=["pwd", "mfa"], **claims)
    before = len(stack.app.seen)
    status, headers, _ = stack.ask(DEV, jwt)
    assert status == 401
    assert headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    record = stack.record(headers["x-pdp-request-id"])
    assert record["status"]["failureReason"] == reason
    assert jwt not in stack.audit.read_text(encoding="utf-8")
    assert jwt not in "".join(stack.pdp.stderr)
    assert len(stack.app.seen) == before


def test_no_token_gets_a_plain_bearer_challenge(stack: Stack) -> None:
    """No Authorization header: 401 `WWW-Authenticate: Bearer`."""
    status, headers, _ = stack.ask(DEV, None)
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"


def test_a_token_with_200_groups_fits_through_nginx(stack: Stack) -> None:
    """~12 KB Authorization header: within the shipped large_client_header_buffers."""
    groups = [f"00000000-0000-4000-8000-{i:012d}" for i in range(199)] + [ENGINEERS]
    jwt = token(KEY, "1.0", groups=groups, amr=["pwd", "mfa"])
    assert len(jwt) > 11_000
    status, _, _ = stack.ask(DEV, jwt)
    assert status == 200


def test_pdp_down_means_nginx_answers_an_error_and_never_passes(stack: Stack) -> None:
    """With pdp stopped, nginx answers 5xx and the app sees nothing (runs last)."""
    assert stack.pdp.stop() == 0
    before = len(stack.app.seen)
    status, _, _ = stack.ask(DEV, engineer(["pwd", "mfa"]))
    assert status in (500, 502, 503)
    assert len(stack.app.seen) == before
    assert (
        "auth request" in stack.nginx.error_log() or "connect() failed" in stack.nginx.error_log()
    )
