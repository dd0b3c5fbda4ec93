"""The compact form of one sign-in in a user's history, shared by both risk stores.

A record is 50 bytes, `>dddd2s16s`: time (epoch seconds), latitude, longitude, accuracy
radius (km), each a big-endian float64 so a record round-trips exactly; the country (two
ASCII letters, NUL NUL when unknown); the IP address (16 bytes, IPv4 as `::ffff:a.b.c.d`,
all zero when unknown). Times are clamped to >= 0, so for records byte order IS time order
(ties broken by the remaining bytes), which is exactly how a Redis sorted set scored by the
time orders its members. Both stores keep and return these bytes, so they compare times,
windows and addresses identically and cannot disagree.

A history is records concatenated, oldest first: `struct.iter_unpack(RECORD.format, blob)`
decodes it in one C call, without an object per field. `Place` (the evidence a detection
reports) is built only for the records a detection names.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Final

from pdp.context import SignInContext
from pdp.risk.assessment import Place

RECORD: Final = struct.Struct(">dddd2s16s")
SIZE: Final = RECORD.size  # 50: under Redis's 64-byte listpack limit for sorted set members
TIME: Final = struct.Struct(">d")  # a record's first 8 bytes
COUNTRY_AT: Final = 32  # offset of the two country bytes
NO_COUNTRY: Final = b"\0\0"
NO_IP: Final = bytes(16)
_V4_MAPPED: Final = 0xFFFF << 32
_V4_PREFIX: Final = bytes(10) + b"\xff\xff"


def clamp_time(time: float) -> float:
    """`time` as records hold it: never negative (nor -0.0, nor NaN)."""
    return time if time > 0.0 else 0.0


def ip_bytes(value: int | None, version: int) -> bytes:
    """The 16-byte form of an address given as (integer, version); NO_IP when unknown."""
    if value is None or version not in {4, 6}:
        return NO_IP
    return (value | _V4_MAPPED if version == 4 else value).to_bytes(16, "big")


def _ip_bytes_of(text: str) -> bytes:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return NO_IP
    return ip_bytes(int(address), address.version)


def _country_bytes(country: str) -> bytes:
    return country.encode("ascii", "replace")[:2].ljust(2, b"\0") if country else NO_COUNTRY


def pack(  # noqa: PLR0917 - a record's fields, in their order
    time: float,
    latitude: float,
    longitude: float,
    accuracy_km: float,
    country: str,
    ip: bytes,
) -> bytes:
    """A record from its fields (`ip` as `ip_bytes` gives it)."""
    return RECORD.pack(
        clamp_time(time), latitude, longitude, accuracy_km, _country_bytes(country), ip
    )


def of_context(ctx: SignInContext) -> bytes:
    """The record of a located sign-in (latitude and longitude must be set)."""
    assert ctx.latitude is not None  # the caller checked both
    assert ctx.longitude is not None
    return pack(
        ctx.time,
        ctx.latitude,
        ctx.longitude,
        ctx.accuracy_radius_km or 0.0,
        ctx.country,
        ip_bytes(ctx.ip_value, ctx.ip_version),
    )


def of_place(place: Place) -> bytes:
    """The record of a `Place` (its address parsed; an unparsable one is unknown)."""
    return pack(
        place.time,
        place.latitude,
        place.longitude,
        place.accuracy_radius_km,
        place.country,
        _ip_bytes_of(place.ip_address) if place.ip_address else NO_IP,
    )


def ip_text(ip: bytes) -> str:
    """The text form of a record's address, "" when unknown."""
    if ip == NO_IP:
        return ""
    if ip[:12] == _V4_PREFIX:
        return str(ipaddress.IPv4Address(ip[12:]))
    return str(ipaddress.IPv6Address(ip))


def to_place(record: bytes | tuple[float, float, float, float, bytes, bytes]) -> Place:
    """The `Place` a record (bytes, or its unpacked tuple) holds."""
    fields = RECORD.unpack(record) if isinstance(record, bytes) else record
    time, latitude, longitude, accuracy, country, ip = fields
    return Place(time, latitude, longitude, accuracy, country.rstrip(b"\0").decode(), ip_text(ip))


def to_places(blob: bytes) -> list[Place]:
    """Every record of a concatenated history, as Places (for tests and tools)."""
    return [to_place(fields) for fields in RECORD.iter_unpack(blob)]


def time_of(record: bytes) -> float:
    """A record's time."""
    time: float = TIME.unpack_from(record)[0]
    return time


def country_of(record: bytes) -> bytes:
    """A record's two country bytes (NO_COUNTRY when unknown)."""
    return record[COUNTRY_AT : COUNTRY_AT + 2]
