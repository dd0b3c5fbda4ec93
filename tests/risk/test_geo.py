"""Geo resolution (pdp.risk.geo) against small MaxMind-format databases written by the tests.

The City database is an IPv6 one holding IPv4 too (as GeoLite2 is); it also has records for
non-routable ranges, so a test that finds nothing there proves the address was never looked
up. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import Any

import maxminddb
import netaddr
import pytest
from mmdb_writer import MMDBWriter  # type: ignore[import-untyped]

from pdp.context import SignInContext
from pdp.risk.geo import GeoDatabaseError, GeoResolver, has_location

PARIS_RECORD = {
    "country": {"iso_code": "FR"},
    "location": {"latitude": 48.85, "longitude": 2.35, "accuracy_radius": 20},
}
NEW_YORK_RECORD = {
    "country": {"iso_code": "US"},
    "location": {"latitude": 40.71, "longitude": -74.01, "accuracy_radius": 100},
}
GERMANY_ONLY = {"country": {"iso_code": "DE"}}  # a City DB record without a location
NOT_ROUTABLE = [
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "::1/128",
]


def _write(path: Path, ip_version: int, database_type: str, networks: dict[str, Any]) -> Path:
    """Write `networks` (CIDR -> record) as a MaxMind DB at `path`."""
    writer = MMDBWriter(
        ip_version=ip_version,
        database_type=database_type,
        ipv4_compatible=ip_version == 6,
        int_type="u32",
    )
    for cidr, record in networks.items():
        writer.insert_network(netaddr.IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


@pytest.fixture(scope="module")
def city_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IPv6 GeoIP2-City database with IPv4 and IPv6 places and non-routable decoys."""
    networks: dict[str, Any] = {
        "81.2.69.0/24": PARIS_RECORD,
        "2a01:e0a::/32": PARIS_RECORD,
        "2600:1f18::/32": NEW_YORK_RECORD,
        "5.9.0.0/16": GERMANY_ONLY,
    }
    networks.update(dict.fromkeys(NOT_ROUTABLE, PARIS_RECORD))
    path = tmp_path_factory.mktemp("geo") / "city.mmdb"
    return _write(path, 6, "GeoIP2-City", networks)


@pytest.fixture(scope="module")
def country_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An IPv4-only GeoLite2-Country database: countries, no locations."""
    path = tmp_path_factory.mktemp("geo") / "country.mmdb"
    return _write(path, 4, "GeoLite2-Country", {"81.2.69.0/24": {"country": {"iso_code": "GB"}}})


@pytest.fixture(scope="module")
def city(city_db: Path) -> GeoResolver:
    """A resolver over the City database."""
    return GeoResolver(str(city_db))


def sign_in(ip: str = "", **fields: Any) -> SignInContext:
    """A context as the transport builds it: IPv4-mapped addresses unwrapped."""
    if not ip:
        return SignInContext(request_id="r-1", time=1_777_636_800.0, **fields)
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return SignInContext(
        request_id="r-1",
        time=1_777_636_800.0,
        ip_address=str(address),
        ip_value=int(address),
        ip_version=address.version,
        **fields,
    )


def where(ctx: SignInContext) -> tuple[str, float | None, float | None, float | None]:
    """Country, latitude, longitude and accuracy radius of a context."""
    return ctx.country, ctx.latitude, ctx.longitude, ctx.accuracy_radius_km


def test_ipv4_lookup_fills_country_and_location(city: GeoResolver) -> None:
    """An IPv4 address found in the City database gets its country, place and radius."""
    assert where(city.enrich(sign_in("81.2.69.142"))) == ("FR", 48.85, 2.35, 20.0)


def test_ipv6_lookup_fills_country_and_location(city: GeoResolver) -> None:
    """An IPv6 address is looked up in the same database."""
    assert where(city.enrich(sign_in("2600:1f18::7"))) == ("US", 40.71, -74.01, 100.0)
    assert where(city.enrich(sign_in("2a01:e0a:1::1"))) == ("FR", 48.85, 2.35, 20.0)


def test_ipv4_mapped_address_is_found_as_ipv4(city: GeoResolver) -> None:
    """::ffff:a.b.c.d reaches the IPv4 record, unwrapped by the transport or, failing that, here."""
    assert where(city.enrich(sign_in("::ffff:81.2.69.142"))) == ("FR", 48.85, 2.35, 20.0)
    raw = int(ipaddress.IPv6Address("::ffff:81.2.69.142"))
    wrapped = sign_in(ip_address="::ffff:81.2.69.142", ip_value=raw, ip_version=6)
    assert where(city.enrich(wrapped)) == ("FR", 48.85, 2.35, 20.0)


@pytest.mark.parametrize(
    "ip",
    [
        "10.1.2.3",
        "100.64.0.1",
        "100.127.255.254",
        "127.0.0.1",
        "169.254.1.1",
        "192.168.1.1",
        "224.0.0.251",
        "240.0.0.1",
        "0.0.0.0",  # noqa: S104 - the unspecified address as data, not a bind
        "fd00::1",
        "fe80::1",
        "ff02::1",
        "::1",
        "::",
        "::ffff:10.1.2.3",
    ],
)
def test_non_routable_addresses_have_no_location(city: GeoResolver, ip: str) -> None:
    """Private, CGNAT, loopback, link-local, multicast, reserved, unspecified: no lookup."""
    ctx = sign_in(ip)
    assert city.enrich(ctx) is ctx


def test_cgnat_neighbours_are_looked_up(tmp_path: Path) -> None:
    """Only 100.64.0.0/10 is shared address space: 100.63.x and 100.128.x are public."""
    path = _write(
        tmp_path / "edges.mmdb",
        6,
        "GeoIP2-City",
        {"100.63.255.0/24": PARIS_RECORD, "100.128.0.0/24": NEW_YORK_RECORD},
    )
    resolver = GeoResolver(str(path))
    assert resolver.enrich(sign_in("100.63.255.255")).country == "FR"
    assert resolver.enrich(sign_in("100.128.0.1")).country == "US"


def test_gateway_geo_wins_over_the_database(city: GeoResolver) -> None:
    """A context that already has coordinates from the gateway is returned as it is."""
    ctx = sign_in("81.2.69.142", country="GB", latitude=51.5, longitude=-0.12)
    assert city.enrich(ctx) is ctx


def test_country_from_the_database_only_when_missing(city: GeoResolver) -> None:
    """The gateway's country is kept; the database still supplies the location."""
    ctx = city.enrich(sign_in("81.2.69.142", country="GB"))
    assert where(ctx) == ("GB", 48.85, 2.35, 20.0)


def test_city_record_without_location_gives_country_only(city: GeoResolver) -> None:
    """A record with a country but no location fills the country and leaves no location."""
    ctx = city.enrich(sign_in("5.9.1.1"))
    assert where(ctx) == ("DE", None, None, None)
    assert not has_location(ctx)
    known = sign_in("5.9.1.1", country="AT")
    assert city.enrich(known) is known


def test_country_database_gives_country_only(country_db: Path) -> None:
    """A Country database fills the country (when missing) and never a location."""
    resolver = GeoResolver(str(country_db))
    assert resolver.database_type == "GeoLite2-Country"
    assert where(resolver.enrich(sign_in("81.2.69.142"))) == ("GB", None, None, None)
    known = sign_in("81.2.69.142", country="FR")
    assert resolver.enrich(known) is known


def test_ipv6_in_an_ipv4_only_database_is_a_miss(country_db: Path) -> None:
    """An IPv6 address against an IPv4-only database resolves nothing (and does not raise)."""
    ctx = sign_in("2a01:e0a::1")
    assert GeoResolver(str(country_db)).enrich(ctx) is ctx


def test_a_miss_leaves_the_context_unchanged(city: GeoResolver) -> None:
    """An address the database does not hold comes back as the same object."""
    for ip in ("8.8.8.8", "2001:4860::8888"):
        ctx = sign_in(ip)
        assert city.enrich(ctx) is ctx


def test_no_ip_address_is_unchanged(city: GeoResolver) -> None:
    """A sign-in without an IP address has nothing to look up."""
    ctx = sign_in()
    assert city.enrich(ctx) is ctx


@pytest.mark.parametrize("db_path", [None, ""])
def test_no_database_resolves_nothing(db_path: str | None) -> None:
    """Without a database path every context passes through unchanged."""
    ctx = sign_in("81.2.69.142")
    assert GeoResolver(db_path).enrich(ctx) is ctx


def test_missing_database_is_a_startup_error_naming_the_path(tmp_path: Path) -> None:
    """A database path that does not exist fails at construction, naming the path."""
    missing = str(tmp_path / "GeoLite2-City.mmdb")
    with pytest.raises(GeoDatabaseError, match=re.escape(missing)) as caught:
        GeoResolver(missing)
    assert caught.value.path == missing
    assert caught.value.reason == "no such file"


@pytest.mark.parametrize("content", [b"", b"not a MaxMind database"], ids=["empty", "garbage"])
def test_corrupt_database_is_a_startup_error(tmp_path: Path, content: bytes) -> None:
    """A file that is not a MaxMind DB fails at construction with a GeoDatabaseError."""
    bad = tmp_path / "bad.mmdb"
    bad.write_bytes(content)
    with pytest.raises(GeoDatabaseError, match="not a MaxMind DB file") as caught:
        GeoResolver(str(bad))
    assert caught.value.path == str(bad)


def test_directory_is_a_startup_error(tmp_path: Path) -> None:
    """A directory given as the database is refused at construction."""
    with pytest.raises(GeoDatabaseError) as caught:
        GeoResolver(str(tmp_path))
    assert caught.value.path == str(tmp_path)


def test_reader_is_memory_mapped_c_extension_first(
    city_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is opened with MODE_MMAP_EXT first, MODE_AUTO only if that is refused."""
    modes: list[int] = []
    real_open = maxminddb.open_database

    def spy(path: str, mode: int) -> maxminddb.Reader:
        modes.append(mode)
        if mode == maxminddb.MODE_MMAP_EXT:
            raise ValueError("MODE_MMAP_EXT requires the maxminddb.extension module")
        return real_open(path, mode)

    monkeypatch.setattr(maxminddb, "open_database", spy)
    resolver = GeoResolver(str(city_db))
    assert modes == [maxminddb.MODE_MMAP_EXT, maxminddb.MODE_AUTO]
    assert where(resolver.enrich(sign_in("81.2.69.142")))[0] == "FR"


def test_closed_resolver_resolves_nothing(city_db: Path) -> None:
    """After close() contexts pass through unchanged, and closing twice is harmless."""
    resolver = GeoResolver(str(city_db))
    resolver.close()
    resolver.close()
    ctx = sign_in("81.2.69.142")
    assert resolver.enrich(ctx) is ctx


def test_has_location_needs_both_coordinates() -> None:
    """A context has a location only with both latitude and longitude."""
    assert has_location(sign_in(latitude=0.0, longitude=0.0))
    assert not has_location(sign_in(latitude=48.85))
    assert not has_location(dataclasses.replace(sign_in(), longitude=2.35))
