"""The Entra stand-ins of tests/entra_tokens.py: TLS trust, key endpoints, token shapes."""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from entra_tokens import (
    API_APP_ID_URI,
    API_CLIENT_ID,
    TENANT,
    CertificateAuthority,
    JwksServer,
    SigningKey,
    TokenFactory,
    app_claims,
    jwks_certificate,
    jwks_path,
    self_signed,
    user_claims,
    v1_issuer,
    v2_issuer,
)


def _part(token: str, index: int) -> dict[str, Any]:
    raw = token.split(".")[index]
    parsed: dict[str, Any] = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    return parsed


def _get(url: str, cafile: Path) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(cafile))
    with urllib.request.urlopen(url, context=context, timeout=10) as reply:  # noqa: S310 - https
        parsed: dict[str, Any] = json.loads(reply.read())
        return parsed


def test_jwks_server_is_trusted_through_the_test_ca_and_its_keys_verify_tokens(
    tmp_path: Path,
) -> None:
    """A client trusting the CA fetches the v2.0 keys; the published key verifies a token."""
    ca = CertificateAuthority()
    factory = TokenFactory()
    with JwksServer(jwks_certificate(ca), [factory.key], tmp_path) as server:
        jwks = _get(server.url(jwks_path("2.0")), ca.write(tmp_path))
        assert server.fetches() == 1
    [jwk] = jwks["keys"]
    token = factory.user("2.0", groups=["g1"])
    assert _part(token, 0) == {"typ": "JWT", "alg": "RS256", "kid": jwk["kid"]}
    n, e = (int.from_bytes(base64.urlsafe_b64decode(jwk[k] + "=="), "big") for k in ("n", "e"))
    public = rsa.RSAPublicNumbers(e, n).public_key()
    head, body, signature = token.split(".")
    public.verify(  # raises InvalidSignature when the token is not signed by that key
        base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)),
        f"{head}.{body}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_a_self_signed_jwks_server_is_refused_by_a_client_trusting_the_ca(tmp_path: Path) -> None:
    """The stand-in for a rogue key server: no CA the client trusts signed its certificate."""
    ca = CertificateAuthority()
    with (
        JwksServer(self_signed("keys.attacker.example"), [SigningKey()], tmp_path) as server,
        pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        _get(server.url(jwks_path("2.0")), ca.write(tmp_path))


def test_metadata_and_common_keys_are_shaped_like_entra(tmp_path: Path) -> None:
    """openid-configuration per version, and common keys with a templated issuer."""
    ca = CertificateAuthority()
    with JwksServer(jwks_certificate(ca), [SigningKey("k1")], tmp_path) as server:
        cafile = ca.write(tmp_path)
        v1 = _get(server.url(f"/{TENANT}/.well-known/openid-configuration"), cafile)
        v2 = _get(server.url(f"/{TENANT}/v2.0/.well-known/openid-configuration"), cafile)
        common = _get(server.url("/common/discovery/v2.0/keys"), cafile)
    assert v1["issuer"] == v1_issuer()
    assert v1["jwks_uri"].endswith(f"/{TENANT}/discovery/keys")
    assert v2["issuer"] == v2_issuer()
    assert v2["jwks_uri"].endswith("/discovery/v2.0/keys")
    assert common["keys"][0]["issuer"] == "https://login.microsoftonline.com/{tenantid}/v2.0"


def test_token_versions_differ_as_entra_documents() -> None:
    """v1.0: sts issuer, App ID URI audience, appid and amr; v2.0: client id audience, no amr."""
    v1 = user_claims("1.0", amr=["pwd", "mfa"], groups=["g"], auth_time=1)
    v2 = user_claims("2.0", amr=["pwd", "mfa"], groups=["g"], auth_time=1)
    assert (v1["iss"], v1["aud"], v1["ver"], v1["amr"]) == (
        v1_issuer(),
        API_APP_ID_URI,
        "1.0",
        ["pwd", "mfa"],
    )
    assert (v2["iss"], v2["aud"], v2["ver"]) == (v2_issuer(), API_CLIENT_ID, "2.0")
    assert "amr" not in v2
    assert "acr" not in v2
    assert "appid" not in v2
    assert v2["azp"]
    assert "auth_time" not in user_claims("2.0")
    assert "groups" not in user_claims("2.0")
    overage = user_claims("1.0", groups=["g"], overage=True)
    assert "groups" not in overage
    assert overage["_claim_names"] == {"groups": "src1"}
    app = app_claims("1.0", idtyp=False)
    assert "scp" not in app
    assert "idtyp" not in app
    assert app["appid"]
    assert app["roles"]
    assert app_claims("2.0")["idtyp"] == "app"
    assert _part(TokenFactory().mint(v1), 0)["x5t"]
