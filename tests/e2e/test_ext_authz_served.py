"""`pdp serve` answers Envoy's Authorization/Check on its own port, beside Evaluate."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import grpc
from pdp_process import FAST_RECONNECT, PdpProcess

from pdp.gateway.envoy import auth_grpc


def _gateway_requests() -> ModuleType:
    """The gateway tests' Envoy request builders, loaded by path (no sys.path changes)."""
    path = Path(__file__).resolve().parents[1] / "gateway" / "envoy_requests.py"
    spec = importlib.util.spec_from_file_location("e2e_envoy_requests", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


envoy = _gateway_requests()
OK, UNAUTHENTICATED = 0, 16


def test_serve_answers_check_with_its_gateway_config() -> None:
    """A real `pdp serve --gateway-config` allows, challenges (401) and audits Check calls."""
    with PdpProcess(envoy.POLICIES, "--gateway-config", str(envoy.EXAMPLE_CONFIG)) as pdp:
        pdp.wait_ready()
        with grpc.insecure_channel(pdp.address, options=FAST_RECONNECT) as ch:
            check = auth_grpc.AuthorizationStub(ch).Check
            allowed = check(
                envoy.envoy_check(
                    host=envoy.PROD_HOST, client=envoy.OFFICE, claims=envoy.engineer_claims()
                )
            )
            challenged = check(
                envoy.envoy_check(
                    host=envoy.DEV_HOST,
                    client=envoy.HOME,
                    claims=envoy.engineer_claims(amr=("pwd",)),
                )
            )
        assert allowed.status.code == OK
        assert challenged.status.code == UNAUTHENTICATED
        assert challenged.denied_response.status.code == 401
        metrics = pdp.metrics()
        assert metrics.value("pdp_decisions_total", decision="allow") == 1
        assert metrics.value("pdp_decisions_total", decision="challenge") == 1


def test_serve_refuses_a_bad_gateway_config(tmp_path: Path) -> None:
    """An invalid --gateway-config stops `pdp serve` at start with a message naming it."""
    bad = tmp_path / "gateway.yaml"
    bad.write_text("version: 1\nnetwork: {trusted_hops: -3}\n", encoding="utf-8")
    done = subprocess.run(
        [
            *(sys.executable, "-m", "pdp", "serve", "--policies", str(envoy.POLICIES)),
            *("--gateway-config", str(bad), "--listen", "127.0.0.1:0", "--metrics-port", "0"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1  # a file the server cannot use, like a bad --tls-cert
    [line] = done.stderr.splitlines()
    assert "--gateway-config" in line
