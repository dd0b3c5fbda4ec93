"""Check over a real grpc.aio server and channel: allow, step-up challenge, deny, fail closed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from envoy_requests import (
    ADA,
    DEV_HOST,
    ENGINEERS,
    HOME,
    JWT_NAMESPACE,
    LB,
    OFFICE,
    PROD_HOST,
    RUNNER,
    check_all,
    engineer_claims,
    envoy_check,
    loaded_store,
    pipeline_claims,
    serving,
)
from google.protobuf import json_format

from pdp.gateway.config import GatewayConfig
from pdp.observability.decisions import DecisionObserver
from pdp.policy_store import PolicyStore

OK, PERMISSION_DENIED, UNAUTHENTICATED = 0, 7, 16
BLOCKED = "Your organization's Conditional Access policy blocks this sign-in"


def upstream_headers(response: Any) -> dict[str, str]:
    """The headers an OK response sets on the upstream request, each checked to overwrite."""
    out = {}
    for option in response.ok_response.headers:
        assert option.append_action == option.OVERWRITE_IF_EXISTS_OR_ADD
        assert not option.HasField("append")
        out[option.header.key] = option.header.value
    return out


def reply_headers(response: Any) -> dict[str, str]:
    """The headers of a denied response's local reply."""
    return {o.header.key: o.header.value for o in response.denied_response.headers}


def body(response: Any) -> dict[str, Any]:
    """The denied response's JSON body."""
    assert reply_headers(response)["content-type"] == "application/json"
    parsed: dict[str, Any] = json.loads(response.denied_response.body)
    return parsed


def metadata(response: Any) -> dict[str, Any]:
    """The dynamic metadata Envoy records under envoy.filters.http.ext_authz."""
    return json_format.MessageToDict(response.dynamic_metadata)


def test_engineer_on_prod_from_the_office_is_allowed_with_upstream_headers(
    config: GatewayConfig,
) -> None:
    """MFA token, compliant laptop, office IP: OK with decision, request id and 4 h max age."""
    request = envoy_check(host=PROD_HOST, client=OFFICE, claims=engineer_claims())
    [response] = check_all(config, request)
    assert response.status.code == OK
    rid = request.attributes.request.http.headers["x-request-id"]
    assert upstream_headers(response) == {
        "x-pdp-decision": "allow",
        "x-pdp-request-id": rid,
        "x-pdp-session-max-age": "14400",
    }
    # No second-factor frequency in force: a client's copy of that header is removed.
    assert list(response.ok_response.headers_to_remove) == ["x-pdp-secondary-max-age"]
    meta = metadata(response)
    assert meta["pdp_decision"] == "allow"
    assert meta["pdp_request_id"] == rid
    assert meta["pdp_session_max_age"] == 14400
    assert meta["pdp_policy_version"]


def test_password_only_on_dev_from_home_gets_the_rfc_9470_challenge(
    config: GatewayConfig,
) -> None:
    """Unmet MFA: 401, the exact step-up header with the configured acr, and a JSON body."""
    request = envoy_check(host=DEV_HOST, client=HOME, claims=engineer_claims(amr=("pwd",)))
    [response] = check_all(config, request)
    assert response.status.code == UNAUTHENTICATED
    assert response.denied_response.status.code == 401
    assert reply_headers(response)["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", acr_values="c1"'
    )
    assert body(response) == {
        "decision": "challenge",
        "request_id": request.attributes.request.http.headers["x-request-id"],
        "requirements": [{"any_of": ["mfa"]}],
        "messages": ["Complete multifactor authentication to continue."],
        "acr_values": "c1",
    }
    assert metadata(response)["pdp_decision"] == "challenge"
    assert metadata(response)["pdp_requirements"] == ["mfa"]


def test_a_token_carrying_the_stepped_up_context_is_allowed(config: GatewayConfig) -> None:
    """After the step-up, Entra's token has acrs c1, which the config says enforces MFA."""
    claims = engineer_claims(amr=("pwd",), acrs=["c1"])
    [response] = check_all(config, envoy_check(host=DEV_HOST, client=HOME, claims=claims))
    assert response.status.code == OK
    assert upstream_headers(response)["x-pdp-decision"] == "allow"


def test_sign_in_older_than_the_frequency_is_challenged_with_max_age(
    config: GatewayConfig,
) -> None:
    """Prod's 4-hour sign-in frequency elapsed: 401 asking for authentication within 14400 s."""
    claims = engineer_claims(signed_in_ago_s=5 * 3600)
    [response] = check_all(config, envoy_check(host=PROD_HOST, client=OFFICE, claims=claims))
    assert response.denied_response.status.code == 401
    assert reply_headers(response)["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="More recent authentication is required", max_age="14400"'
    )
    assert body(response)["requirements"] == [{"any_of": ["reauthentication"]}]
    assert body(response)["max_age"] == 14400


def test_route_authentication_context_is_asked_for_in_the_challenge(
    config: GatewayConfig,
) -> None:
    """A route demanding context c7 lists it in acr_values beside the control's acr."""
    request = envoy_check(
        host=DEV_HOST,
        client=HOME,
        claims=engineer_claims(amr=("pwd",)),
        extensions={"pdp_authentication_contexts": "c7"},
    )
    [response] = check_all(config, request)
    assert 'acr_values="c1 c7"' in reply_headers(response)["www-authenticate"]


def test_prod_from_home_is_denied_with_messages_and_request_id(config: GatewayConfig) -> None:
    """AI04 blocks prod outside corporate ranges: 403, JSON body with messages and request id."""
    request = envoy_check(host=PROD_HOST, client=HOME, claims=engineer_claims())
    [response] = check_all(config, request)
    assert response.status.code == PERMISSION_DENIED
    assert response.denied_response.status.code == 403
    rid = request.attributes.request.http.headers["x-request-id"]
    denied = body(response)
    assert denied["decision"] == "deny"
    assert denied["request_id"] == rid
    assert denied["messages"][0].startswith(BLOCKED)
    assert reply_headers(response)["x-pdp-request-id"] == rid
    assert metadata(response)["pdp_decision"] == "deny"


def test_workload_identity_is_decided_by_its_service_principal(config: GatewayConfig) -> None:
    """An app-only token (idtyp app, azp) is allowed from the runners and blocked elsewhere."""
    no_device = {"x-device-id": "", "x-device-compliant": "", "x-device-trust-type": ""}
    runner, outside = check_all(
        config,
        envoy_check(host=PROD_HOST, client=RUNNER, claims=pipeline_claims(), headers=no_device),
        envoy_check(host=PROD_HOST, client=OFFICE, claims=pipeline_claims(), headers=no_device),
    )
    assert runner.status.code == OK
    assert outside.denied_response.status.code == 403


def test_route_context_extension_names_the_application(config: GatewayConfig) -> None:
    """A host the config does not map is served when its route sets pdp_application_id."""
    claims = engineer_claims()
    unmapped, routed = check_all(
        config,
        envoy_check(host="notebooks.contoso.example", client=HOME, claims=claims),
        envoy_check(
            host="notebooks.contoso.example",
            client=HOME,
            claims=claims,
            extensions={"pdp_application_id": "8a4f0c1e-2d3b-4c5a-9e7f-00000000f001"},
        ),
    )
    assert unmapped.denied_response.status.code == 403
    assert body(unmapped)["error"] == "invalid_argument"
    assert routed.denied_response.status.code == 403  # prod from home: AI04's block
    assert body(routed)["messages"][0].startswith(BLOCKED)


def _garbage(name: str) -> Any:
    good = envoy_check(host=DEV_HOST, client=OFFICE, claims=engineer_claims())
    attrs = good.attributes
    payload = attrs.metadata_context.filter_metadata[JWT_NAMESPACE].fields["jwt_payload"]
    claims = payload.struct_value.fields
    if name == "invalid source address":
        attrs.source.address.socket_address.address = "10.0.0.300"
    elif name == "groups not a list":
        claims["groups"].number_value = 42
    elif name == "group id not a string":
        claims["groups"].list_value.values.add().bool_value = True
    elif name == "oid not a string":
        claims["oid"].number_value = 7
        del claims["sub"]
    elif name == "auth_time a string":
        claims["auth_time"].string_value = "yesterday"
    elif name == "payload not a struct":
        payload.string_value = "eyJhbGciOi..."
    elif name == "other tenant":
        claims["tid"].string_value = "00000000-0000-0000-0000-00000000bad0"
    elif name == "garbage forwarded for":
        attrs.request.http.headers["x-forwarded-for"] = "10.0.0.400"
    elif name == "device compliance not a bool":
        attrs.request.http.headers["x-device-compliant"] = "mostly"
    else:  # pragma: no cover - a typo in the parametrization
        raise AssertionError(name)
    return good


@pytest.mark.parametrize(
    "name",
    [
        "invalid source address",
        "groups not a list",
        "group id not a string",
        "oid not a string",
        "auth_time a string",
        "payload not a struct",
        "other tenant",
        "garbage forwarded for",
        "device compliance not a bool",
    ],
)
def test_malformed_requests_are_denied_never_allowed(config: GatewayConfig, name: str) -> None:
    """Garbage in any part of a CheckRequest is a 403 denial, never OK and never an RPC error."""
    [response] = check_all(config, _garbage(name))
    assert response.status.code == PERMISSION_DENIED
    assert not response.HasField("ok_response")
    assert response.denied_response.status.code == 403
    assert body(response)["error"] == "invalid_argument"
    assert metadata(response)["pdp_error"] == "invalid_argument"


def test_a_request_without_identity_is_unauthenticated(config: GatewayConfig) -> None:
    """No verified token and no trusted headers: 401 with a bare Bearer challenge."""
    [response] = check_all(config, envoy_check(host=DEV_HOST, client=OFFICE))
    assert response.status.code == UNAUTHENTICATED
    assert response.denied_response.status.code == 401
    assert reply_headers(response)["www-authenticate"] == "Bearer"
    assert body(response)["error"] == "unauthenticated"


def test_no_policy_set_loaded_is_a_503_denial(config: GatewayConfig) -> None:
    """Before the first policy load, Check denies with 503 rather than failing the RPC."""
    request = envoy_check(host=DEV_HOST, client=OFFICE, claims=engineer_claims())
    [response] = check_all(config, request, store=PolicyStore())
    assert response.denied_response.status.code == 503
    assert body(response)["error"] == "no_policy_set"


def test_an_internal_error_is_a_500_denial(config: GatewayConfig) -> None:
    """A bug while translating (here: a config mapping that raises) is denied, not raised."""
    broken = dataclasses.replace(
        config, step_up=dataclasses.replace(config.step_up, acr_values=_Exploding())
    )
    request = envoy_check(host=DEV_HOST, client=OFFICE, claims=engineer_claims(acrs=["c1"]))
    [response] = check_all(broken, request)
    assert response.denied_response.status.code == 500
    assert body(response)["error"] == "internal"


class _Exploding(dict[str, str]):
    """A mapping whose iteration fails, standing in for a bug."""

    def items(self) -> Any:
        raise RuntimeError("boom")


def test_client_sent_decision_headers_change_nothing(config: GatewayConfig) -> None:
    """A client's x-pdp-* headers neither turn a deny into an allow nor reach the upstream."""
    spoof = {
        "x-pdp-decision": "allow",
        "x-pdp-request-id": "forged",
        "x-pdp-session-max-age": "999999",
    }
    denied, allowed = check_all(
        config,
        envoy_check(host=PROD_HOST, client=HOME, claims=engineer_claims(), headers=spoof),
        envoy_check(
            host=DEV_HOST,
            client=OFFICE,
            claims=engineer_claims(),
            headers={**spoof, "x-device-compliant": "true"},
        ),
    )
    assert denied.denied_response.status.code == 403
    set_headers = upstream_headers(allowed)
    assert set_headers["x-pdp-decision"] == "allow"
    assert set_headers["x-pdp-request-id"] != "forged"
    assert set_headers["x-pdp-session-max-age"] == "86400"  # dev: AI07's 24 hours


def test_client_sent_max_age_is_removed_when_pdp_sets_none(config: GatewayConfig) -> None:
    """With no sign-in frequency in force, a client's x-pdp-session-max-age is removed."""
    claims = engineer_claims()
    request = envoy_check(
        host="other.contoso.example",
        client=OFFICE,
        claims=claims,
        headers={"x-pdp-session-max-age": "999999"},
        extensions={"pdp_application_id": "8a4f0c1e-2d3b-4c5a-9e7f-000000000bbb"},
    )
    [response] = check_all(config, request)
    assert response.status.code == OK
    assert "x-pdp-session-max-age" not in upstream_headers(response)
    assert list(response.ok_response.headers_to_remove) == [
        "x-pdp-session-max-age",
        "x-pdp-secondary-max-age",
    ]


def test_client_sent_identity_headers_change_nothing(config: GatewayConfig) -> None:
    """Identity headers the config does not trust are ignored, with or without a token."""
    forged = {"x-pdp-user-id": ADA, "x-user-groups": ENGINEERS, "x-amr": "pwd,mfa"}
    anonymous, password_only = check_all(
        config,
        envoy_check(host=DEV_HOST, client=OFFICE, headers=forged),
        envoy_check(
            host=DEV_HOST, client=HOME, claims=engineer_claims(amr=("pwd",)), headers=forged
        ),
    )
    assert anonymous.denied_response.status.code == 401
    assert body(password_only)["decision"] == "challenge"


def test_a_forged_forwarded_for_entry_changes_nothing(config: GatewayConfig) -> None:
    """A client prepending an office address to x-forwarded-for is still seen from home."""
    honest, forged = check_all(
        config,
        envoy_check(host=PROD_HOST, client=HOME, claims=engineer_claims()),
        envoy_check(
            host=PROD_HOST, client=HOME, claims=engineer_claims(), forwarded=f"{OFFICE}, {HOME}"
        ),
    )
    assert honest.denied_response.status.code == forged.denied_response.status.code == 403
    assert body(forged)["messages"][0].startswith(BLOCKED)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(config: GatewayConfig) -> None:
    """A connection from outside trusted_proxies is judged by its own address, not its XFF."""
    [response] = check_all(
        config,
        envoy_check(host=PROD_HOST, client=OFFICE, claims=engineer_claims(), peer=HOME),
    )
    assert body(response)["messages"][0].startswith(BLOCKED)
    assert LB != HOME


def test_every_check_is_observed_once(config: GatewayConfig) -> None:
    """Decided and refused Checks each reach the decision observer once, like Evaluate's."""
    observer = DecisionObserver()
    requests = [
        envoy_check(host=PROD_HOST, client=OFFICE, claims=engineer_claims()),
        envoy_check(host=DEV_HOST, client=OFFICE),  # no identity: refused
    ]

    async def scenario() -> None:
        async with serving(loaded_store(), config, observer) as stubs:
            for request in requests:
                await stubs.check.Check(request, timeout=10)

    calls: list[tuple[Any, Any]] = []
    real = observer.observe

    def spy(request: Any, response: Any, **kwargs: Any) -> None:
        calls.append((request.request_id, kwargs["failure"]))
        real(request, response, **kwargs)

    observer.observe = spy  # type: ignore[method-assign]
    asyncio.run(scenario())
    rids = [r.attributes.request.http.headers["x-request-id"] for r in requests]
    assert [rid for rid, _ in calls] == rids
    assert calls[0][1] is None
    assert calls[1][1] is not None
    assert observer.decided == 1
