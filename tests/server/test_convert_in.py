"""Tests for pdp.server.convert_in: EvaluateRequest -> SignInContext, and what it refuses."""

from __future__ import annotations

import math
from typing import Any

import pytest
from google.protobuf import json_format

from pdp import context, vocabulary
from pdp.errors import InvalidRequest
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2 as pb

NOW = 1_700_000_000.0


def request(data: dict[str, Any] | None = None) -> pb.EvaluateRequest:
    """An EvaluateRequest from proto3 JSON."""
    return json_format.ParseDict(data or {}, pb.EvaluateRequest())


FULL = {
    "requestId": "req-42",
    "time": "2025-03-01T09:30:00.500Z",
    "subject": {
        "userId": " 6C0A1F2E-AAAA-BBBB-CCCC-DDDDEEEEFFFF ",
        "groupIds": ["G-1", "g-2", "  "],
        "roleIds": ["62E90394-69F5-4237-9190-012177145E10"],
        "guest": True,
        "guestType": "B2BCOLLABORATIONGUEST",
        "homeTenantId": "T-HOME",
    },
    "target": {
        "applicationId": "APP-1",
        "userAction": "URN:USER:REGISTERSECURITYINFO",
        "authenticationContexts": ["C1", "c2"],
    },
    "network": {
        "ipAddress": " 2001:DB8:0:0::1 ",
        "geo": {"country": "nl", "latitude": 52.37, "longitude": 4.89, "accuracyRadiusKm": 0},
        "compliantNetwork": True,
    },
    "device": {
        "deviceId": "DEV-1",
        "platform": "PLATFORM_IOS",
        "compliant": True,
        "trustType": "TRUST_TYPE_SERVER_AD",
        "attributes": {"Model": "Surface", "extensionAttribute1": "Finance"},
    },
    "clientAppType": "CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS",
    "authentication": {
        "methods": ["Password", "FIDO2", "customFactor"],
        "authenticatedAt": "2025-03-01T09:00:00Z",
        "satisfiedControls": [" termsOfUse:abc ", "approvedApplication"],
        "flow": "AUTHENTICATION_FLOW_DEVICE_CODE_FLOW",
    },
    "risk": {
        "signIn": "RISK_LEVEL_HIGH",
        "user": "RISK_LEVEL_LOW",
        "servicePrincipal": "RISK_LEVEL_UNSPECIFIED",
        "insider": "INSIDER_RISK_LEVEL_MODERATE",
    },
    "explain": True,
}


def test_every_field_is_normalised_into_the_context() -> None:
    """Each request field lands in its context field: ids lower-cased, enums in Graph words."""
    ctx = to_context(request(FULL), NOW)
    assert ctx == context.SignInContext(
        request_id="req-42",
        time=1740821400.5,
        user_id="6c0a1f2e-aaaa-bbbb-cccc-ddddeeeeffff",
        group_ids=frozenset({"g-1", "g-2"}),
        role_ids=frozenset({"62e90394-69f5-4237-9190-012177145e10"}),
        guest=True,
        guest_type="b2bCollaborationGuest",
        home_tenant_id="t-home",
        application_id="app-1",
        user_action="urn:user:registersecurityinfo",
        authentication_contexts=frozenset({"c1", "c2"}),
        ip_address="2001:db8::1",
        ip_value=0x20010DB8000000000000000000000001,
        ip_version=6,
        country="NL",
        latitude=52.37,
        longitude=4.89,
        accuracy_radius_km=0.0,
        compliant_network=True,
        device_id="dev-1",
        platform="iOS",
        compliant=True,
        trust_type="ServerAD",
        device_properties={
            "model": "Surface",
            "extensionattribute1": "Finance",
            "deviceid": "dev-1",
            "iscompliant": "True",
            "trusttype": "ServerAD",
        },
        client_app_type="mobileAppsAndDesktopClients",
        methods=frozenset({"password", "fido2", "customFactor"}),
        authenticated_at=1740819600.0,
        satisfied_controls=frozenset({"termsOfUse:abc", "approvedApplication"}),
        flow="deviceCodeFlow",
        sign_in_risk="high",
        user_risk="low",
        service_principal_risk="none",
        insider_risk="moderate",
        explain=True,
    )


def test_an_empty_request_gets_defaults_a_fresh_request_id_and_now() -> None:
    """Unset fields mean unknown: no IP, no geo, no device properties, risk none, time now."""
    ctx = to_context(request(), NOW)
    assert len(ctx.request_id) == 32
    assert int(ctx.request_id, 16) >= 0
    assert ctx == context.SignInContext(request_id=ctx.request_id, time=NOW)
    assert to_context(request(), NOW).request_id != ctx.request_id


def test_ipv4_mapped_ipv6_is_unwrapped_to_ipv4() -> None:
    """::ffff:a.b.c.d is the IPv4 address a.b.c.d, so IPv4 named locations match it."""
    ctx = to_context(request({"network": {"ipAddress": "::FFFF:203.0.113.10"}}), NOW)
    assert (ctx.ip_address, ctx.ip_value, ctx.ip_version) == ("203.0.113.10", 0xCB00710A, 4)


def test_ipv4_is_kept_as_ipv4() -> None:
    """A plain IPv4 address keeps its text, integer value and version 4."""
    ctx = to_context(request({"network": {"ipAddress": "10.0.0.1"}}), NOW)
    assert (ctx.ip_address, ctx.ip_value, ctx.ip_version) == ("10.0.0.1", 0x0A000001, 4)


def test_geo_numbers_are_present_only_when_set_and_zero_counts() -> None:
    """Latitude 0 is a place (the equator), not an absent value: proto3 optional presence."""
    ctx = to_context(request({"network": {"geo": {"latitude": 0, "longitude": 0}}}), NOW)
    assert (ctx.latitude, ctx.longitude, ctx.accuracy_radius_km) == (0.0, 0.0, None)


def test_registered_device_exposes_filter_properties() -> None:
    """A device known by id gets deviceId, isCompliant and its attributes, keys lower-cased."""
    data = {"device": {"deviceId": "D-1", "attributes": {"DisplayName": "Kiosk"}}}
    ctx = to_context(request(data), NOW)
    assert ctx.device_properties == {
        "displayname": "Kiosk",
        "deviceid": "d-1",
        "iscompliant": "False",
    }


def test_device_with_only_a_trust_type_is_registered() -> None:
    """A trust type alone marks the device registered: isCompliant and trustType are set."""
    ctx = to_context(request({"device": {"trustType": "TRUST_TYPE_WORKPLACE"}}), NOW)
    assert ctx.device_properties == {"iscompliant": "False", "trusttype": "Workplace"}


def test_unregistered_device_has_no_filter_properties() -> None:
    """No id, trust type or attributes: every property is null, even with a platform."""
    data = {"device": {"platform": "PLATFORM_ANDROID", "compliant": True}}
    ctx = to_context(request(data), NOW)
    assert ctx.device_properties == {}
    assert ctx.platform == "android"


@pytest.mark.parametrize(
    ("enum_type", "path", "canonical"),
    [
        (pb.Platform, "device.platform", ("", *vocabulary.PLATFORMS)),
        (pb.TrustType, "device.trust_type", ("", *vocabulary.TRUST_TYPES)),
        (pb.ClientAppType, "client_app_type", ("", *vocabulary.CLIENT_APP_TYPES)),
        (pb.AuthenticationFlow, "authentication.flow", ("", *vocabulary.FLOWS)),
        (pb.RiskLevel, "risk.sign_in", vocabulary.RISK_LEVELS),
        (pb.RiskLevel, "risk.user", vocabulary.RISK_LEVELS),
        (pb.RiskLevel, "risk.service_principal", vocabulary.RISK_LEVELS),
        (pb.InsiderRiskLevel, "risk.insider", vocabulary.INSIDER_RISK_LEVELS),
    ],
)
def test_every_enum_number_maps_to_a_canonical_spelling(
    enum_type: Any, path: str, canonical: tuple[str, ...]
) -> None:
    """Every value the proto defines converts, each to a distinct context spelling in order."""
    seen = []
    for number in enum_type.values():
        req = request()
        set_field(req, path, number)
        ctx = to_context(req, NOW)
        seen.append(getattr(ctx, _CONTEXT_FIELD[path]))
    if canonical[0] == "none":  # UNSPECIFIED and NONE both mean none
        assert seen == [canonical[0], *canonical]
    else:
        assert seen == list(canonical)


_CONTEXT_FIELD = {
    "device.platform": "platform",
    "device.trust_type": "trust_type",
    "client_app_type": "client_app_type",
    "authentication.flow": "flow",
    "risk.sign_in": "sign_in_risk",
    "risk.user": "user_risk",
    "risk.service_principal": "service_principal_risk",
    "risk.insider": "insider_risk",
}


def set_field(message: Any, path: str, value: Any) -> None:
    """Set a (dotted) field: scalars assigned, lists extended, dicts merged into maps."""
    *parents, name = path.split(".")
    for parent in parents:
        message = getattr(message, parent)
    if isinstance(value, list):
        getattr(message, name).extend(value)
    elif isinstance(value, dict):
        getattr(message, name).update(value)
    else:
        setattr(message, name, value)


def test_methods_take_the_graph_spelling_when_known() -> None:
    """Known methods are case-normalised (FIDO2 -> fido2); unknown ones are kept as given."""
    data = {"authentication": {"methods": ["FIDO2", "WindowsHelloForBusiness", "MyFactor"]}}
    ctx = to_context(request(data), NOW)
    assert ctx.methods == {"fido2", "windowsHelloForBusiness", "MyFactor"}


def test_a_service_principal_sign_in_converts() -> None:
    """A workload identity: service principal id lower-cased, with its own risk level."""
    data = {
        "subject": {"servicePrincipalId": "SP-1"},
        "risk": {"servicePrincipal": "RISK_LEVEL_MEDIUM"},
    }
    ctx = to_context(request(data), NOW)
    assert ctx.is_workload
    assert (ctx.service_principal_id, ctx.service_principal_risk) == ("sp-1", "medium")


@pytest.mark.parametrize(
    "user_field",
    [
        {"userId": "u"},
        {"groupIds": ["g"]},
        {"roleIds": ["r"]},
        {"guest": True},
        {"groupsUnknown": True},
        {"rolesUnknown": True},
    ],
)
def test_service_principal_with_user_fields_is_refused(user_field: dict[str, Any]) -> None:
    """A sign-in is a user's or a workload's, never both: the subject is refused."""
    data = {"subject": {"servicePrincipalId": "sp", **user_field}}
    with pytest.raises(InvalidRequest) as raised:
        to_context(request(data), NOW)
    assert raised.value.field == "subject"


def test_unknown_membership_is_carried_beside_the_groups_listed() -> None:
    """The flags groupsUnknown / rolesUnknown reach the sign-in as sent, beside any ids listed."""
    data = {"subject": {"userId": "u", "groupIds": ["G-1"], "groupsUnknown": True}}
    ctx = to_context(request(data), NOW)
    assert (ctx.group_ids, ctx.groups_unknown, ctx.roles_unknown) == ({"g-1"}, True, False)
    ctx = to_context(request({"subject": {"userId": "u", "rolesUnknown": True}}), NOW)
    assert (ctx.group_ids, ctx.groups_unknown, ctx.roles_unknown) == (frozenset(), False, True)


LONG = "x" * 1025
INVALID: list[tuple[str, Any, str]] = [
    ("request_id", "r" * 129, "request_id"),
    ("request_id", "line\nbreak", "request_id"),
    ("subject.user_id", LONG, "subject.user_id"),
    ("subject.group_ids", ["g"] * 4097, "subject.group_ids"),
    ("subject.group_ids", ["ok", LONG], "subject.group_ids[1]"),
    ("subject.role_ids", ["r"] * 513, "subject.role_ids"),
    ("subject.service_principal_id", LONG, "subject.service_principal_id"),
    ("subject.guest_type", "visitor", "subject.guest_type"),
    ("subject.guest_type", "internalGuest", "subject.guest_type"),  # without guest=true
    ("subject.home_tenant_id", LONG, "subject.home_tenant_id"),
    ("subject.home_tenant_id", "t-1", "subject.home_tenant_id"),  # without guest=true
    ("target.application_id", LONG, "target.application_id"),
    ("target.user_action", LONG, "target.user_action"),
    ("target.authentication_contexts", ["c1"] * 101, "target.authentication_contexts"),
    ("network.ip_address", "10.0.0.256", "network.ip_address"),
    ("network.ip_address", LONG, "network.ip_address"),
    ("network.geo.country", "NLD", "network.geo.country"),
    ("network.geo.country", "1A", "network.geo.country"),
    ("network.geo.country", "ÄB", "network.geo.country"),
    ("network.geo.latitude", 90.5, "network.geo.latitude"),
    ("network.geo.latitude", math.nan, "network.geo.latitude"),
    ("network.geo.longitude", -180.5, "network.geo.longitude"),
    ("network.geo.accuracy_radius_km", -1.0, "network.geo.accuracy_radius_km"),
    ("network.geo.accuracy_radius_km", math.inf, "network.geo.accuracy_radius_km"),
    ("device.device_id", LONG, "device.device_id"),
    ("device.platform", 99, "device.platform"),
    ("device.trust_type", 7, "device.trust_type"),
    ("device.attributes", {f"extensionAttribute{i}": "v" for i in range(65)}, "device.attributes"),
    ("device.attributes", {"model": LONG}, "device.attributes['model']"),
    ("device.attributes", {"IsCompliant": "True"}, "device.attributes['IsCompliant']"),
    ("device.attributes", {"": "v"}, "device.attributes['']"),
    ("client_app_type", 5, "client_app_type"),
    ("authentication.methods", ["sms"] * 33, "authentication.methods"),
    ("authentication.satisfied_controls", ["c"] * 257, "authentication.satisfied_controls"),
    ("authentication.flow", -1, "authentication.flow"),
    ("authentication.authenticated_at.nanos", -1, "authentication.authenticated_at"),
    ("time.seconds", 253_402_300_800, "time"),
    ("risk.sign_in", 5, "risk.sign_in"),
    ("risk.user", 9, "risk.user"),
    ("risk.service_principal", 9, "risk.service_principal"),
    ("risk.insider", 9, "risk.insider"),
]


@pytest.mark.parametrize(("path", "value", "field"), INVALID)
def test_an_invalid_value_is_refused_naming_its_field(path: str, value: Any, field: str) -> None:
    """Each validation rule raises InvalidRequest with the proto path of the bad field."""
    req = request({"device": {"deviceId": "d"}})  # registered, so attributes are read
    set_field(req, path, value)
    with pytest.raises(InvalidRequest) as raised:
        to_context(req, NOW)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"{field}: ")


def test_bad_ip_message_quotes_the_value() -> None:
    """The IP error says what was wrong and repeats the bad text."""
    with pytest.raises(InvalidRequest) as raised:
        to_context(request({"network": {"ipAddress": "not-an-ip"}}), NOW)
    assert str(raised.value) == "network.ip_address: not an IPv4 or IPv6 address: 'not-an-ip'"


def test_attribute_names_differing_only_in_case_are_refused() -> None:
    """Model and MODEL are one device property: giving both is ambiguous."""
    data = {"device": {"attributes": {"Model": "a", "MODEL": "b"}}}
    with pytest.raises(InvalidRequest, match="given twice"):
        to_context(request(data), NOW)


def test_limits_are_inclusive() -> None:
    """Exactly the limit is accepted: 4096 groups, 64 attributes, 1024-character strings."""
    data = {
        "subject": {"userId": "u" * 1024, "groupIds": [f"g{i}" for i in range(4096)]},
        "device": {"attributes": {f"a{i}": "v" for i in range(64)}},
    }
    ctx = to_context(request(data), NOW)
    assert len(ctx.group_ids) == 4096
    assert len(ctx.device_properties) == 65  # 64 attributes and isCompliant
