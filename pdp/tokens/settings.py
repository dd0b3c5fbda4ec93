"""TokenSettings: whose tokens pdp accepts and how it keeps their issuer's keys.

The gateway config's `tokens` section becomes one `TokenSettings` (`pdp.gateway.config`
reads the YAML). For Entra ID, naming the tenant (`identity.jwt.tenant_id`) and the API's
audiences is enough: the issuers default to the tenant's v2.0 and v1 issuers and the JWKS to
the tenant's v2.0 keys, as Microsoft's token validation guidance says (a v1 and a v2 token of
one tenant are signed by the same keys). Every bound has a default: keys are refreshed in
the background hourly, on demand for an unknown `kid` at most every five minutes, and
dropped a day after the last successful fetch, so a JWKS outage fails closed only then.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

# Asymmetric JWS algorithms only: an HMAC secret or `none` can never verify a token here.
ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
# Claims every token must carry; `tid` too when a tenant is configured.
REQUIRED_CLAIMS: Final = ("exp", "iat", "nbf", "iss", "aud")
MAX_CLOCK_SKEW_S: Final = 300.0
MAX_TOKEN_BYTES: Final = 32_768  # the longest Authorization header the HTTP endpoint reads


def entra_issuers(tenant_id: str) -> tuple[str, ...]:
    """The v2.0 and v1 issuers of an Entra tenant's access tokens."""
    return (
        f"https://login.microsoftonline.com/{tenant_id}/v2.0",
        f"https://sts.windows.net/{tenant_id}/",
    )


def entra_jwks_uri(tenant_id: str) -> str:
    """The JWKS of an Entra tenant (its v2.0 discovery keys)."""
    return f"https://login.microsoftonline.com/{tenant_id}/discovery/v2.0/keys"


@dataclass(frozen=True, slots=True)
class TokenSettings:
    """What a bearer token must be for pdp to accept it, and where the signing keys are."""

    issuers: tuple[str, ...]  # `iss` must be exactly one of these
    audiences: tuple[str, ...]  # `aud` must be (or contain) one of these
    jwks_uri: str  # https only
    tenant_id: str = ""  # when set, `tid` must be this tenant (lower-case)
    jwks_ca_file: Path | None = None  # CA bundle for the JWKS host; None: the system's
    algorithms: tuple[str, ...] = ("RS256",)
    clock_skew_s: float = 60.0  # allowed on exp, nbf and iat
    required_claims: tuple[str, ...] = REQUIRED_CLAIMS
    jwks_refresh_s: float = 3600.0  # background refresh period
    jwks_min_refresh_s: float = 300.0  # on-demand refreshes (unknown kid) at most this often
    jwks_max_age_s: float = 86_400.0  # keys unconfirmed for this long are dropped
    jwks_timeout_s: float = 5.0  # one fetch, connection to last byte
    jwks_max_bytes: int = 524_288  # a larger JWKS document is refused
    jwks_max_keys: int = 100  # a JWKS with more keys is refused
