"""The client address behind Istio: through the ingress gateway, and from other workloads.

pdp runs with deploy/istio/gateway-config.yaml as shipped, behind a real Envoy standing in
for the ingress gateway and the workspace's sidecar (istio_mesh.py). A request through the
gateway is judged by the address the gateway saw, whatever x-forwarded-for the client sent;
a workload calling the sidecar directly is judged by its own address, whatever it claims.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.pdp_process import PdpProcess, free_port
from entra_tokens import CertificateAuthority, JwksServer, TokenFactory, jwks_certificate
from envoy_e2e import POLICIES, EnvoyProcess, Response, Upstream, audit_record, send
from istio_mesh import (
    INGRESS_IDENTITY,
    ISTIO_GATEWAY_CONFIG,
    OTHER_IDENTITY,
    WORKSPACE_IDENTITY,
    MeshFiles,
    MeshPorts,
    mesh_bootstrap,
)

DEV = "dev.workspace.contoso.example"
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
CLIENT = "127.0.0.5"  # connects to the ingress gateway
WORKLOAD = "127.0.0.6"  # another workload of the mesh
SPOOFED = {"x-forwarded-for": "203.0.113.25", "x-envoy-external-address": "203.0.113.25"}


@dataclass
class Mesh:
    """The stand-in Envoy, pdp with the Istio config, and what a workload needs to call in."""

    envoy: EnvoyProcess
    pdp: PdpProcess
    ports: MeshPorts
    tokens: TokenFactory
    audit: Path
    workload_tls: ssl.SSLContext

    def get(
        self, *, port: int, source: str, headers: dict[str, str], tls: ssl.SSLContext | None = None
    ) -> tuple[Response, dict[str, Any]]:
        """A request for the dev workspace with an engineer's MFA token; response and audit.

        No device signals are configured for Istio, so AI03 (compliant device) denies it:
        what matters here is the address pdp decided for.
        """
        token = self.tokens.user(
            "1.0", groups=[ENGINEERS], amr=["pwd", "mfa"], auth_time=int(time.time()) - 60
        )
        sent = {"authorization": f"Bearer {token}", **headers}
        response = send(port, "/notebooks/1", DEV, sent, source=source, tls=tls)
        assert response.status == 403
        return response, audit_record(self.audit, response.headers["x-pdp-request-id"])


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    """The stand-in mesh, pdp and the app, started once for the module."""
    directory = tmp_path_factory.mktemp("istio")
    ca = CertificateAuthority()
    ca_file = ca.write(directory)
    ingress_cert, ingress_key = ca.issue(uris=(INGRESS_IDENTITY,)).write(directory, "ingress")
    workspace_cert, workspace_key = ca.issue(uris=(WORKSPACE_IDENTITY,)).write(
        directory, "workspace"
    )
    other_cert, other_key = ca.issue(uris=(OTHER_IDENTITY,)).write(directory, "other")
    workload_tls = ssl.create_default_context(cafile=str(ca_file))
    workload_tls.check_hostname = False  # a mesh peer is checked by its SPIFFE id, not a name
    workload_tls.load_cert_chain(other_cert, other_key)
    files = MeshFiles(ca_file, ingress_cert, ingress_key, workspace_cert, workspace_key)
    tokens = TokenFactory()
    audit = directory / "audit.jsonl"
    app = Upstream()
    try:
        with (
            JwksServer(jwks_certificate(ca), [tokens.key], directory) as jwks,
            PdpProcess(
                POLICIES,
                "--gateway-config",
                str(ISTIO_GATEWAY_CONFIG),
                "--audit-log",
                str(audit),
            ) as pdp,
        ):
            pdp.wait_ready()
            ports = MeshPorts(free_port(), free_port(), free_port(), pdp.port, app.port, jwks.port)
            config = mesh_bootstrap(ports, files)
            with EnvoyProcess(config, directory, ports.admin, name="mesh") as envoy:
                envoy.wait_ready()
                yield Mesh(envoy, pdp, ports, tokens, audit, workload_tls)
    finally:
        app.close()


@pytest.mark.parametrize("headers", [{}, SPOOFED], ids=["plain", "spoofed"])
def test_through_the_ingress_gateway_the_client_is_the_gateways_peer(
    mesh: Mesh, headers: dict[str, str]
) -> None:
    """The gateway appends its peer; the sidecar's pdp takes that entry, not the client's."""
    _, record = mesh.get(port=mesh.ports.ingress, source=CLIENT, headers=headers)
    assert (record["decision"], record["ipAddress"]) == ("deny", CLIENT)


@pytest.mark.parametrize("headers", [{}, SPOOFED], ids=["plain", "spoofed"])
def test_another_workload_is_judged_by_its_own_address(mesh: Mesh, headers: dict[str, str]) -> None:
    """A mesh peer that is not the ingress gateway: its forwarded headers are not read."""
    _, record = mesh.get(
        port=mesh.ports.sidecar, source=WORKLOAD, headers=headers, tls=mesh.workload_tls
    )
    assert (record["decision"], record["ipAddress"]) == ("deny", WORKLOAD)


def test_a_client_on_the_gateways_own_host_is_refused_not_misplaced(mesh: Mesh) -> None:
    """From 127.0.0.1 the gateway appends its host's address but reports 127.0.0.1.

    The two disagree, and pdp refuses rather than pick one (403).
    """
    _, record = mesh.get(port=mesh.ports.ingress, source="127.0.0.1", headers={})
    assert record["status"]["failureReason"] == "invalid_argument"
    event = mesh.pdp.wait_for("check_rejected", request_id=record["id"])
    assert "x-envoy-external-address" in event["error"]
