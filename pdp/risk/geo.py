"""Geo resolution: where a sign-in's IP address is, when the gateway did not say.

Owns the order in which a place is found: the gateway's `network.geo` (latitude/longitude
already in the context) wins; else ONE lookup in a MaxMind-format database (GeoLite2/GeoIP2
City or Country), read with the `maxminddb` C reader, memory-mapped; else unknown. Addresses that
name no place (private, reserved, loopback, link-local, multicast, unspecified, CGNAT) are
never looked up. A database that cannot be opened fails at construction (a startup error),
never during a request; a lookup miss leaves the context as it was.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Mapping
from typing import Final

import maxminddb

from pdp.context import SignInContext
from pdp.errors import StartupError

_V4_MAPPED_PREFIX: Final = 0xFFFF  # ::ffff:a.b.c.d is 0xffff in bits 32..47
_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, shared address space
_CGNAT_FIRST: Final = int(_CGNAT.network_address)
_CGNAT_LAST: Final = int(_CGNAT.broadcast_address)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class GeoDatabaseError(StartupError):
    """The GeoIP database at `path` could not be opened; `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"--geoip-db {path}: cannot open the GeoIP database: {reason}")
        self.path = path
        self.reason = reason


def has_location(ctx: SignInContext) -> bool:
    """Whether the sign-in has coordinates (from the gateway or the database)."""
    return ctx.latitude is not None and ctx.longitude is not None


class GeoResolver:
    """Fills a sign-in's country and coordinates from its IP address.

    `db_path` None or "" resolves nothing (contexts pass through unchanged). The reader
    memory-maps the file and is safe to share between threads and tasks.
    """

    def __init__(self, db_path: str | None) -> None:
        self._reader: maxminddb.Reader | None = None
        self._ipv6_capable = False
        self.database_type = ""  # e.g. "GeoIP2-City", for the startup log
        if db_path:
            self._reader = _open(db_path)
            metadata = self._reader.metadata()
            self._ipv6_capable = metadata.ip_version == 6
            self.database_type = metadata.database_type

    def close(self) -> None:
        """Unmap the database; later lookups resolve nothing."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """`ctx` with the database's country and location filled in where it lacked them."""
        if self._reader is None or has_location(ctx):
            return ctx
        address = self._routable_address(ctx)
        if address is None:
            return ctx
        record = self._reader.get(address)
        if not isinstance(record, Mapping):
            return ctx
        country = ctx.country or _country(record)
        location = _location(record)
        if location is None:
            if country == ctx.country:
                return ctx
            return dataclasses.replace(ctx, country=country)
        latitude, longitude, radius = location
        return dataclasses.replace(
            ctx,
            country=country,
            latitude=latitude,
            longitude=longitude,
            accuracy_radius_km=radius,
        )

    def _routable_address(self, ctx: SignInContext) -> Address | None:
        """The address to look up, or None when it names no place or the DB cannot hold it."""
        value, version = ctx.ip_value, ctx.ip_version
        if value is None:
            return None
        if version == 6 and value >> 32 == _V4_MAPPED_PREFIX:  # defensive: the transport unwraps
            value, version = value & 0xFFFF_FFFF, 4
        address: Address
        if version == 4:
            if _CGNAT_FIRST <= value <= _CGNAT_LAST:
                return None
            address = ipaddress.IPv4Address(value)
        elif version == 6:
            if not self._ipv6_capable:  # an IPv4-only database raises on IPv6 lookups
                return None
            address = ipaddress.IPv6Address(value)
        else:
            return None
        if (
            not address.is_global  # private (RFC 1918, ULA, documentation, ...) and CGNAT
            or address.is_reserved
            or address.is_loopback
            or address.is_link_local
            or address.is_multicast  # is_global is True for most multicast
            or address.is_unspecified
        ):
            return None
        return address


def _open(path: str) -> maxminddb.Reader:
    """Open `path` memory-mapped with the C reader (the pure-Python one if it is missing)."""
    try:
        try:
            return maxminddb.open_database(path, maxminddb.MODE_MMAP_EXT)
        except ValueError:  # the C extension is not available here
            return maxminddb.open_database(path, maxminddb.MODE_AUTO)
    except FileNotFoundError:
        raise GeoDatabaseError(path, "no such file") from None
    except IsADirectoryError:
        raise GeoDatabaseError(path, "is a directory") from None
    except PermissionError:
        raise GeoDatabaseError(path, "permission denied") from None
    except (OSError, RuntimeError, ValueError) as exc:  # InvalidDatabaseError is a RuntimeError
        raise GeoDatabaseError(path, f"not a MaxMind DB file ({exc})") from None


def _country(record: Mapping[str, object]) -> str:
    """The record's ISO country code, upper-case, "" when it has none."""
    country = record.get("country")
    if isinstance(country, Mapping):
        code = country.get("iso_code")
        if isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha():
            return code.upper()
    return ""


def _location(record: Mapping[str, object]) -> tuple[float, float, float | None] | None:
    """Latitude, longitude and accuracy radius (km) of a City record; None without them."""
    location = record.get("location")
    if not isinstance(location, Mapping):
        return None
    latitude = _number(location.get("latitude"), 90.0)
    longitude = _number(location.get("longitude"), 180.0)
    if latitude is None or longitude is None:
        return None
    radius = _number(location.get("accuracy_radius"), math.inf)
    return latitude, longitude, None if radius is None or radius < 0 else radius


def _number(value: object, bound: float) -> float | None:
    """`value` as a finite float within [-bound, bound], else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or abs(number) > bound:
        return None
    return number
