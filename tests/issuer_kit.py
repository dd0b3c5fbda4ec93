"""An Entra issuer for pdp's own token verification: keys, a JWKS over TLS that can misbehave.

Built on `entra_tokens` (the team's Entra stand-ins). `Issuer` bundles a test CA (its
certificate written to a folder, for `tokens.jwks_ca_file`), a JWKS server over TLS and a
token factory; `FaultyJwks` is that server with the faults the verification tests need: a
failing endpoint (404), a slow one, or a document of the test's choosing. `token` signs a
user token with claims changed or removed (`None` removes a claim).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from entra_tokens import (
    API_APP_ID_URI,
    API_CLIENT_ID,
    TENANT,
    CertificateAuthority,
    JwksServer,
    SigningKey,
    Version,
    jwks_certificate,
    jwks_path,
    user_claims,
)

from pdp.tokens.settings import TokenSettings, entra_issuers

AUDIENCES = (API_CLIENT_ID, API_APP_ID_URI)


class FaultyJwks(JwksServer):
    """A JwksServer that can fail (404), answer slowly, or serve a given document."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failing = False
        self.delay_s = 0.0
        self.override: dict[str, Any] | None = None

    def document(self, path: str) -> dict[str, Any] | None:
        """The real document, unless failing (None: 404) or overridden."""
        if self.failing:
            return None
        if self.override is not None:
            return self.override
        return super().document(path)

    def _record(self, path: str) -> None:
        super()._record(path)
        time.sleep(self.delay_s)


class Issuer:
    """The test tenant's issuer: a CA file, a JWKS server over TLS, and its current key."""

    def __init__(self, folder: Path, keys: list[SigningKey]) -> None:
        self.ca = CertificateAuthority()
        self.ca_file = self.ca.write(folder)
        self.jwks = FaultyJwks(jwks_certificate(self.ca), keys, folder).start()
        self.key = keys[0]
        self.jwks_uri = self.jwks.url(jwks_path("2.0"))

    def settings(self, **changes: Any) -> TokenSettings:
        """TokenSettings accepting the tenant's tokens for the API, keys from this JWKS."""
        values: dict[str, Any] = {
            "issuers": entra_issuers(TENANT),
            "audiences": AUDIENCES,
            "jwks_uri": self.jwks_uri,
            "tenant_id": TENANT,
            "jwks_ca_file": self.ca_file,
            **changes,
        }
        return TokenSettings(**values)

    def close(self) -> None:
        """Stop the JWKS server."""
        self.jwks.close()


def token(key: SigningKey, version: Version = "2.0", **changes: Any) -> str:
    """A user token of `version` signed by `key`; a change of None removes that claim.

    The token says when the user signed in (`auth_time`, ten minutes before `now`), as the
    example's app registration is configured to; pass `auth_time=None` for one without.
    """
    kwargs = {k: v for k, v in changes.items() if k in _USER_CLAIMS_ARGS}
    if "auth_time" not in changes:
        kwargs["auth_time"] = int(changes.get("now") or time.time()) - 600
    claims = user_claims(version, **kwargs)
    for name, value in changes.items():
        if name in _USER_CLAIMS_ARGS:
            continue
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return key.sign(claims, version)


_USER_CLAIMS_ARGS = frozenset(
    {"oid", "groups", "wids", "amr", "auth_time", "acrs", "idtyp", "overage", "tenant"}
    | {"client_id", "now", "lifetime_s"}
)
