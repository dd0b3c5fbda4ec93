"""The rules for a sign-in's values, which every way in applies when it builds a SignInContext.

Evaluate's protobuf fields, Envoy's headers and token claims and the command line's JSON all
become a `SignInContext` through these functions, so a value is accepted, normalised and
refused the same way whichever door it came through: strings stripped and at most
`MAX_STRING` characters, ids lower-cased (Graph ids are case-insensitive GUIDs), lists
within their limits, IP addresses parsed once (IPv4-mapped IPv6 unwrapped, zone ids
refused), countries as ISO 3166 alpha-2, coordinates within range, device properties as
device filters read them. Each function raises `InvalidRequest` naming the field (`field`,
the caller's name for where the value came from) and the bad value. No clock, no I/O.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from pdp.errors import InvalidRequest
from pdp.vocabulary import AUTHENTICATION_METHOD_MODES, GUEST_TYPES

MAX_STRING: Final = 1024
MAX_REQUEST_ID: Final = 128
MAX_GROUP_IDS: Final = 4096
MAX_ROLE_IDS: Final = 512
MAX_AUTHENTICATION_CONTEXTS: Final = 100
MAX_METHODS: Final = 32
MAX_SATISFIED_CONTROLS: Final = 256
MAX_DEVICE_ATTRIBUTES: Final = 64
# The range google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_EPOCH_S: Final = -62_135_596_800
MAX_EPOCH_S: Final = 253_402_300_799
# Device-filter properties that typed device fields set; an attribute may not set them too.
TYPED_DEVICE_PROPERTIES: Final[Mapping[str, str]] = {
    "deviceid": "device.device_id",
    "iscompliant": "device.compliant",
    "trusttype": "device.trust_type",
}

Address = tuple[str, int | None, int]  # normalised text, integer value, version (4, 6; 0 none)
NO_ADDRESS: Final[Address] = ("", None, 0)
_ADDRESS_CACHE_LIMIT: Final = 16_384
_ADDRESS_TEXT_CACHED: Final = 64
_addresses: dict[str, Address] = {}  # text as sent -> parsed; addresses repeat a lot
_V4_MAPPED: Final = b"\x00" * 10 + b"\xff\xff"
_V4_COMPATIBLE: Final = b"\x00" * 12


def clip(value: str, limit: int = MAX_STRING) -> str:
    """`value` cut to `limit` characters (what an audit record keeps of an invalid request)."""
    return value if len(value) <= limit else value[:limit] + "..."


def text(value: str, field: str) -> str:
    """`value` stripped; refuses one longer than MAX_STRING."""
    if len(value) > MAX_STRING:
        raise InvalidRequest(field, f"longer than {MAX_STRING} characters")
    return value.strip()


def ident(value: str, field: str) -> str:
    """An id: stripped and lower-cased."""
    if len(value) > MAX_STRING:
        raise InvalidRequest(field, f"longer than {MAX_STRING} characters")
    return value.strip().lower()


def strings(values: Sequence[str], field: str, limit: int) -> list[str]:
    """The non-empty stripped strings of a list, checked against its limits."""
    if len(values) > limit:
        raise InvalidRequest(field, f"more than {limit} entries ({len(values)})")
    if values and max(map(len, values)) > MAX_STRING:
        at = next(i for i, value in enumerate(values) if len(value) > MAX_STRING)
        raise InvalidRequest(f"{field}[{at}]", f"longer than {MAX_STRING} characters")
    return [stripped for value in values if (stripped := value.strip())]


def idset(values: Sequence[str], field: str, limit: int) -> frozenset[str]:
    """Like `strings`, lower-cased, as a set (one pass: group lists are long)."""
    if not values:
        return frozenset()
    if len(values) > limit or max(map(len, values)) > MAX_STRING:
        strings(values, field, limit)  # raises, naming the field and the entry
    ids = set(map(str.lower, map(str.strip, values)))  # C loops: group lists are long
    ids.discard("")
    return frozenset(ids)


def methods(values: Sequence[str], field: str) -> frozenset[str]:
    """Authentication methods, in their Graph spellings where pdp knows them."""
    if not values:
        return frozenset()
    modes = AUTHENTICATION_METHOD_MODES
    return frozenset(modes.get(m.lower(), m) for m in strings(values, field, MAX_METHODS))


def request_id(value: str, field: str = "request_id") -> str:
    """The caller's request id (printable, at most MAX_REQUEST_ID characters), else a new one."""
    if not value:
        return uuid.uuid4().hex
    if len(value) > MAX_REQUEST_ID:
        raise InvalidRequest(field, f"longer than {MAX_REQUEST_ID} characters")
    if not value.isprintable():
        raise InvalidRequest(field, f"not printable: {value!r}")
    return value


def epoch(seconds: float, field: str) -> float:
    """Epoch seconds within the range a protobuf Timestamp can hold."""
    if not (math.isfinite(seconds) and MIN_EPOCH_S <= seconds <= MAX_EPOCH_S):
        raise InvalidRequest(field, f"not a time in seconds since the epoch: {seconds}")
    return seconds


def guest_type(value: str, field: str) -> str:
    """A guestOrExternalUserTypes member in its Graph spelling ("" when not given)."""
    value = text(value, field)
    if not value:
        return ""
    canonical = GUEST_TYPES.get(value.lower())
    if canonical is None:
        known = ", ".join(GUEST_TYPES.values())
        raise InvalidRequest(field, f"unknown guest type {value!r} (known: {known})")
    return canonical


def ip_address(value: str, field: str) -> Address:
    """An IPv4 or IPv6 address: normalised text, integer value and version.

    IPv4-mapped IPv6 is unwrapped to IPv4. Zone ids (`fe80::1%eth0`) and every other
    non-address are refused. "" gives NO_ADDRESS.
    """
    found = _addresses.get(value)
    if found is not None:
        return found
    raw = text(value, field)
    if not raw:
        return NO_ADDRESS
    try:
        if ":" in raw:
            packed = socket.inet_pton(socket.AF_INET6, raw)
            if packed.startswith(_V4_MAPPED):
                packed = packed[12:]
        else:
            packed = socket.inet_pton(socket.AF_INET, raw)
    except (OSError, ValueError):  # ValueError: an embedded NUL character
        raise InvalidRequest(field, f"not an IPv4 or IPv6 address: {value!r}") from None
    if len(packed) == 4:
        parsed: Address = (socket.inet_ntop(socket.AF_INET, packed), int.from_bytes(packed), 4)
    elif packed.startswith(_V4_COMPATIBLE):  # inet_ntop writes these as ::a.b.c.d
        parsed = (str(ipaddress.IPv6Address(packed)), int.from_bytes(packed), 6)
    else:
        parsed = (socket.inet_ntop(socket.AF_INET6, packed), int.from_bytes(packed), 6)
    if len(value) <= _ADDRESS_TEXT_CACHED:  # an address with spaces around it, at most
        if len(_addresses) >= _ADDRESS_CACHE_LIMIT:
            _addresses.clear()
        _addresses[value] = parsed
    return parsed


def country(value: str, field: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-case ("" when not given)."""
    code = text(value, field).upper()
    if code and not (len(code) == 2 and code.isascii() and code.isalpha()):
        raise InvalidRequest(field, f"not an ISO 3166-1 alpha-2 code: {value!r}")
    return code


def bounded(value: float, field: str, low: float, high: float) -> float:
    """A number in [low, high] (finite, not NaN)."""
    if not low <= value <= high or math.isinf(value):
        raise InvalidRequest(field, f"must be in [{low:g}, {high:g}]: {value}")
    return value


def device_properties(
    attributes: Iterable[tuple[str, str]],
    count: int,
    *,
    device_id: str,
    compliant: bool,
    trust_type: str,
    field: str,
) -> dict[str, str]:
    """Device-filter properties, keys lower-cased; an unregistered device has none (all null).

    `attributes` are (property, value) pairs (`count` of them), `field` names where they
    came from; the typed values set deviceId, isCompliant and trustType.
    """
    if not (device_id or trust_type or count):
        return {}
    if count > MAX_DEVICE_ATTRIBUTES:
        raise InvalidRequest(field, f"more than {MAX_DEVICE_ATTRIBUTES} entries ({count})")
    properties: dict[str, str] = {}
    for key, value in attributes:
        name = text(key, field).lower()
        where = f"{field}[{key!r}]"
        if not name:
            raise InvalidRequest(where, "a property name cannot be empty")
        if name in TYPED_DEVICE_PROPERTIES:
            raise InvalidRequest(
                where, f"set by {TYPED_DEVICE_PROPERTIES[name]}, not by an attribute"
            )
        if name in properties:
            raise InvalidRequest(where, "given twice (property names are case-insensitive)")
        properties[name] = text(value, where)
    if device_id:
        properties["deviceid"] = device_id
    properties["iscompliant"] = "True" if compliant else "False"
    if trust_type:
        properties["trusttype"] = trust_type
    return properties
