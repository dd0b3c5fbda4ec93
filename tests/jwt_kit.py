"""Entra-shaped tokens, a test CA, and a JWKS server over TLS, for the token verification tests.

`TestCa` issues server certificates for 127.0.0.1 / localhost; `JwksServer` serves a JWKS
document over TLS on a loopback port from a thread (so async tests and subprocess tests use
it alike), counts its fetches, and can be told to fail or to serve other keys; `SigningKey`
signs tokens with an RSA key under a `kid`; `entra_claims` is the payload of an Entra v2.0
access token for a user of the test tenant.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import ipaddress
import json
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TENANT = "7c0e5a1b-1111-4a2b-8c3d-000000000001"
OTHER_TENANT = "0be0be00-2222-4a2b-8c3d-000000000002"
AUDIENCE = "api://contoso-workspace"
ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"


def issuer_of(tenant: str) -> str:
    """The v2.0 issuer of an Entra tenant."""
    return f"https://login.microsoftonline.com/{tenant}/v2.0"


class TestCa:
    """A throwaway CA whose certificates name 127.0.0.1 and localhost."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, folder: Path, name: str = "pdp test CA") -> None:
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_file = folder / f"{name.replace(' ', '-')}.pem"
        self.cert_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str) -> tuple[Path, Path]:
        """A server certificate for 127.0.0.1 and localhost: (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_file, key_file = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_file, key_file


@functools.cache
def _rsa_key(index: int) -> rsa.RSAPrivateKey:
    del index  # one key per index, generated once per test run
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class SigningKey:
    """An RSA signing key under a kid, as an Entra tenant's JWKS lists it (no `alg`)."""

    def __init__(self, kid: str, index: int = 0) -> None:
        self.kid = kid
        self.private = _rsa_key(index)

    def jwk(self) -> dict[str, Any]:
        """The public key as a JWK, shaped like Entra's (kty, use, kid, n, e; no alg)."""
        public = self.private.public_key()
        data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(public))
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": data["n"], "e": data["e"]}

    def sign(self, claims: dict[str, Any], *, alg: str = "RS256", **header: Any) -> str:
        """A JWT of `claims` signed with this key (header kid = this kid unless given)."""
        fields = {"typ": "JWT", "kid": self.kid, **header}
        fields = {name: value for name, value in fields.items() if value is not None}
        return jwt.encode(claims, self.private, algorithm=alg, headers=fields)


def entra_claims(
    *,
    tenant: str = TENANT,
    audience: str = AUDIENCE,
    lifetime_s: float = 3600,
    issued_ago_s: float = 60,
    oid: str = "0a0da000-0000-4000-8000-00000000ada1",
    **extra: Any,
) -> dict[str, Any]:
    """The payload of an Entra v2.0 access token for a user of `tenant`."""
    now = int(time.time())
    issued = int(now - issued_ago_s)
    claims = {
        "aud": audience,
        "iss": issuer_of(tenant),
        "iat": issued,
        "nbf": issued,
        "exp": int(issued + lifetime_s),
        "tid": tenant,
        "oid": oid,
        "sub": "m7bR2n-ada-pairwise-subject",
        "azp": "c0ffee00-0000-4000-8000-00000000c11e",
        "ver": "2.0",
        "uti": uuid.uuid4().hex[:22],
        "scp": "Workspace.ReadWrite",
    }
    claims.update(extra)
    return {k: v for k, v in claims.items() if v is not None}


class JwksServer:
    """A JWKS document served over TLS on 127.0.0.1 from a thread; `fetches` counts GETs."""

    def __init__(self, ca: TestCa, keys: list[SigningKey]) -> None:
        self.keys = list(keys)
        self.status = 200
        self.body: bytes | None = None  # served instead of the keys when set
        self.delay_s = 0.0
        self.fetches = 0
        cert_file, key_file = ca.issue("jwks")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.fetches += 1
                time.sleep(server.delay_s)
                body = server.document()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self.uri = f"https://127.0.0.1:{self.port}/{TENANT}/discovery/v2.0/keys"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def document(self) -> bytes:
        """What a GET answers."""
        if self.body is not None:
            return self.body
        return json.dumps({"keys": [key.jwk() for key in self.keys]}).encode()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


@contextmanager
def jwks_server(ca: TestCa, keys: list[SigningKey]) -> Iterator[JwksServer]:
    """A running JwksServer, stopped afterwards."""
    server = JwksServer(ca, keys)
    try:
        yield server
    finally:
        server.close()
