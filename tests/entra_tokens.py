"""Entra ID stand-ins for tests: a test CA, a JWKS server over TLS, and Entra-shaped tokens.

Any test that needs a token a real gateway would accept uses this module, whatever the
gateway (Envoy's jwt_authn, pdp's own verification behind an HTTP forward-auth proxy):

- `CertificateAuthority` makes a test CA and server certificates it signs; `self_signed`
  makes a certificate no CA vouches for (for "the gateway must refuse this" tests).
- `SigningKey` is an RSA key with a `kid`, as Entra publishes them: its JWK (with `x5t`)
  and RS256 signatures, made with `cryptography` alone.
- `JwksServer` serves Entra's key and metadata endpoints over HTTPS on 127.0.0.1:
  `/{tenant}/discovery/keys` (v1.0), `/{tenant}/discovery/v2.0/keys` (v2.0), the same under
  `common`, and `/{tenant}[/v2.0]/.well-known/openid-configuration`. It records the paths
  it served; its certificate names `login.microsoftonline.com`, `localhost` and
  `127.0.0.1`, so a client may reach it by name (with an address override) or directly.
- `user_claims` / `app_claims` build access-token payloads shaped like Entra's for either
  token version, and `TokenFactory.mint` signs them (header `kid`, and `x5t` for v1.0).

Claim shapes follow Microsoft's access-token claims reference: v1.0 tokens have issuer
`https://sts.windows.net/{tid}/`, `aud` the App ID URI, `appid`, `amr` and `acr`; v2.0
tokens have issuer `https://login.microsoftonline.com/{tid}/v2.0`, `aud` the API's client
id, `azp`, and no `amr` or `acr`. `auth_time`, `acrs` and `idtyp` are optional claims an
app registration asks for; `groups` is replaced by an overage pointer (`_claim_names`)
above 200 groups. User tokens carry `scp`; app-only tokens carry `roles` and no `scp`.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Version = Literal["1.0", "2.0"]

ISSUER_HOST = "login.microsoftonline.com"
TENANT = "7c0e5a1b-1111-4a2b-8c3d-000000000001"  # the example deployment's tenant
OTHER_TENANT = "e1e1e1e1-2222-4b3c-9d4e-00000000beef"  # someone else's
API_CLIENT_ID = "3a5c7e9f-1b2d-4f6a-8c0e-00000000a9e1"  # the protected API (v2.0 aud)
API_APP_ID_URI = "api://contoso-workspace"  # the same API's App ID URI (v1.0 aud)
CLIENT_APP_ID = "c0ffee00-0000-4000-8000-00000000c11e"  # the workspace's web client
OVERAGE_SOURCE = "src1"


def v1_issuer(tenant: str = TENANT) -> str:
    """The `iss` of a v1.0 access token."""
    return f"https://sts.windows.net/{tenant}/"


def v2_issuer(tenant: str = TENANT) -> str:
    """The `iss` of a v2.0 access token."""
    return f"https://{ISSUER_HOST}/{tenant}/v2.0"


def issuer(version: Version, tenant: str = TENANT) -> str:
    """The `iss` of an access token of `version`."""
    return v1_issuer(tenant) if version == "1.0" else v2_issuer(tenant)


def jwks_path(version: Version, tenant: str = TENANT) -> str:
    """The path of the JWKS a token of `version` is verified against (Entra's metadata)."""
    return f"/{tenant}/discovery/keys" if version == "1.0" else f"/{tenant}/discovery/v2.0/keys"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


# --- certificates ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificate:
    """A certificate and its private key, in PEM."""

    cert_pem: bytes
    key_pem: bytes

    def write(self, directory: Path, name: str) -> tuple[Path, Path]:
        """Write `name.crt` and `name.key` into `directory`; their paths."""
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        cert.write_bytes(self.cert_pem)
        key.write_bytes(self.key_pem)
        key.chmod(0o600)
        return cert, key


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _names(
    dns_names: tuple[str, ...], ips: tuple[str, ...], uris: tuple[str, ...] = ()
) -> x509.SubjectAlternativeName:
    general: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    general += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    general += [x509.UniformResourceIdentifier(u) for u in uris]
    return x509.SubjectAlternativeName(general)


def _builder(subject: x509.Name, issuer_name: x509.Name, key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
    )


def _server_extensions(
    builder: x509.CertificateBuilder,
    dns_names: tuple[str, ...],
    ips: tuple[str, ...],
    uris: tuple[str, ...] = (),
) -> x509.CertificateBuilder:
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if uris:  # a workload identity (SPIFFE) serves and is a client, like Istio's
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return (
        builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_names(dns_names, ips, uris), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )


class CertificateAuthority:
    """A throwaway CA (P-256) that signs server certificates."""

    def __init__(self, name: str = "pdp test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            _builder(self.name, self.name, self._key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM)

    def write(self, directory: Path, name: str = "test-ca") -> Path:
        """Write the CA certificate (a trust bundle of one) as `name.pem`; its path."""
        path = directory / f"{name}.pem"
        path.write_bytes(self.cert_pem)
        return path

    def issue(
        self, *dns_names: str, ips: tuple[str, ...] = ("127.0.0.1",), uris: tuple[str, ...] = ()
    ) -> Certificate:
        """A server certificate for `dns_names` (and `ips`) signed by this CA.

        With `uris` (e.g. a SPIFFE id) it is a workload certificate, for client use too.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        common_name = dns_names[0] if dns_names else uris[0].rsplit("/", 1)[-1]
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        cert = _server_extensions(_builder(subject, self.name, key), dns_names, ips, uris).sign(
            self._key, hashes.SHA256()
        )
        return Certificate(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def self_signed(*dns_names: str, ips: tuple[str, ...] = ("127.0.0.1",)) -> Certificate:
    """A server certificate for `dns_names` that signs itself: no CA vouches for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    cert = _server_extensions(_builder(subject, subject, key), dns_names, ips).sign(
        key, hashes.SHA256()
    )
    return Certificate(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def jwks_certificate(ca: CertificateAuthority) -> Certificate:
    """The JWKS server's certificate: Entra's host name, localhost and 127.0.0.1, by `ca`."""
    return ca.issue(ISSUER_HOST, "localhost")


# --- signing keys and tokens -------------------------------------------------------------


class SigningKey:
    """An RSA-2048 signing key as Entra publishes one: `kid`, `x5t`, and its JWK."""

    def __init__(self, kid: str | None = None) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = kid or _b64url(uuid.uuid4().bytes)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "accounts.accesscontrol")])
        cert = _builder(name, name, self._key).sign(self._key, hashes.SHA256())
        self._der = cert.public_bytes(serialization.Encoding.DER)
        self.x5t = _b64url(hashlib.sha1(self._der).digest())  # noqa: S324 - JWK x5t is SHA-1

    def jwk(self, issuer_value: str | None = None) -> dict[str, Any]:
        """The public key as Entra's JWKS lists it (no `alg`; `issuer` on common keys)."""
        numbers = self._key.public_key().public_numbers()
        jwk: dict[str, Any] = {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.x5t,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
            "x5c": [base64.b64encode(self._der).decode("ascii")],
        }
        if issuer_value is not None:
            jwk["issuer"] = issuer_value
        return jwk

    def public_pem(self) -> bytes:
        """The public key in PEM (for verifiers that take a key rather than a JWKS)."""
        return self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], version: Version = "2.0") -> str:
        """A compact RS256 JWS of `claims` with this key's `kid` (and `x5t` for v1.0)."""
        header: dict[str, Any] = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        if version == "1.0":
            header["x5t"] = self.x5t
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(
            signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"


def _common(version: Version, tenant: str, now: int, lifetime_s: int) -> dict[str, Any]:
    """Claims every access token has, in the shape of `version`."""
    return {
        "aud": API_APP_ID_URI if version == "1.0" else API_CLIENT_ID,
        "iss": issuer(version, tenant),
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime_s,
        "aio": "E2ZgYPj9ux9yc/+4Kuf3e/Lu2XnmAQ==",
        "rh": "0.AAAAG1oOfBERK0qMPQAAAAAAAAE.",
        "tid": tenant,
        "uti": _b64url(uuid.uuid4().bytes[:12]),
        "ver": version,
    }


def user_claims(
    version: Version = "2.0",
    *,
    oid: str = "0a0da000-0000-4000-8000-00000000ada1",
    groups: list[str] | None = None,
    wids: list[str] | None = None,
    amr: list[str] | None = None,
    auth_time: int | None = None,
    acrs: list[str] | None = None,
    idtyp: bool = False,
    overage: bool = False,
    tenant: str = TENANT,
    client_id: str = CLIENT_APP_ID,
    now: int | None = None,
    lifetime_s: int = 3600,
    **extra: Any,
) -> dict[str, Any]:
    """A delegated (user) access token's payload.

    `amr` is dropped for v2.0 tokens (Entra never issues it there); `None` for `groups`,
    `wids`, `auth_time`, `acrs` leaves the claim out, as a token without that optional
    claim (or membership claim configuration) has none. `overage` replaces `groups` with
    Entra's `_claim_names` / `_claim_sources` pointer; `idtyp` adds the optional
    `idtyp: user`.
    """
    now = int(time.time()) if now is None else now
    claims = _common(version, tenant, now, lifetime_s)
    claims.update(
        {
            "oid": oid,
            "sub": _b64url(hashlib.sha256(f"{oid}:{client_id}".encode()).digest()[:24]),
            "name": "Ada Lovelace",
            "scp": "Workspace.ReadWrite",
        }
    )
    if version == "1.0":
        claims.update(
            {
                "appid": client_id,
                "appidacr": "0",
                "acr": "1",
                "upn": "ada@contoso.example",
                "unique_name": "ada@contoso.example",
            }
        )
        if amr is not None:
            claims["amr"] = list(amr)
    else:
        claims.update(
            {"azp": client_id, "azpacr": "0", "preferred_username": "ada@contoso.example"}
        )
    if overage:
        claims["_claim_names"] = {"groups": OVERAGE_SOURCE}
        claims["_claim_sources"] = {
            OVERAGE_SOURCE: {
                "endpoint": f"https://graph.windows.net/{tenant}/users/{oid}/getMemberObjects"
            }
        }
    elif groups is not None:
        claims["groups"] = list(groups)
    if wids is not None:
        claims["wids"] = list(wids)
    if auth_time is not None:
        claims["auth_time"] = auth_time
    if acrs is not None:
        claims["acrs"] = list(acrs)
    if idtyp:
        claims["idtyp"] = "user"
    claims.update(extra)
    return claims


def app_claims(
    version: Version = "2.0",
    *,
    app_id: str = "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001",
    oid: str = "9f9f0000-0000-4000-8000-00000000005b",
    roles: list[str] | None = None,
    idtyp: bool = True,
    tenant: str = TENANT,
    now: int | None = None,
    lifetime_s: int = 3600,
    **extra: Any,
) -> dict[str, Any]:
    """An app-only (client credentials) access token's payload: a service principal.

    `app_id` is the client application's id (`appid` in v1.0, `azp` in v2.0), `oid` and
    `sub` its service principal's object id. `idtyp: app` is added unless `idtyp` is False
    (the optional claim not configured); app-only tokens never carry `scp`.
    """
    now = int(time.time()) if now is None else now
    claims = _common(version, tenant, now, lifetime_s)
    claims.update({"oid": oid, "sub": oid, "roles": list(roles or ["Pipeline.Run"])})
    if version == "1.0":
        claims.update({"appid": app_id, "appidacr": "2", "idp": v1_issuer(tenant)})
    else:
        claims.update({"azp": app_id, "azpacr": "2"})
    if idtyp:
        claims["idtyp"] = "app"
    claims.update(extra)
    return claims


@dataclass
class TokenFactory:
    """Signs Entra-shaped tokens with one key (a JWKS server publishes `key.jwk()`)."""

    key: SigningKey = field(default_factory=SigningKey)

    def mint(self, claims: dict[str, Any]) -> str:
        """`claims` signed, with the header of their `ver`."""
        version: Version = "1.0" if claims.get("ver") == "1.0" else "2.0"
        return self.key.sign(claims, version)

    def user(self, version: Version = "2.0", **kwargs: Any) -> str:
        """A signed user token (`user_claims` arguments)."""
        return self.mint(user_claims(version, **kwargs))

    def app(self, version: Version = "2.0", **kwargs: Any) -> str:
        """A signed app-only token (`app_claims` arguments)."""
        return self.mint(app_claims(version, **kwargs))


# --- the JWKS server ---------------------------------------------------------------------


class JwksServer:
    """Entra's key and metadata endpoints over HTTPS on 127.0.0.1 (a thread; a context manager).

    `keys` is the published key list (replace it to roll keys); `served` lists the paths
    requested, in order, so a test can see whether a gateway fetched the keys at all. A
    TLS handshake the client aborts (it refused the certificate) serves nothing.
    """

    def __init__(
        self, certificate: Certificate, keys: list[SigningKey], directory: Path, port: int = 0
    ) -> None:
        self.keys = keys
        self.served: list[str] = []
        self._lock = threading.Lock()
        cert_path, key_path = certificate.write(directory, f"jwks-{uuid.uuid4().hex[:8]}")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        """`https://host:port/path`."""
        return f"https://{host}:{self.port}{path}"

    def start(self) -> JwksServer:
        """Serve in the background."""
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def fetches(self, path_suffix: str = "keys") -> int:
        """How many requests for a path ending in `path_suffix` were served."""
        with self._lock:
            return sum(1 for p in self.served if p.endswith(path_suffix))

    def document(self, path: str) -> dict[str, Any] | None:
        """The JSON document at `path`, or None for an unknown path."""
        parts = path.split("?", 1)[0].strip("/").split("/")
        if len(parts) >= 3 and parts[1] == "discovery" and parts[-1] == "keys":
            tenant = parts[0]
            common = tenant in ("common", "organizations")
            version: Version = "2.0" if parts[2:3] == ["v2.0"] else "1.0"
            template = issuer(version, "{tenantid}") if common else None
            return {"keys": [k.jwk(template) for k in self.keys]}
        if parts[-2:] == [".well-known", "openid-configuration"]:
            tenant = parts[0]
            version = "2.0" if parts[1:2] == ["v2.0"] else "1.0"
            base = f"https://{ISSUER_HOST}/{tenant}"
            return {
                "issuer": issuer(version, tenant),
                "jwks_uri": f"{base}/discovery/{'v2.0/' if version == '2.0' else ''}keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint": f"{base}/oauth2/{'v2.0/' if version == '2.0' else ''}token",
            }
        return None

    def _record(self, path: str) -> None:
        with self._lock:
            self.served.append(path)


def _handler(server: JwksServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server._record(self.path)
            document = server.document(self.path)
            body = json.dumps(document if document is not None else {"error": "not found"})
            data = body.encode()
            self.send_response(200 if document is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature
            """Quiet: the test reads `served` instead."""

    return Handler
