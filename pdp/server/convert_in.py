"""EvaluateRequest -> SignInContext: the gRPC API's way in, mapped once.

This module owns the mapping from the proto's fields and enum numbers to the sign-in's
values; the rules every way in shares (limits, id and IP normalisation, geo ranges, device
properties) are `pdp.context_values`. Anything it cannot accept raises `InvalidRequest`
naming the proto field path and the bad value. `now` is the caller's one clock read, the
sign-in's time when the request carries none; nothing here looks at policies.

It reads each field once, in one function, because it runs for every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from google.protobuf.struct_pb2 import Struct, Value
from google.protobuf.timestamp_pb2 import Timestamp

from pdp import context_values as cv
from pdp.context import SignInContext
from pdp.errors import InvalidRequest
from pdp.v1 import pdp_pb2 as pb

PLATFORMS: Final[Mapping[int, str]] = {
    pb.PLATFORM_UNSPECIFIED: "",
    pb.PLATFORM_ANDROID: "android",
    pb.PLATFORM_IOS: "iOS",
    pb.PLATFORM_WINDOWS: "windows",
    pb.PLATFORM_WINDOWS_PHONE: "windowsPhone",
    pb.PLATFORM_MACOS: "macOS",
    pb.PLATFORM_LINUX: "linux",
}
TRUST_TYPES: Final[Mapping[int, str]] = {
    pb.TRUST_TYPE_UNSPECIFIED: "",
    pb.TRUST_TYPE_AZURE_AD: "AzureAD",
    pb.TRUST_TYPE_SERVER_AD: "ServerAD",
    pb.TRUST_TYPE_WORKPLACE: "Workplace",
}
CLIENT_APP_TYPES: Final[Mapping[int, str]] = {
    pb.CLIENT_APP_TYPE_UNSPECIFIED: "",
    pb.CLIENT_APP_TYPE_BROWSER: "browser",
    pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS: "mobileAppsAndDesktopClients",
    pb.CLIENT_APP_TYPE_EXCHANGE_ACTIVE_SYNC: "exchangeActiveSync",
    pb.CLIENT_APP_TYPE_OTHER: "other",
}
FLOWS: Final[Mapping[int, str]] = {
    pb.AUTHENTICATION_FLOW_UNSPECIFIED: "",
    pb.AUTHENTICATION_FLOW_DEVICE_CODE_FLOW: "deviceCodeFlow",
    pb.AUTHENTICATION_FLOW_AUTHENTICATION_TRANSFER: "authenticationTransfer",
}
RISK_LEVELS: Final[Mapping[int, str]] = {
    pb.RISK_LEVEL_UNSPECIFIED: "none",
    pb.RISK_LEVEL_NONE: "none",
    pb.RISK_LEVEL_LOW: "low",
    pb.RISK_LEVEL_MEDIUM: "medium",
    pb.RISK_LEVEL_HIGH: "high",
}
INSIDER_RISK_LEVELS: Final[Mapping[int, str]] = {
    pb.INSIDER_RISK_LEVEL_UNSPECIFIED: "none",
    pb.INSIDER_RISK_LEVEL_NONE: "none",
    pb.INSIDER_RISK_LEVEL_MINOR: "minor",
    pb.INSIDER_RISK_LEVEL_MODERATE: "moderate",
    pb.INSIDER_RISK_LEVEL_ELEVATED: "elevated",
}
_NO_IDS: Final[frozenset[str]] = frozenset()


def to_context(request: pb.EvaluateRequest, now: float) -> SignInContext:
    """Validate `request` into a SignInContext; `now` is its time when the request has none."""
    subject = request.subject
    user_id = subject.user_id
    if user_id:
        user_id = cv.ident(user_id, "subject.user_id")
    group_ids = subject.group_ids
    groups = cv.idset(group_ids, "subject.group_ids", cv.MAX_GROUP_IDS) if group_ids else _NO_IDS
    role_ids = subject.role_ids
    roles = cv.idset(role_ids, "subject.role_ids", cv.MAX_ROLE_IDS) if role_ids else _NO_IDS
    guest = subject.guest
    guest_type = subject.guest_type
    home_tenant_id = subject.home_tenant_id
    if guest_type or home_tenant_id:
        guest_type, home_tenant_id = _guest(guest, guest_type, home_tenant_id)
    groups_unknown, roles_unknown = subject.groups_unknown, subject.roles_unknown
    principal = subject.service_principal_id
    if principal:
        principal = cv.ident(principal, "subject.service_principal_id")
        if principal and (user_id or groups or roles or guest or groups_unknown or roles_unknown):
            raise InvalidRequest(
                "subject",
                "a service principal sign-in carries no user fields "
                "(user_id, group_ids, role_ids, guest, groups_unknown, roles_unknown)",
            )
    target = request.target
    application_id = target.application_id
    if application_id:
        application_id = cv.ident(application_id, "target.application_id")
    user_action = target.user_action
    if user_action:
        user_action = cv.ident(user_action, "target.user_action")
    contexts = target.authentication_contexts
    network = request.network
    ip_address, ip_value, ip_version = cv.ip_address(network.ip_address, "network.ip_address")
    country, latitude, longitude, radius = "", None, None, None
    if network.HasField("geo"):
        country, latitude, longitude, radius = _geo(network.geo)
    device = request.device
    device_id = device.device_id
    if device_id:
        device_id = cv.ident(device_id, "device.device_id")
    trust_type = _enum(TRUST_TYPES, device.trust_type, "device.trust_type")
    compliant = device.compliant
    attributes = device.attributes
    authn = request.authentication
    methods = authn.methods
    controls = authn.satisfied_controls
    risk = request.risk
    return SignInContext(
        request_id=cv.request_id(request.request_id),
        time=_seconds(request.time, "time") if request.HasField("time") else now,
        user_id=user_id,
        group_ids=groups,
        role_ids=roles,
        groups_unknown=groups_unknown,
        roles_unknown=roles_unknown,
        guest=guest,
        guest_type=guest_type,
        home_tenant_id=home_tenant_id,
        service_principal_id=principal,
        application_id=application_id,
        user_action=user_action,
        authentication_contexts=cv.idset(
            contexts, "target.authentication_contexts", cv.MAX_AUTHENTICATION_CONTEXTS
        )
        if contexts
        else _NO_IDS,
        application_attributes=(
            _application_attributes(target.custom_security_attributes)
            if target.HasField("custom_security_attributes")
            else _NO_ATTRIBUTES
        ),
        ip_address=ip_address,
        ip_value=ip_value,
        ip_version=ip_version,
        country=country,
        latitude=latitude,
        longitude=longitude,
        accuracy_radius_km=radius,
        compliant_network=network.compliant_network,
        device_id=device_id,
        platform=_enum(PLATFORMS, device.platform, "device.platform"),
        compliant=compliant,
        trust_type=trust_type,
        device_properties=cv.device_properties(
            attributes.items(),
            len(attributes),
            device_id=device_id,
            compliant=compliant,
            trust_type=trust_type,
            field="device.attributes",
        )
        if device_id or trust_type or attributes
        else {},
        client_app_type=_enum(CLIENT_APP_TYPES, request.client_app_type, "client_app_type"),
        methods=cv.methods(methods, "authentication.methods") if methods else _NO_IDS,
        authenticated_at=(
            _seconds(authn.authenticated_at, "authentication.authenticated_at")
            if authn.HasField("authenticated_at")
            else None
        ),
        secondary_authenticated_at=(
            _seconds(authn.secondary_authenticated_at, "authentication.secondary_authenticated_at")
            if authn.HasField("secondary_authenticated_at")
            else None
        ),
        satisfied_controls=frozenset(
            cv.strings(controls, "authentication.satisfied_controls", cv.MAX_SATISFIED_CONTROLS)
        )
        if controls
        else _NO_IDS,
        flow=_enum(FLOWS, authn.flow, "authentication.flow"),
        sign_in_risk=_enum(RISK_LEVELS, risk.sign_in, "risk.sign_in"),
        user_risk=_enum(RISK_LEVELS, risk.user, "risk.user"),
        service_principal_risk=_enum(RISK_LEVELS, risk.service_principal, "risk.service_principal"),
        insider_risk=_enum(INSIDER_RISK_LEVELS, risk.insider, "risk.insider"),
        explain=request.explain,
    )


def _seconds(ts: Timestamp, field: str) -> float:
    seconds, nanos = ts.seconds, ts.nanos
    if not (cv.MIN_EPOCH_S <= seconds <= cv.MAX_EPOCH_S and 0 <= nanos < 1_000_000_000):
        raise InvalidRequest(field, f"not a valid timestamp: seconds={seconds} nanos={nanos}")
    return seconds + nanos / 1e9


def _enum(table: Mapping[int, str], number: int, field: str) -> str:
    try:
        return table[number]
    except KeyError:
        raise InvalidRequest(field, f"unknown enum number {number}") from None


def _guest(guest: bool, guest_type: str, home_tenant_id: str) -> tuple[str, str]:
    """A guest's type (Graph spelling) and home tenant; only a guest may have them."""
    kind = cv.guest_type(guest_type, "subject.guest_type")
    tenant = cv.ident(home_tenant_id, "subject.home_tenant_id")
    if not guest:
        if kind:
            raise InvalidRequest("subject.guest_type", "set only for a guest (subject.guest)")
        if tenant:
            raise InvalidRequest("subject.home_tenant_id", "set only for a guest (subject.guest)")
    return kind, tenant


def _geo(geo: pb.Geo) -> tuple[str, float | None, float | None, float | None]:
    """Country, latitude, longitude and accuracy radius (None when absent), checked."""
    country = cv.country(geo.country, "network.geo.country") if geo.country else ""
    latitude = (
        cv.bounded(geo.latitude, "network.geo.latitude", -90.0, 90.0)
        if geo.HasField("latitude")
        else None
    )
    longitude = (
        cv.bounded(geo.longitude, "network.geo.longitude", -180.0, 180.0)
        if geo.HasField("longitude")
        else None
    )
    radius = (
        cv.bounded(geo.accuracy_radius_km, "network.geo.accuracy_radius_km", 0.0, float("inf"))
        if geo.HasField("accuracy_radius_km")
        else None
    )
    return country, latitude, longitude, radius


def describe(request: pb.EvaluateRequest, now: float) -> SignInContext:
    """What an invalid request said, for its audit record: raw values, bounded, never raising."""
    subject, device = request.subject, request.device
    geo = request.network.geo
    return SignInContext(
        request_id=cv.clip(request.request_id),
        time=now,
        user_id=cv.clip(subject.user_id),
        groups_unknown=subject.groups_unknown,
        roles_unknown=subject.roles_unknown,
        service_principal_id=cv.clip(subject.service_principal_id),
        application_id=cv.clip(request.target.application_id),
        ip_address=cv.clip(request.network.ip_address),
        country=cv.clip(geo.country),
        device_id=cv.clip(device.device_id),
        platform=PLATFORMS.get(device.platform, ""),
        compliant=device.compliant,
        trust_type=TRUST_TYPES.get(device.trust_type, ""),
        client_app_type=CLIENT_APP_TYPES.get(request.client_app_type, ""),
    )


_APPLICATION_ATTRIBUTES: Final = "target.custom_security_attributes"
MAX_APPLICATION_ATTRIBUTES: Final = 64
MAX_ATTRIBUTE_VALUES: Final = 64
_NO_ATTRIBUTES: Final[Mapping[str, str | tuple[str, ...]]] = {}


def _application_attributes(struct: Struct) -> dict[str, str | tuple[str, ...]]:
    """Custom security attributes keyed `set_attribute` (lower-cased): a string or strings.

    Flat keys (`Set_attribute`) and Graph's nested form (`{"Set": {"attribute": ...}}`) both
    land on the key an application-filter rule names; OData annotations are skipped.
    """
    out: dict[str, str | tuple[str, ...]] = {}
    for name, value in struct.fields.items():
        if "@odata" in name:
            continue
        if value.WhichOneof("kind") == "struct_value":
            for attribute, inner in value.struct_value.fields.items():
                if "@odata" not in attribute:
                    where = f"{_APPLICATION_ATTRIBUTES}[{name!r}][{attribute!r}]"
                    _attribute(out, f"{name}_{attribute}", inner, where)
        else:
            _attribute(out, name, value, f"{_APPLICATION_ATTRIBUTES}[{name!r}]")
        if len(out) > MAX_APPLICATION_ATTRIBUTES:
            raise InvalidRequest(
                _APPLICATION_ATTRIBUTES, f"more than {MAX_APPLICATION_ATTRIBUTES} attributes"
            )
    return out


def _attribute(out: dict[str, str | tuple[str, ...]], name: str, value: Value, field: str) -> None:
    key = cv.text(name, field).lower()
    if not key:
        raise InvalidRequest(field, "an attribute name cannot be empty")
    if key in out:
        raise InvalidRequest(field, "given twice (attribute names are case-insensitive)")
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        out[key] = cv.text(value.string_value, field)
        return
    if kind == "list_value" and len(value.list_value.values) <= MAX_ATTRIBUTE_VALUES:
        items: list[str] = []
        for i, item in enumerate(value.list_value.values):
            if item.WhichOneof("kind") != "string_value":
                raise InvalidRequest(f"{field}[{i}]", "values of an attribute are strings")
            items.append(cv.text(item.string_value, f"{field}[{i}]"))
        out[key] = tuple(items)
        return
    if kind == "list_value":
        raise InvalidRequest(field, f"more than {MAX_ATTRIBUTE_VALUES} values")
    raise InvalidRequest(
        field,
        "expected a string or a list of strings (Conditional Access filters read only string "
        "custom security attributes)",
    )
