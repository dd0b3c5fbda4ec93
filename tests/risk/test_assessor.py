"""HistoryAssessor: what it skips (with no I/O at all), what it records, and what it finds.

The end-to-end case runs the engine too: Paris, then New York an hour later, is
impossible travel (high), and a policy blocking high sign-in risk then denies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING

import netaddr
import pytest
from mmdb_writer import MMDBWriter  # type: ignore[import-untyped]

from pdp.context import SignInContext
from pdp.engine.decision import Verdict
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet
from pdp.risk import record
from pdp.risk.assessment import NO_RISK, Assessment, Place
from pdp.risk.assessor import (
    DEGRADED_CLOSED,
    DEGRADED_OPEN,
    HistoryAssessor,
    build_assessor,
)
from pdp.risk.memory_store import MemoryStore
from pdp.risk.redis_store import RedisStore
from pdp.risk.settings import FailureMode, RecordPolicy, RiskSettings

if TYPE_CHECKING:
    from conftest import RedisServer, Servers

T0 = 1_740_821_400.0  # 2025-03-01T09:30:00Z
PARIS = Place(T0, 48.8566, 2.3522, 20.0, "FR", "192.0.2.10")
NEW_YORK = Place(T0 + 3_600, 40.7128, -74.006, 10.0, "US", "198.51.100.20")
VPN_EXIT = "203.0.113.77"  # inside the trusted named location of the test policy set
PROXY_RANGE = "100.24.0.0/16"  # a configured trusted range (settings.trusted_ranges)


def sign_in(place: Place, user: str = "u-1", **changes: object) -> SignInContext:
    """A browser sign-in of `user` at `place` (coordinates as the gateway would give them)."""
    address = ipaddress.ip_address(place.ip_address)
    ctx = SignInContext(
        request_id=f"r-{place.time}",
        time=place.time,
        user_id=user,
        application_id="a0000000-0000-0000-0000-000000000001",
        client_app_type="browser",
        ip_address=place.ip_address,
        ip_value=int(address),
        ip_version=address.version,
        country=place.country,
        latitude=place.latitude,
        longitude=place.longitude,
        accuracy_radius_km=place.accuracy_radius_km,
    )
    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


async def history_of(assessor: HistoryAssessor, user: str = "u-1") -> list[Place]:
    """Every sign-in the assessor's store holds for `user` around T0 (read only)."""
    sign_in = record.pack(T0, 0.0, 0.0, 0.0, "", record.NO_IP)
    found = await assessor.store.record_and_fetch(user, sign_in, record=False)
    return record.to_places(found.recent)


def data_commands(server: RedisServer, before: dict[str, int]) -> dict[str, int]:
    """Commands run since `before`, except the test's own INFO."""
    after = server.commandstats()
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return {name: d for name, d in delta.items() if d and name != "info"}


def redis_assessor(server: RedisServer, **settings: object) -> HistoryAssessor:
    """An assessor on `server`, as `pdp serve --redis-url` builds it."""
    options: dict[str, object] = {"redis_timeout_ms": 2_000, **settings}
    return build_assessor(RiskSettings(redis_url=server.url, **options))  # type: ignore[arg-type]


def test_no_policy_reading_sign_in_risk_means_no_round_trip(
    redis_server: RedisServer, riskless_compiled: CompiledPolicySet
) -> None:
    """Without a signInRiskLevels policy nothing is judged and Redis sees no command."""
    before = redis_server.commandstats()

    async def scenario() -> Assessment:
        assessor = redis_assessor(redis_server)
        try:
            assessment = await assessor.assess(sign_in(PARIS), riskless_compiled)
            assert (assessor.skipped, assessor.calls) == (1, 0)
            return assessment
        finally:
            await assessor.close()

    assert asyncio.run(scenario()) is NO_RISK
    assert data_commands(redis_server, before) == {}


def test_forced_recording_records_without_risk_policies(
    redis_server: RedisServer, riskless_compiled: CompiledPolicySet
) -> None:
    """force_record keeps the history even when no policy reads the risk: one EVALSHA."""

    async def scenario() -> tuple[list[Place], dict[str, int]]:
        assessor = redis_assessor(redis_server, force_record=True)
        try:
            assert await assessor.warm_up()
            before = redis_server.commandstats()
            await assessor.assess(sign_in(PARIS), riskless_compiled)
            ran = data_commands(redis_server, before)
            return await history_of(assessor), ran
        finally:
            await assessor.close()

    history, ran = asyncio.run(scenario())
    assert history == [PARIS]
    # One EVALSHA; inside it the script reads once and writes.
    assert ran == {"evalsha": 1, "zrange": 1, "zadd": 1, "zremrangebyrank": 1, "pexpire": 1}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"service_principal_id": "5e0-1", "user_id": ""}, id="service-principal"),
        pytest.param({"user_id": ""}, id="no-user-id"),
        pytest.param({"latitude": None, "longitude": None}, id="no-location"),
        pytest.param({"ip_address": "100.24.1.9", "ip_value": 0x6418_0109}, id="trusted-range"),
    ],
)  # fmt: skip
def test_sign_ins_without_a_judgeable_place_are_skipped_without_io(
    redis_server: RedisServer, risky_compiled: CompiledPolicySet, changes: dict[str, object]
) -> None:
    """Workload identities, anonymous, unlocated and trusted-range sign-ins: no risk, no I/O."""
    before = redis_server.commandstats()

    async def scenario() -> Assessment:
        assessor = redis_assessor(redis_server, trusted_ranges=(PROXY_RANGE,))
        try:
            return await assessor.assess(sign_in(NEW_YORK, **changes), risky_compiled)
        finally:
            await assessor.close()

    assert asyncio.run(scenario()) is NO_RISK
    assert data_commands(redis_server, before) == {}


def _judge_then(
    assessor: HistoryAssessor, compiled: CompiledPolicySet, *contexts: SignInContext
) -> list[Assessment]:
    async def scenario() -> list[Assessment]:
        try:
            return [await assessor.assess(ctx, compiled) for ctx in contexts]
        finally:
            await assessor.close()

    return asyncio.run(scenario())


def test_trusted_range_sign_in_is_neither_judged_nor_stored(
    risky_compiled: CompiledPolicySet,
) -> None:
    """New York through a trusted proxy right after Paris: no travel, and not in the history."""
    assessor = build_assessor(RiskSettings(trusted_ranges=(PROXY_RANGE,)))
    via_proxy = dataclasses.replace(NEW_YORK, ip_address="100.24.1.9")

    async def scenario() -> tuple[Assessment, list[Place]]:
        await assessor.assess(sign_in(PARIS), risky_compiled)
        second = await assessor.assess(sign_in(via_proxy), risky_compiled)
        return second, await history_of(assessor)

    second, history = asyncio.run(scenario())
    assert second is NO_RISK
    assert history == [PARIS]
    assert (assessor.calls, assessor.skipped) == (1, 1)


def test_trusted_named_location_is_not_judged(risky_compiled: CompiledPolicySet) -> None:
    """A sign-in from a named location marked isTrusted is not judged."""
    assessor = build_assessor(RiskSettings())
    via_vpn = dataclasses.replace(NEW_YORK, ip_address=VPN_EXIT)
    _, second = _judge_then(assessor, risky_compiled, sign_in(PARIS), sign_in(via_vpn))
    assert second is NO_RISK


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_paris_then_new_york_an_hour_later_is_blocked(
    backend: str, request: pytest.FixtureRequest, risky_compiled: CompiledPolicySet
) -> None:
    """Impossible travel raises pdp's sign-in risk to high, and the high-risk block applies."""
    if backend == "redis":
        assessor = redis_assessor(request.getfixturevalue("redis_server"))
    else:
        assessor = build_assessor(RiskSettings())
    paris, new_york = sign_in(PARIS), sign_in(NEW_YORK)
    first, second = _judge_then(assessor, risky_compiled, paris, new_york)
    assert first == Assessment()
    assert second.sign_in_risk == "high"
    (detection,) = second.detections
    assert (detection.kind, detection.level) == ("impossibleTravel", "high")
    assert (detection.previous, detection.current) == (PARIS, NEW_YORK)
    assert 5_000 < detection.distance_km < 5_900
    assert evaluate(paris, risky_compiled, first, paris.time).verdict is Verdict.ALLOW
    decision = evaluate(new_york, risky_compiled, second, new_york.time)
    assert decision.verdict is Verdict.DENY
    assert decision.sign_in_risk == "high"


def test_allowed_policy_records_only_what_the_decider_allowed(
    redis_server: RedisServer, risky_compiled: CompiledPolicySet
) -> None:
    """Under RecordPolicy.ALLOWED, assess only reads; record_allowed is the second round trip."""
    before: dict[str, int] = {}

    async def scenario() -> tuple[Assessment, list[Place]]:
        assessor = redis_assessor(redis_server, record=RecordPolicy.ALLOWED)
        try:
            assert await assessor.warm_up()
            before.update(redis_server.commandstats())
            await assessor.assess(sign_in(PARIS), risky_compiled)
            assert await history_of(assessor) == []
            await assessor.record_allowed(sign_in(PARIS), risky_compiled)  # Paris was allowed
            second = await assessor.assess(sign_in(NEW_YORK), risky_compiled)  # denied
            return second, await history_of(assessor)
        finally:
            await assessor.close()

    second, history = asyncio.run(scenario())
    assert second.sign_in_risk == "high"
    assert history == [PARIS]
    assert data_commands(redis_server, before)["evalsha"] == 3 + 2  # 3 by the assessor, 2 reads


def test_geo_database_places_sign_ins_the_gateway_did_not_locate(
    tmp_path: Path, risky_compiled: CompiledPolicySet
) -> None:
    """With --geoip-db, sign-ins carrying only an IP are located, recorded and judged."""
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    places = {"81.2.69.0/24": ("FR", 48.85, 2.35), "23.20.0.0/16": ("US", 40.71, -74.01)}
    for cidr, (country, lat, lon) in places.items():
        location = {"latitude": lat, "longitude": lon, "accuracy_radius": 20}
        writer.insert_network(
            netaddr.IPSet([cidr]), {"country": {"iso_code": country}, "location": location}
        )
    writer.to_db_file(str(tmp_path / "city.mmdb"))
    assessor = build_assessor(RiskSettings(geoip_db=str(tmp_path / "city.mmdb")))
    paris = dataclasses.replace(PARIS, ip_address="81.2.69.160")
    new_york = dataclasses.replace(NEW_YORK, ip_address="23.20.1.1")
    unlocated = {"country": "", "latitude": None, "longitude": None, "accuracy_radius_km": None}
    contexts = (sign_in(paris, **unlocated), sign_in(new_york, **unlocated))
    first, second = _judge_then(assessor, risky_compiled, *contexts)
    assert first == Assessment()
    (detection,) = second.detections
    assert detection.kind == "impossibleTravel"
    assert detection.previous == Place(T0, 48.85, 2.35, 20.0, "FR", "81.2.69.160")


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(FailureMode.OPEN, DEGRADED_OPEN), (FailureMode.CLOSED, DEGRADED_CLOSED)],
)
def test_unreachable_store_applies_the_failure_mode(
    redis_servers: Servers,
    risky_compiled: CompiledPolicySet,
    mode: FailureMode,
    expected: Assessment,
) -> None:
    """Redis down: open decides on upstream risk alone, closed treats pdp's risk as high."""
    server = redis_servers.start()
    server.kill()
    assessor = redis_assessor(server, failure_mode=mode, redis_timeout_ms=50)
    assessments = _judge_then(assessor, risky_compiled, sign_in(PARIS), sign_in(NEW_YORK))
    assert assessments == [expected, expected]
    assert (assessor.calls, assessor.failures, assessor.degraded) == (2, 2, 2)
    verdict = evaluate(sign_in(PARIS), risky_compiled, expected, T0).verdict
    assert verdict is (Verdict.DENY if mode is FailureMode.CLOSED else Verdict.ALLOW)


def test_build_assessor_chooses_the_store_from_settings() -> None:
    """No URL: the in-process store; a URL: Redis; bad settings fail at startup."""
    assert isinstance(build_assessor(RiskSettings()).store, MemoryStore)
    redis_backed = build_assessor(RiskSettings(redis_url="redis://127.0.0.1:1/0"))
    assert isinstance(redis_backed.store, RedisStore)
    cluster = build_assessor(
        RiskSettings(redis_url="redis://h1:7000,h2:7001", redis_mode="cluster")
    )
    assert isinstance(cluster.store, RedisStore)
    with pytest.raises(ValueError, match="--redis-mode 'replicated'"):
        build_assessor(RiskSettings(redis_url="redis://h", redis_mode="replicated"))
    with pytest.raises(ValueError, match=r"trusted range '10\.0\.0\.0/33'"):
        build_assessor(RiskSettings(trusted_ranges=("10.0.0.0/33",)))


def test_the_first_decision_after_start_costs_one_command(
    redis_server: RedisServer, risky_compiled: CompiledPolicySet
) -> None:
    """`open_assessor` warms up (script loaded): the first assessment is ONE EVALSHA."""
    from pdp.runtime.risk import open_assessor

    readings: list[dict[str, int]] = []

    async def scenario() -> None:
        settings = RiskSettings(redis_url=redis_server.url, redis_timeout_ms=2_000)
        assessor = await open_assessor(settings)
        try:
            readings.append(redis_server.commandstats())
            await assessor.assess(sign_in(PARIS), risky_compiled)
            readings.append(redis_server.commandstats())
        finally:
            await assessor.close()

    asyncio.run(scenario())
    first, after = readings
    sent = {n: after[n] - first.get(n, 0) for n in after if after[n] != first.get(n, 0)}
    sent.pop("info", None)
    assert sent == {"evalsha": 1, "zrange": 1, "zadd": 1, "zremrangebyrank": 1, "pexpire": 1}


def test_a_month_old_history_does_not_make_a_country_familiar(
    risky_compiled: CompiledPolicySet,
) -> None:
    """Five French sign-ins, then Germany 40 days later (sign-in time): nothing to compare."""
    assessor = build_assessor(RiskSettings())
    french = [dataclasses.replace(PARIS, time=T0 + i * 86_400) for i in range(5)]
    berlin = Place(T0 + 44 * 86_400, 52.52, 13.405, 20.0, "DE", "85.214.0.1")
    soon = dataclasses.replace(berlin, time=T0 + 5 * 86_400)
    *_, late = _judge_then(assessor, risky_compiled, *map(sign_in, french), sign_in(berlin))
    assert late is NO_RISK
    assessor = build_assessor(RiskSettings())
    *_, early = _judge_then(assessor, risky_compiled, *map(sign_in, french), sign_in(soon))
    assert [d.kind for d in early.detections] == ["unfamiliarLocation"]


def test_metrics_count_round_trips_failures_and_refusals_apart(
    redis_servers: Servers, risky_compiled: CompiledPolicySet
) -> None:
    """As pdp serve wires them: seconds for replies only, errors by reason, refusals alone."""
    from prometheus_client import REGISTRY

    from pdp.runtime.risk import open_assessor

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    names = (
        ("pdp_risk_store_seconds_count", {}),
        ("pdp_risk_store_errors_total", {"reason": "connection"}),
        ("pdp_risk_store_refusals_total", {}),
    )
    server = redis_servers.start()
    before = [sample(name, **labels) for name, labels in names]

    async def scenario() -> None:
        settings = RiskSettings(
            redis_url=server.url, redis_timeout_ms=2_000, breaker_min_calls=3, breaker_reset_s=60
        )
        assessor = await open_assessor(settings)
        try:
            for n in range(2):
                place = dataclasses.replace(PARIS, time=T0 + n)
                assert not (await assessor.assess(sign_in(place), risky_compiled)).degraded
            server.kill()
            for n in range(6):
                place = dataclasses.replace(PARIS, time=T0 + 10 + n)
                assert (await assessor.assess(sign_in(place), risky_compiled)).degraded
        finally:
            await assessor.close()

    asyncio.run(scenario())
    after = [sample(name, **labels) for name, labels in names]
    # 2 replies; then 2 connection failures open the breaker (2 of 4 calls), 4 refusals.
    assert [a - b for a, b in zip(after, before, strict=True)] == [2, 2, 4]
