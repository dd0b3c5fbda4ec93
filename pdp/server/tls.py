"""Server credentials for the gRPC port: plaintext, TLS, or mutual TLS.

With --tls-cert and --tls-key the port speaks TLS; with --client-ca as well, grpc requires
and verifies a client certificate signed by that CA during the handshake, so a caller
without one gets no RPC at all (not even health). Files are read once at start-up: rotate
certificates by restarting (a rolling restart under Kubernetes).
"""

from __future__ import annotations

from pathlib import Path

import grpc

from pdp.config import Settings


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """The credentials `settings` ask for; None for plaintext. Raises OSError naming a file."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    chain = _read_pem(settings.tls_cert, "--tls-cert")
    key = _read_pem(settings.tls_key, "--tls-key")
    if settings.client_ca is None:
        return grpc.ssl_server_credentials([(key, chain)])
    roots = _read_pem(settings.client_ca, "--client-ca")
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=roots, require_client_auth=True
    )


def _read_pem(path: Path, flag: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise OSError(f"{flag} {path}: {exc.strerror or exc}") from exc
    if b"-----BEGIN " not in data:
        raise OSError(f"{flag} {path}: not a PEM file")
    return data
