"""EvaluateRequest -> SignInContext: validate and normalise one request for the engine.

This module owns every rule about what a request may say: size limits, id and enum
normalisation (ids lower-cased, proto enum numbers to the canonical Graph spellings of
`pdp.context`), IP parsing, geo ranges and the device properties device filters read.
Strings are stripped and empty list entries dropped. Anything it cannot accept raises
`InvalidRequest` naming the proto field path and the bad value; nothing here reads a clock
(`now` is the caller's) or looks at policies.
"""

from __future__ import annotations

import ipaddress
import math
import uuid
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from google.protobuf.timestamp_pb2 import Timestamp

from pdp.context import SignInContext
from pdp.policy.vocabulary import AUTHENTICATION_METHOD_MODES, GUEST_TYPES
from pdp.server.errors import InvalidRequest
from pdp.v1 import pdp_pb2 as pb

MAX_STRING: Final = 1024
MAX_REQUEST_ID: Final = 128
MAX_GROUP_IDS: Final = 4096
MAX_ROLE_IDS: Final = 512
MAX_AUTHENTICATION_CONTEXTS: Final = 100
MAX_METHODS: Final = 32
MAX_SATISFIED_CONTROLS: Final = 256
MAX_DEVICE_ATTRIBUTES: Final = 64
# The range google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_SECONDS: Final = -62_135_596_800
_MAX_SECONDS: Final = 253_402_300_799

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
# Device-filter properties that typed Device fields set; an attribute may not set them too.
_TYPED_PROPERTIES: Final[Mapping[str, str]] = {
    "deviceid": "device.device_id",
    "iscompliant": "device.compliant",
    "trusttype": "device.trust_type",
}


def to_context(request: pb.EvaluateRequest, now: float) -> SignInContext:
    """Validate `request` into a SignInContext; `now` is its time when the request has none."""
    subject, target, network = request.subject, request.target, request.network
    device, authn, risk = request.device, request.authentication, request.risk
    user_id = _id(subject.user_id, "subject.user_id")
    group_ids = _ids(subject.group_ids, "subject.group_ids", MAX_GROUP_IDS)
    role_ids = _ids(subject.role_ids, "subject.role_ids", MAX_ROLE_IDS)
    guest_type = _guest_field(subject, "guest_type")
    home_tenant_id = _guest_field(subject, "home_tenant_id")
    service_principal_id = _id(subject.service_principal_id, "subject.service_principal_id")
    if service_principal_id and (user_id or group_ids or role_ids or subject.guest):
        raise InvalidRequest(
            "subject",
            "a service principal sign-in carries no user fields "
            "(user_id, group_ids, role_ids, guest)",
        )
    ip_address, ip_value, ip_version = _ip(network.ip_address)
    device_id = _id(device.device_id, "device.device_id")
    trust_type = _enum(TRUST_TYPES, device.trust_type, "device.trust_type")
    geo = network.geo
    return SignInContext(
        request_id=_request_id(request.request_id),
        time=_seconds(request.time, "time") if request.HasField("time") else now,
        user_id=user_id,
        group_ids=group_ids,
        role_ids=role_ids,
        guest=subject.guest,
        guest_type=guest_type,
        home_tenant_id=home_tenant_id,
        service_principal_id=service_principal_id,
        application_id=_id(target.application_id, "target.application_id"),
        user_action=_id(target.user_action, "target.user_action"),
        authentication_contexts=_ids(
            target.authentication_contexts,
            "target.authentication_contexts",
            MAX_AUTHENTICATION_CONTEXTS,
        ),
        ip_address=ip_address,
        ip_value=ip_value,
        ip_version=ip_version,
        country=_country(geo.country),
        latitude=_bounded(geo, "latitude", -90.0, 90.0),
        longitude=_bounded(geo, "longitude", -180.0, 180.0),
        accuracy_radius_km=_bounded(geo, "accuracy_radius_km", 0.0, math.inf),
        compliant_network=network.compliant_network,
        device_id=device_id,
        platform=_enum(PLATFORMS, device.platform, "device.platform"),
        compliant=device.compliant,
        trust_type=trust_type,
        device_properties=_device_properties(device, device_id, trust_type),
        client_app_type=_enum(CLIENT_APP_TYPES, request.client_app_type, "client_app_type"),
        methods=frozenset(
            AUTHENTICATION_METHOD_MODES.get(m.lower(), m)
            for m in _strings(authn.methods, "authentication.methods", MAX_METHODS)
        ),
        authenticated_at=(
            _seconds(authn.authenticated_at, "authentication.authenticated_at")
            if authn.HasField("authenticated_at")
            else None
        ),
        satisfied_controls=frozenset(
            _strings(
                authn.satisfied_controls,
                "authentication.satisfied_controls",
                MAX_SATISFIED_CONTROLS,
            )
        ),
        flow=_enum(FLOWS, authn.flow, "authentication.flow"),
        sign_in_risk=_enum(RISK_LEVELS, risk.sign_in, "risk.sign_in"),
        user_risk=_enum(RISK_LEVELS, risk.user, "risk.user"),
        service_principal_risk=_enum(RISK_LEVELS, risk.service_principal, "risk.service_principal"),
        insider_risk=_enum(INSIDER_RISK_LEVELS, risk.insider, "risk.insider"),
        explain=request.explain,
    )


def _request_id(value: str) -> str:
    if not value:
        return uuid.uuid4().hex
    if len(value) > MAX_REQUEST_ID:
        raise InvalidRequest("request_id", f"longer than {MAX_REQUEST_ID} characters")
    if not value.isprintable():
        raise InvalidRequest("request_id", f"not printable: {value!r}")
    return value


def _seconds(ts: Timestamp, field: str) -> float:
    if not (_MIN_SECONDS <= ts.seconds <= _MAX_SECONDS and 0 <= ts.nanos < 1_000_000_000):
        raise InvalidRequest(field, f"not a valid timestamp: seconds={ts.seconds} nanos={ts.nanos}")
    return ts.seconds + ts.nanos / 1e9


def _enum(table: Mapping[int, str], number: int, field: str) -> str:
    try:
        return table[number]
    except KeyError:
        raise InvalidRequest(field, f"unknown enum number {number}") from None


def _text(value: str, field: str) -> str:
    if len(value) > MAX_STRING:
        raise InvalidRequest(field, f"longer than {MAX_STRING} characters")
    return value.strip()


def _id(value: str, field: str) -> str:
    return _text(value, field).lower()


def _strings(values: Sequence[str], field: str, limit: int) -> list[str]:
    """The non-empty stripped strings of a repeated field, checked against its limits."""
    if len(values) > limit:
        raise InvalidRequest(field, f"more than {limit} entries ({len(values)})")
    if max(map(len, values), default=0) > MAX_STRING:
        at = next(i for i, value in enumerate(values) if len(value) > MAX_STRING)
        raise InvalidRequest(f"{field}[{at}]", f"longer than {MAX_STRING} characters")
    return [stripped for value in values if (stripped := value.strip())]


def _ids(values: Sequence[str], field: str, limit: int) -> frozenset[str]:
    """Like `_strings`, lower-cased, as a set (one pass: group lists are long)."""
    if len(values) > limit or (values and max(map(len, values)) > MAX_STRING):
        _strings(values, field, limit)  # raises, naming the field and the entry
    ids = {value.strip().lower() for value in values}
    ids.discard("")
    return frozenset(ids)


def _guest_field(subject: pb.Subject, name: Literal["guest_type", "home_tenant_id"]) -> str:
    """A guest's type (canonical Graph spelling) or home tenant; only a guest may have one."""
    field = f"subject.{name}"
    value = _text(getattr(subject, name), field)
    if not value:
        return ""
    if not subject.guest:
        raise InvalidRequest(field, "set only for a guest (subject.guest)")
    if name == "home_tenant_id":
        return value.lower()
    canonical = GUEST_TYPES.get(value.lower())
    if canonical is None:
        known = ", ".join(GUEST_TYPES.values())
        raise InvalidRequest(field, f"unknown guest type {value!r} (known: {known})")
    return canonical


def _ip(text: str) -> tuple[str, int | None, int]:
    """Normalised text, integer value and version of an address ("", None, 0 when absent)."""
    raw = _text(text, "network.ip_address")
    if not raw:
        return "", None, 0
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(raw)
    except ValueError:
        raise InvalidRequest(
            "network.ip_address", f"not an IPv4 or IPv6 address: {text!r}"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address), int(address), address.version


def _country(value: str) -> str:
    country = _text(value, "network.geo.country").upper()
    if country and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise InvalidRequest("network.geo.country", f"not an ISO 3166-1 alpha-2 code: {value!r}")
    return country


def _bounded(
    geo: pb.Geo,
    name: Literal["latitude", "longitude", "accuracy_radius_km"],
    low: float,
    high: float,
) -> float | None:
    """An optional Geo number, which must lie in [low, high] (and not be NaN) when present."""
    if not geo.HasField(name):
        return None
    value: float = getattr(geo, name)
    if not low <= value <= high or math.isinf(value):
        raise InvalidRequest(f"network.geo.{name}", f"must be in [{low:g}, {high:g}]: {value}")
    return value


def _device_properties(device: pb.Device, device_id: str, trust_type: str) -> dict[str, str]:
    """Device-filter properties, keys lower-cased; an unregistered device has none (all null)."""
    attributes = device.attributes
    if not (device_id or trust_type or attributes):
        return {}
    if len(attributes) > MAX_DEVICE_ATTRIBUTES:
        raise InvalidRequest(
            "device.attributes", f"more than {MAX_DEVICE_ATTRIBUTES} entries ({len(attributes)})"
        )
    properties: dict[str, str] = {}
    for key, value in attributes.items():
        name = _text(key, "device.attributes").lower()
        field = f"device.attributes[{key!r}]"
        if not name:
            raise InvalidRequest(field, "a property name cannot be empty")
        if name in _TYPED_PROPERTIES:
            raise InvalidRequest(field, f"set by {_TYPED_PROPERTIES[name]}, not by an attribute")
        if name in properties:
            raise InvalidRequest(field, "given twice (property names are case-insensitive)")
        properties[name] = _text(value, field)
    if device_id:
        properties["deviceid"] = device_id
    properties["iscompliant"] = "True" if device.compliant else "False"
    if trust_type:
        properties["trusttype"] = trust_type
    return properties
