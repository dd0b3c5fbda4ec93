"""Mutual TLS on the gRPC port, and the limits: concurrent calls, message size, deadlines."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pdp_process import PdpProcess, requests_of

from pdp.limits import STREAMS
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

Key = ec.EllipticCurvePrivateKey


def _pem(key: Key, cert: x509.Certificate) -> tuple[bytes, bytes]:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def issue(
    name: str,
    issuer: tuple[Key, x509.Certificate] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> tuple[Key, x509.Certificate]:
    """A P-256 key and a certificate for `name`, signed by `issuer` (self-signed if None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer_key, issuer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    elif not ca:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return key, builder.sign(signer_key, hashes.SHA256())


def test_mutual_tls_answers_a_client_with_a_certificate_and_refuses_others(
    policy_dir: Path, tmp_path: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """With --client-ca only callers with a certificate that CA signed get any answer."""
    ca = issue("pdp test CA", None, ca=True)
    other_ca = issue("someone else's CA", None, ca=True)
    server_key, server_cert = _pem(*issue("pdp", ca, server=True))
    client_key, client_cert = _pem(*issue("gateway", ca))
    stranger_key, stranger_cert = _pem(*issue("stranger", other_ca))
    ca_pem = _pem(*ca)[1]
    for name, data in {
        "server.key": server_key,
        "server.pem": server_cert,
        "ca.pem": ca_pem,
    }.items():
        (tmp_path / name).write_bytes(data)
    tls = ["--tls-cert", str(tmp_path / "server.pem"), "--tls-key", str(tmp_path / "server.key")]
    request = requests_of(sign_ins)["challenge_mfa"]

    def call(credentials: grpc.ChannelCredentials | None) -> Any:
        if credentials is None:
            ch = grpc.insecure_channel(pdp.address)
        else:
            ch = grpc.secure_channel(pdp.address, credentials)
        with ch:
            return pdp_pb2_grpc.PolicyDecisionServiceStub(ch).Evaluate(request, timeout=5)

    with PdpProcess(policy_dir, *tls, "--client-ca", str(tmp_path / "ca.pem")) as pdp:
        pdp.wait_ready()
        assert pdp.wait_for("serving")["tls"] == "mutual"
        trusted = grpc.ssl_channel_credentials(ca_pem, client_key, client_cert)
        assert call(trusted).decision == pb.DECISION_CHALLENGE
        refused = {
            "no client certificate": grpc.ssl_channel_credentials(ca_pem),
            "another CA's certificate": grpc.ssl_channel_credentials(
                ca_pem, stranger_key, stranger_cert
            ),
            "plaintext": None,
        }
        for what, credentials in refused.items():
            with pytest.raises(grpc.RpcError) as failed:
                call(credentials)
            assert failed.value.code() is grpc.StatusCode.UNAVAILABLE, what
        no_cert = grpc.ssl_channel_credentials(ca_pem)
        with grpc.secure_channel(pdp.address, no_cert) as ch, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert pdp.stop() == 0


def test_idle_watch_streams_never_starve_decisions_and_big_messages_are_refused(
    policy_dir: Path, sign_ins: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Streams past their own budget get RESOURCE_EXHAUSTED; decisions and health still answer.

    A message over --max-message-bytes is refused by pdp (RESOURCE_EXHAUSTED), and audited.
    """
    request = requests_of(sign_ins)["challenge_mfa"]
    audit = tmp_path / "audit.jsonl"
    args = ("--max-concurrent-rpcs", "2", "--max-message-bytes", "4096", "--audit-log", str(audit))

    async def scenario(address: str) -> None:
        async with grpc.aio.insecure_channel(address) as ch:
            health = health_pb2_grpc.HealthStub(ch)
            streams = [health.Watch(health_pb2.HealthCheckRequest()) for _ in range(STREAMS)]
            for stream in streams:  # each open stream has sent its first status
                assert (await stream.read()).status == health_pb2.HealthCheckResponse.SERVING
            extra = health.Watch(health_pb2.HealthCheckRequest())
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await extra.read()
            assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
            for _ in range(5):  # the decision budget is untouched by the streams
                assert (await stub.Evaluate(request, timeout=10)).decision == (
                    pb.DECISION_CHALLENGE
                )
            check = await health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert check.status == health_pb2.HealthCheckResponse.SERVING
            big = pb.EvaluateRequest()
            big.CopyFrom(request)
            big.request_id = "too-big"
            big.subject.group_ids.extend(f"{i:08d}-0000-0000-0000-000000000000" for i in range(200))
            with pytest.raises(grpc.aio.AioRpcError) as too_big:
                await stub.Evaluate(big, timeout=10)
            assert too_big.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            for stream in streams:
                stream.cancel()

    with PdpProcess(policy_dir, *args) as pdp:
        asyncio.run(scenario(pdp.wait_ready().address))
        assert pdp.stop() == 0
    records = {r["id"]: r for r in map(json.loads, audit.read_text("utf-8").splitlines())}
    assert records["too-big"]["status"] == {"errorCode": 8, "failureReason": "resource_exhausted"}
