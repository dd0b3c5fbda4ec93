"""The gateway config: documented defaults, and every bad setting named by its key path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pdp.gateway.config import (
    DEFAULT_AMR,
    GatewayConfig,
    GatewayConfigError,
    Source,
    load_gateway_config,
    parse_gateway_config,
)


def test_an_empty_file_is_the_default_config(tmp_path: Path) -> None:
    """No settings at all: the defaults README documents."""
    path = tmp_path / "gateway.yaml"
    path.write_text("", encoding="utf-8")
    config = load_gateway_config(path)
    assert config == GatewayConfig()
    assert config.network.trusted_hops == 0
    assert config.application.context_extension == "pdp_application_id"
    assert config.identity.jwt.metadata_namespace == "envoy.filters.http.jwt_authn"
    assert config.identity.jwt.payload_in_metadata == "jwt_payload"
    assert config.identity.jwt.user_id_claims == ("oid", "sub")
    assert config.identity.require is True
    assert not config.identity.headers.enabled
    assert config.identity.jwt.amr == DEFAULT_AMR


def test_sources_and_amr_overrides_are_read() -> None:
    """Header and metadata sources parse; an amr entry replaces only its own value."""
    config = parse_gateway_config(
        {
            "device": {"id": "header:X-Device-Id", "compliant": "metadata:a.b:c:compliant"},
            "identity": {"jwt": {"amr": {"wia": ["windowsHelloForBusiness"], "pwd": "Password"}}},
        }
    )
    assert config.device.id == Source("header", "x-device-id")
    assert config.device.compliant == Source("metadata", "compliant", "a.b:c")
    assert config.identity.jwt.amr["wia"] == ("windowsHelloForBusiness",)
    assert config.identity.jwt.amr["pwd"] == ("password",)
    assert config.identity.jwt.amr["fido"] == ("fido2",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"netwrok": {}}, "unknown setting: netwrok"),
        ({"network": {"trusted_hop": 1}}, "unknown setting: network.trusted_hop"),
        ({"network": {"trusted_hops": -1}}, "network.trusted_hops: must be an integer >= 0"),
        ({"network": {"trusted_proxies": ["10.0.0.0/33"]}}, "network.trusted_proxies: not a CIDR"),
        ({"version": 2}, "version: only version 1"),
        ({"device": {"id": "cookie:device"}}, "device.id: must be header:NAME or metadata:"),
        ({"identity": {"jwt": {"amr": {"pwd": ["passwd"]}}}}, "identity.jwt.amr.pwd: 'passwd'"),
        ({"identity": {"jwt": {"groups_overage": "maybe"}}}, "identity.jwt.groups_overage"),
        ({"identity": {"require": "yes"}}, "identity.require: must be true or false"),
        ({"identity": {"headers": {"user_id": "x user"}}}, "identity.headers.user_id: not an HTTP"),
        ({"client_app": {"browser_user_agent": "("}}, "client_app.browser_user_agent: bad regular"),
        ({"application": {"hosts": ["a"]}}, "application.hosts: must be a mapping"),
        (["network"], "the config: must be a mapping"),
    ],
)
def test_bad_settings_are_named(data: Any, message: str) -> None:
    """Each invalid or unknown setting is an error naming its key path."""
    with pytest.raises(GatewayConfigError, match=message.replace("(", r"\(")):
        parse_gateway_config(data)


def test_the_file_name_prefixes_errors(tmp_path: Path) -> None:
    """Errors from a file name the file; a YAML syntax error is a config error too."""
    path = tmp_path / "gateway.yaml"
    path.write_text("network: {trusted_hops: x}\n", encoding="utf-8")
    with pytest.raises(GatewayConfigError, match=r"gateway\.yaml: network\.trusted_hops"):
        load_gateway_config(path)
    path.write_text("network: [\n", encoding="utf-8")
    with pytest.raises(GatewayConfigError, match="not YAML"):
        load_gateway_config(path)
