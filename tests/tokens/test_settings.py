"""The gateway config's `tokens` section: Entra defaults from the tenant, bad values by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pdp.gateway.config import GatewayConfigError, parse_gateway_config
from pdp.tokens.settings import REQUIRED_CLAIMS

TENANT = "7c0e5a1b-1111-4a2b-8c3d-000000000001"


def parse(tokens: Any, tenant: str = TENANT) -> Any:
    """The TokenSettings of a config with this `tokens` section (and tenant)."""
    identity = {"jwt": {"tenant_id": tenant}} if tenant else {}
    return parse_gateway_config({"identity": identity, "tokens": tokens}).tokens


def test_no_tokens_section_means_pdp_verifies_no_tokens() -> None:
    """Without the section the gateway verifies tokens (jwt_authn); pdp does not."""
    assert parse_gateway_config({}).tokens is None


def test_the_tenant_and_an_audience_are_enough_for_entra() -> None:
    """Issuers (v2.0 and v1) and the JWKS default to the tenant's; RS256, 60 s skew."""
    settings = parse({"audiences": ["api://contoso-workspace"]})
    assert settings.issuers == (
        f"https://login.microsoftonline.com/{TENANT}/v2.0",
        f"https://sts.windows.net/{TENANT}/",
    )
    assert settings.jwks_uri == f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
    assert settings.tenant_id == TENANT
    assert settings.algorithms == ("RS256",)
    assert settings.clock_skew_s == 60
    assert settings.required_claims == REQUIRED_CLAIMS
    assert (settings.jwks_refresh_s, settings.jwks_min_refresh_s) == (3600, 300)


def test_every_setting_is_read(tmp_path: Path) -> None:
    """Explicit issuers, keys, CA file, algorithms, skew, extra claims and bounds."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-", encoding="utf-8")
    settings = parse(
        {
            "audiences": "c0ffee00-0000-4000-8000-00000000c11e",
            "issuers": ["https://idp.example/"],
            "jwks_uri": "https://idp.example/keys",
            "jwks_ca_file": str(ca),
            "algorithms": ["RS256", "ES256"],
            "clock_skew_s": 30,
            "required_claims": ["oid"],
            "jwks_refresh_s": 600,
            "jwks_min_refresh_s": 60,
            "jwks_max_age_s": 7200,
            "jwks_timeout_s": 2,
            "jwks_max_bytes": 65536,
            "jwks_max_keys": 20,
        },
        tenant="",
    )
    assert settings.audiences == ("c0ffee00-0000-4000-8000-00000000c11e",)
    assert settings.issuers == ("https://idp.example/",)
    assert settings.jwks_ca_file == ca
    assert settings.algorithms == ("RS256", "ES256")
    assert settings.required_claims == (*REQUIRED_CLAIMS, "oid")
    assert settings.tenant_id == ""
    assert (settings.jwks_max_bytes, settings.jwks_max_keys) == (65536, 20)


@pytest.mark.parametrize(
    ("tokens", "tenant", "message"),
    [
        ({}, TENANT, "tokens.audiences: name the API's audience"),
        ({"audiences": ["a"]}, "", "tokens: set issuers and jwks_uri"),
        (
            {"audiences": ["a"], "jwks_uri": "http://idp.example/keys"},
            TENANT,
            "tokens.jwks_uri: must be an https URL",
        ),
        ({"audiences": ["a"], "algorithms": ["HS256"]}, TENANT, "tokens.algorithms: 'HS256'"),
        ({"audiences": ["a"], "algorithms": ["none"]}, TENANT, "tokens.algorithms: 'none'"),
        ({"audiences": ["a"], "clock_skew_s": 900}, TENANT, "tokens.clock_skew_s: at most 300"),
        ({"audiences": ["a"], "jwks_ca_file": "/nowhere.pem"}, TENANT, "no such file"),
        ({"audiences": ["a"], "jwks_min_refresh_s": 0}, TENANT, "at least 1"),
        ({"audiences": ["a"], "jwks_max_age_s": 60}, TENANT, "longer than jwks_refresh_s"),
        (
            {"audiences": ["a"], "jwks_uri_typo": "x"},
            TENANT,
            "unknown setting: tokens.jwks_uri_typo",
        ),
        (["a"], TENANT, "tokens: must be a mapping"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(tokens: Any, tenant: str, message: str) -> None:
    """No HMAC or none, no plain http, bounded skew, unknown keys: refused with the key path."""
    with pytest.raises(GatewayConfigError, match=message.replace("(", r"\(")):
        parse(tokens, tenant)
