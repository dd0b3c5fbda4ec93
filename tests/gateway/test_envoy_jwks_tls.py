"""The shipped Envoy config trusts only a JWKS server it can verify: CA chain and host name.

Whoever serves the keys decides which tokens are genuine. Each case runs the shipped
deploy/envoy/envoy.yaml (envoy_e2e.py substitutions) against a JWKS server holding the key
the token is signed with, and no pdp: a token jwt_authn accepts goes on to ext_authz, which
then fails closed (`ext_authz_error`), while a token it refuses stops at jwt_authn. So the
response tells whether Envoy trusted the key server, without a decision in the way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.pdp_process import free_port
from entra_tokens import (
    ISSUER_HOST,
    Certificate,
    CertificateAuthority,
    JwksServer,
    TokenFactory,
    jwks_certificate,
    self_signed,
)
from envoy_e2e import EnvoyProcess, Ports, local_config, send, upstream_app

CA = CertificateAuthority()  # the one the substituted trust bundle holds
OTHER_NAME = "keys.attacker.example"


@dataclass(frozen=True)
class Answer:
    """What came of one request with a token signed by the key the server holds."""

    status: int
    details: str  # Envoy's response code details
    fetches: int  # key documents the JWKS server served
    failures: dict[str, int]  # the JWKS cluster's TLS verification failures, by kind


def first_answer(certificate: Certificate, directory: Path) -> Answer:
    """Run Envoy against a JWKS server presenting `certificate`, and send one request."""
    tokens = TokenFactory()
    with (
        upstream_app() as app,
        JwksServer(certificate, [tokens.key], directory) as jwks,
    ):
        ports = Ports.free(pdp=free_port(), upstream=app.port, jwks=jwks.port)
        config = local_config(ports, CA.write(directory))
        with EnvoyProcess(config, directory, ports.admin) as envoy:
            envoy.wait_ready()
            headers = {"authorization": f"Bearer {tokens.user('1.0', auth_time=1)}"}
            headers |= {"x-forwarded-for": "203.0.113.25", "x-request-id": "jwks-tls-1"}
            response = send(ports.listener, "/notebooks/1", "workspace.contoso.example", headers)
            return Answer(
                response.status,
                envoy.log_record("jwks-tls-1")["details"],
                jwks.fetches(),
                {k: envoy.stat(f"cluster.entra_jwks.ssl.{k}") for k in FAILURES},
            )


FAILURES = ("fail_verify_error", "fail_verify_san")


def test_a_jwks_server_the_ca_vouches_for_is_trusted(tmp_path: Path) -> None:
    """The control: CA-signed for the issuer host, keys fetched, the token passes jwt_authn."""
    answer = first_answer(jwks_certificate(CA), tmp_path)
    assert (answer.status, answer.details) == (403, "ext_authz_error")  # on to ext_authz
    assert answer.fetches == 2  # the v1.0 and the v2.0 keys
    assert answer.failures == dict.fromkeys(FAILURES, 0)


@pytest.mark.parametrize(
    ("certificate", "failure"),
    [
        pytest.param(self_signed(OTHER_NAME), "fail_verify_error", id="self-signed-other-name"),
        pytest.param(
            self_signed(ISSUER_HOST, "localhost"), "fail_verify_error", id="self-signed-our-name"
        ),
        pytest.param(CA.issue(OTHER_NAME), "fail_verify_san", id="our-ca-other-name"),
    ],
)
def test_an_unverifiable_jwks_server_is_refused(
    tmp_path: Path, certificate: Certificate, failure: str
) -> None:
    """Envoy refuses the TLS handshake; no key is fetched; the token is refused (401)."""
    answer = first_answer(certificate, tmp_path)
    assert answer.status == 401
    assert answer.details.startswith("jwt_authn_access_denied"), answer.details
    assert answer.fetches == 0
    assert answer.failures[failure] > 0
