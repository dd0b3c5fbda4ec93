"""Server credentials for the gRPC port: plaintext, TLS, or mutual TLS.

With --tls-cert and --tls-key the port speaks TLS; with --client-ca as well, grpc requires
and verifies a client certificate signed by that CA during the handshake, so a caller
without one gets no RPC at all (not even health). Files are read once at start-up: rotate
certificates by restarting (a rolling restart under Kubernetes).
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from pdp.errors import StartupError


def server_credentials(
    cert: Path | None, key: Path | None, client_ca: Path | None
) -> grpc.ServerCredentials | None:
    """The credentials for these PEM files; None for plaintext. Raises StartupError naming one."""
    if cert is None or key is None:
        return None
    chain = _read_pem(cert, "--tls-cert")
    private_key = _read_pem(key, "--tls-key")
    _check_pair(cert, key)
    if client_ca is None:
        return grpc.ssl_server_credentials([(private_key, chain)])
    roots = _read_pem(client_ca, "--client-ca")
    try:
        ssl.create_default_context().load_verify_locations(cafile=client_ca)
    except ssl.SSLError as exc:
        raise StartupError(f"--client-ca {client_ca}: not a CA certificate: {exc}") from None
    return grpc.ssl_server_credentials(
        [(private_key, chain)], root_certificates=roots, require_client_auth=True
    )


def _check_pair(cert: Path, key: Path) -> None:
    """Refuse a chain or key OpenSSL cannot load, or that do not match, naming the files.

    grpc would only fail to bind, logging its own lines; an encrypted key is refused too
    (grpc cannot use one), never prompted for.
    """
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=b"")
    except ssl.SSLError as exc:
        reason = exc.reason or exc.strerror or str(exc)
        raise StartupError(
            f"--tls-cert {cert}, --tls-key {key}: not a certificate chain and its key: {reason}"
        ) from None


def _read_pem(path: Path, flag: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StartupError(f"{flag} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data:
        raise StartupError(f"{flag} {path}: not a PEM file")
    return data
