"""check_in's mapping to a SignInContext, field by field: client IP, identity, signals, app."""

from __future__ import annotations

from typing import Any

import pytest
from envoy_requests import (
    ADA,
    DEV_APP,
    DEV_HOST,
    ENGINEERS,
    HOME,
    LB,
    OFFICE,
    TENANT,
    engineer_claims,
    envoy_check,
)

from pdp.context import SignInContext
from pdp.errors import InvalidRequest
from pdp.gateway.check_in import request_id, to_context
from pdp.gateway.config import GatewayConfig, GatewayConfigError, parse_gateway_config
from pdp.gateway.draft import SignInDraft
from pdp.gateway.identity import read_token
from pdp.gateway.token_memo import TokenMemo


def translate(config: GatewayConfig, request: Any) -> SignInContext:
    """The SignInContext for `request`."""
    return to_context(request, config, SignInDraft("rid-1", 0.0)).context


def with_network(config: GatewayConfig, **network: Any) -> GatewayConfig:
    """The example config with other network settings."""
    return parse_gateway_config(
        {"network": network, "application": {"default": DEV_APP}, "step_up": {}}
    )


@pytest.mark.parametrize(
    ("hops", "appends", "forwarded", "peer", "client"),
    [
        (0, True, OFFICE, LB, LB),  # XFF ignored: the connection is the client
        (1, True, HOME, LB, HOME),  # edge Envoy behind one LB that appended the client
        (1, True, f"{OFFICE}, {HOME}", LB, HOME),  # the client's own entry is never read
        (1, True, HOME, "127.0.0.1", HOME),  # LB on Envoy's host: Envoy appends its host address
        (1, True, HOME, "::1", HOME),
        (2, True, f"{OFFICE}, {HOME}, 10.0.0.9", LB, HOME),  # CDN then LB
        (1, True, "::ffff:192.0.2.200", LB, HOME),  # IPv4-mapped IPv6 counts as IPv4
        (1, True, "2001:db8::7", "2001:db8:ffff::1", "2001:db8::7"),
        (1, False, f"{OFFICE}, {HOME}", LB, HOME),  # sidecar: the peer's XFF, untouched
    ],
)
def test_client_ip_is_the_entry_the_outermost_trusted_proxy_added(
    hops: int, appends: bool, forwarded: str, peer: str, client: str
) -> None:
    """trusted_hops counts XFF entries from the right, after the one the gateway appended."""
    config = with_network(GatewayConfig(), trusted_hops=hops, gateway_appends_xff=appends)
    request = envoy_check(
        host=DEV_HOST,
        client="",
        forwarded=forwarded,
        peer=peer,
        claims=engineer_claims(),
        envoy_hops=hops if appends else None,
    )
    assert translate(config, request).ip_address == client


@pytest.mark.parametrize("forwarded", ["", " , "])
@pytest.mark.parametrize("appends", [True, False])
def test_forwarded_for_shorter_than_the_trusted_hops_is_refused(
    forwarded: str, appends: bool
) -> None:
    """Fewer entries than trusted proxies added is refused, not guessed (Envoy takes the peer)."""
    config = with_network(GatewayConfig(), trusted_hops=1, gateway_appends_xff=appends)
    request = envoy_check(
        host=DEV_HOST,
        client="",
        forwarded=forwarded,
        claims=engineer_claims(),
        envoy_hops=1 if appends else None,
    )
    with pytest.raises(InvalidRequest, match="x-forwarded-for"):
        translate(config, request)


def test_envoy_and_pdp_counting_proxies_differently_is_refused() -> None:
    """Envoy's own client address (xff_num_trusted_hops 2) disagrees with trusted_hops 1."""
    config = with_network(GatewayConfig(), trusted_hops=1, gateway_appends_xff=True)
    request = envoy_check(
        host=DEV_HOST,
        client="",
        forwarded=f"{OFFICE}, {HOME}",
        claims=engineer_claims(),
        envoy_hops=2,
    )
    with pytest.raises(InvalidRequest, match=r"x-envoy-external-address.*disagree"):
        translate(config, request)


def test_envoy_external_address_from_an_untrusted_peer_is_ignored() -> None:
    """A client that bypasses the LB is its own address, whatever headers it sends."""
    config = with_network(
        GatewayConfig(), trusted_hops=1, gateway_appends_xff=False, trusted_proxies=[LB + "/32"]
    )
    request = envoy_check(
        host=DEV_HOST,
        client="",
        forwarded=OFFICE,
        peer=HOME,
        headers={"x-envoy-external-address": OFFICE},
        claims=engineer_claims(),
        envoy_hops=None,
    )
    assert translate(config, request).ip_address == HOME


INGRESS = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"


@pytest.mark.parametrize(
    ("principal", "client"),
    [
        (INGRESS, HOME),  # the ingress gateway's identity: its XFF entry counts
        ("spiffe://cluster.local/ns/tools/sa/debug", "10.8.0.3"),  # another workload
        ("", "10.8.0.3"),  # no mTLS identity at all
    ],
)
def test_a_sidecar_trusts_forwarded_headers_only_from_the_ingress_gateway_identity(
    principal: str, client: str
) -> None:
    """trusted_proxy_principals: XFF counts only from peers with a listed mTLS identity."""
    config = with_network(
        GatewayConfig(),
        trusted_hops=1,
        gateway_appends_xff=False,
        trusted_proxy_principals=[INGRESS],
    )
    request = envoy_check(
        host=DEV_HOST,
        client=HOME,
        peer="10.8.0.3",
        principal=principal,
        claims=engineer_claims(),
        envoy_hops=None,
    )
    assert translate(config, request).ip_address == client


def test_trusted_hops_needs_to_know_whether_the_gateway_appends() -> None:
    """trusted_hops without gateway_appends_xff is a config error naming the setting."""
    with pytest.raises(GatewayConfigError, match=r"network\.gateway_appends_xff: required"):
        parse_gateway_config({"network": {"trusted_hops": 1}})


def test_example_mapping_of_an_engineer(config: GatewayConfig) -> None:
    """The example config maps host, token, posture headers and user agent into a sign-in."""
    claims = engineer_claims(amr=("pwd", "rsa", "mfa"), acrs=["c1", "c3"], wids=["role-1"])
    request = envoy_check(host=DEV_HOST, client=HOME, claims=claims)
    ctx = translate(config, request)
    assert (ctx.user_id, ctx.group_ids, ctx.role_ids) == (ADA, {ENGINEERS}, {"role-1"})
    assert (ctx.application_id, ctx.authentication_contexts) == (DEV_APP, {"c1", "c3"})
    assert ctx.ip_address == HOME
    assert (ctx.device_id, ctx.platform, ctx.compliant, ctx.trust_type) == (
        "laptop-0042",
        "macOS",
        True,
        "AzureAD",
    )
    assert ctx.client_app_type == "browser"
    assert ctx.methods == {"password", "x509CertificateSingleFactor"}
    assert ctx.satisfied_controls == {"mfa"}  # from amr mfa, and again from acrs c1
    assert ctx.authenticated_at is not None


def test_default_amr_table_never_credits_more_than_the_claim_proves() -> None:
    """The amr wia adds nothing, ngcmfa only mfa, rsa a single possession factor."""
    request = envoy_check(
        host=DEV_HOST, client=HOME, claims=engineer_claims(amr=("wia", "ngcmfa", "rsa", "fido"))
    )
    config = parse_gateway_config({"application": {"default": DEV_APP}})
    ctx = translate(config, request)
    assert ctx.methods == {"x509CertificateSingleFactor", "fido2"}
    assert ctx.satisfied_controls == {"mfa"}


def test_guest_gets_its_home_tenant_from_idp() -> None:
    """Claim acct 1 marks a guest; the home tenant comes from the idp issuer URL."""
    home = "11111111-2222-3333-4444-555555555555"
    claims = engineer_claims(acct=1, idp=f"https://sts.windows.net/{home}/")
    config = parse_gateway_config({"application": {"default": DEV_APP}})
    ctx = translate(config, envoy_check(host=DEV_HOST, client=HOME, claims=claims))
    assert ctx.guest is True
    assert ctx.home_tenant_id == home


@pytest.mark.parametrize(
    ("agent", "extra", "path", "wanted"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Edg/126.0", {}, "/", "browser"),
        ("Mozilla/5.0 (Windows NT 10.0)", {"cookie": ""}, "/", "mobileAppsAndDesktopClients"),
        ("Mozilla/5.0 (Windows NT 10.0)", {}, "/api/runs", "mobileAppsAndDesktopClients"),
        ("python-requests/2.32", {}, "/", "mobileAppsAndDesktopClients"),
    ],
)
def test_client_app_type(
    config: GatewayConfig, agent: str, extra: dict[str, str], path: str, wanted: str
) -> None:
    """Browser: a browser user agent, not an API path, not a bearer token without cookies."""
    headers = {"user-agent": agent, **extra}
    request = envoy_check(
        host=DEV_HOST, client=HOME, claims=engineer_claims(), headers=headers, path=path
    )
    assert translate(config, request).client_app_type == wanted


@pytest.mark.parametrize(
    ("agent", "platform"),
    [
        ("Mozilla/5.0 (Linux; Android 14; Pixel 8)", "android"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)", "iOS"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "windows"),
        ("Mozilla/5.0 (X11; Linux x86_64)", "linux"),
        ("curl/8.5.0", ""),
    ],
)
def test_platform_from_user_agent(config: GatewayConfig, agent: str, platform: str) -> None:
    """Without a platform signal the user agent decides it, as Entra does."""
    request = envoy_check(
        host=DEV_HOST, client=HOME, claims=engineer_claims(), headers={"user-agent": agent}
    )
    assert translate(config, request).platform == platform


def test_device_risk_and_geo_from_metadata() -> None:
    """Signals can come from another filter's dynamic metadata instead of headers."""
    config = parse_gateway_config(
        {
            "application": {"default": DEV_APP},
            "device": {"compliant": "metadata:com.example.posture:compliant"},
            "risk": {"sign_in": "metadata:com.example.posture:risk", "insider": "header:x-insider"},
            "network": {"country": "header:x-geo-country", "latitude": "header:x-geo-lat"},
        }
    )
    request = envoy_check(
        host=DEV_HOST,
        client=HOME,
        claims=engineer_claims(),
        headers={"x-insider": "Moderate", "x-geo-country": "fr", "x-geo-lat": "48.85"},
    )
    posture = request.attributes.metadata_context.filter_metadata["com.example.posture"]
    posture.update({"compliant": False, "risk": "high"})
    ctx = translate(config, request)
    assert ctx.compliant is False
    assert (ctx.sign_in_risk, ctx.insider_risk) == ("high", "moderate")
    assert (ctx.country, ctx.latitude, ctx.longitude) == ("FR", 48.85, None)


TRUSTED_HEADERS = {
    "application": {"default": DEV_APP},
    "identity": {
        "headers": {
            "user_id": "x-auth-user",
            "group_ids": "x-auth-groups",
            "amr": "x-auth-amr",
            "trusted_sources": ["10.0.0.0/8"],
        }
    },
}


def test_trusted_gateway_headers_give_identity_only_from_trusted_peers() -> None:
    """Configured identity headers are read from a trusted peer and ignored from others."""
    config = parse_gateway_config(TRUSTED_HEADERS)
    headers = {"x-auth-user": ADA, "x-auth-groups": f"{ENGINEERS}, g2", "x-auth-amr": "pwd,mfa"}
    ctx = translate(config, envoy_check(host=DEV_HOST, client=HOME, headers=headers))
    assert (ctx.user_id, ctx.group_ids) == (ADA, {ENGINEERS, "g2"})
    assert (ctx.methods, ctx.satisfied_controls) == ({"password"}, {"mfa"})
    outsider = envoy_check(host=DEV_HOST, client=HOME, headers=headers, peer=HOME)
    with pytest.raises(InvalidRequest, match="no verified token"):
        translate(config, outsider)


def test_a_repeated_identity_header_is_refused() -> None:
    """Two copies of a single-valued header (client's and gateway's) refuse the request."""
    config = parse_gateway_config(TRUSTED_HEADERS)
    joined = envoy_check(host=DEV_HOST, client=HOME, headers={"x-auth-user": f"evil, {ADA}"})
    with pytest.raises(InvalidRequest, match="x-auth-user"):
        translate(config, joined)
    raw = envoy_check(host=DEV_HOST, client=HOME)
    http = raw.attributes.request.http
    for key, value in [*http.headers.items(), ("x-auth-user", "evil"), ("x-auth-user", ADA)]:
        entry = http.header_map.headers.add()
        entry.key, entry.raw_value = key, value.encode()
    http.headers.clear()
    with pytest.raises(InvalidRequest, match="more than once"):
        translate(config, raw)


def test_request_id_is_envoys_when_usable() -> None:
    """x-request-id becomes the request id; an unusable one is replaced by a fresh id."""
    good = envoy_check(host=DEV_HOST, client=HOME, headers={"x-request-id": "req-7"})
    bad = envoy_check(host=DEV_HOST, client=HOME, headers={"x-request-id": "x" * 300})
    assert request_id(good) == "req-7"
    assert len(request_id(bad)) == 32


def test_tenant_check_and_workload_fields() -> None:
    """A configured tenant must match tid; an app token carries no user fields."""
    config = parse_gateway_config(
        {"application": {"default": DEV_APP}, "identity": {"jwt": {"tenant_id": TENANT}}}
    )
    claims = {"tid": TENANT, "idtyp": "app", "appid": "app-1", "oid": "sp-object"}
    ctx = translate(config, envoy_check(host=DEV_HOST, client=HOME, claims=claims))
    assert (ctx.service_principal_id, ctx.user_id, ctx.group_ids) == ("app-1", "", frozenset())


@pytest.mark.parametrize(
    "claims",
    [
        engineer_claims(),
        engineer_claims(amr=("pwd", "mfa"), acrs=["c1"], wids=["role-1"]),
        engineer_claims(
            acct=1, idp="https://sts.windows.net/11111111-2222-3333-4444-555555555555/"
        ),
        {"tid": TENANT, "idtyp": "app", "appid": "app-1", "oid": "sp-object"},
        {**engineer_claims(), "tid": "another-tenant"},  # refused
        {**engineer_claims(), "groups": "not-a-list"},  # refused
    ],
)
def test_the_token_memo_maps_as_reading_the_token_does(
    config: GatewayConfig, claims: dict[str, Any]
) -> None:
    """A token read from memory sets the same sign-in (or the same refusal) as read afresh."""
    memo = TokenMemo(read_token)
    request = envoy_check(host=DEV_HOST, client=HOME, claims=claims)

    def mapped(tokens: TokenMemo | None) -> SignInContext | str:
        try:
            return to_context(request, config, SignInDraft("rid-1", 0.0), tokens).context
        except InvalidRequest as exc:
            return str(exc)

    fresh = mapped(None)
    assert mapped(memo) == fresh  # the first read, remembered
    assert mapped(memo) == fresh  # from memory
