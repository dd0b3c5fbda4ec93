"""RedisStore against real throwaway servers: atomicity, one command per call, outages, secrets.

Outage runs go through the assessor, since the failure mode is its to apply: a stream of
evaluations while the server is killed, restarted, paused (SIGSTOP) and resumed. Budgets
are asserted with 20 ms of slack, for a noisy two-core machine.
"""

from __future__ import annotations

import asyncio
import random
import time
import traceback
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
import structlog

from pdp.context import SignInContext
from pdp.engine.decision import Verdict
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet
from pdp.risk.assessment import Assessment, Place
from pdp.risk.assessor import DEGRADED_CLOSED, DEGRADED_OPEN, build_assessor
from pdp.risk.redis_store import CircuitBreaker, RedisStore, encode, key_of, parse_redis_url
from pdp.risk.settings import FailureMode, RiskSettings, TravelSettings
from pdp.risk.store import RiskStoreUnavailable

if TYPE_CHECKING:
    from conftest import RedisServer, Servers

PARIS = Place(1_000.0, 48.8566, 2.3522, 20.0, "FR", "192.0.2.10")
SLACK_S = 0.020
# Commands the script runs inside its one EVALSHA (commandstats counts them too).
SCRIPT_COMMANDS = {"zrange", "zadd", "zremrangebyrank", "pexpire"}
# Not data commands: connection setup, and the test's own INFO.
HOUSEKEEPING = {"info", "hello", "auth", "select", "ping", "client", "client|setinfo"}


def store_for(url: str, *, budget_ms: float = 2_000, size: int = 20, **extra: object) -> RedisStore:
    """A RedisStore from settings, with a generous budget unless told otherwise."""
    settings = RiskSettings(
        redis_url=url,
        redis_timeout_ms=budget_ms,
        travel=TravelSettings(history_size=size),
        **extra,
    )
    return RedisStore.from_settings(settings)


def test_concurrent_calls_keep_exactly_the_newest_n(redis_server: RedisServer) -> None:
    """1,000 concurrent calls for one user leave exactly the newest 20, none lost or doubled."""
    times = [float(t) for t in range(1, 1_001)]
    random.Random(3).shuffle(times)

    async def scenario() -> list[list[Place]]:
        store = store_for(redis_server.url, budget_ms=20_000)
        try:
            seen = await asyncio.gather(
                *(
                    store.record_and_fetch("u-1", replace(PARIS, time=t), record=True, now=t)
                    for t in times
                )
            )
            seen.append(await store.record_and_fetch("u-1", None, record=False, now=0))
            return seen
        finally:
            await store.close()

    *answers, final = asyncio.run(scenario())
    assert [p.time for p in final] == [float(t) for t in range(981, 1_001)]
    assert all(len(h) <= 20 and h == sorted(h, key=lambda p: p.time) for h in answers)
    with redis_server.client() as c:
        assert c.zcard(key_of("u-1")) == 20
        assert 0 < c.pttl(key_of("u-1")) <= 30 * 86_400_000


def test_each_call_is_one_evalsha(redis_server: RedisServer) -> None:
    """INFO commandstats: one EVALSHA per call, and no data command outside the script."""
    calls = 300

    async def scenario() -> tuple[dict[str, int], dict[str, int]]:
        store = store_for(redis_server.url)
        try:
            warm = [PARIS] * 40  # open the pool's connections and load the script first
            await asyncio.gather(
                *(
                    store.record_and_fetch(f"w{i}", p, record=True, now=0)
                    for i, p in enumerate(warm)
                )
            )
            before = redis_server.commandstats()
            for i in range(calls // 2):  # one after another, then all at once
                await store.record_and_fetch("u-1", replace(PARIS, time=i), record=True, now=i)
            await asyncio.gather(
                *(
                    store.record_and_fetch(f"u-{i % 7}", PARIS, record=i % 2 == 0, now=i)
                    for i in range(calls // 2)
                )
            )
            return before, redis_server.commandstats()
        finally:
            await store.close()

    before, after = asyncio.run(scenario())
    delta = {name: after[name] - before.get(name, 0) for name in after}
    assert delta["evalsha"] == calls
    assert delta["zrange"] == calls  # each script reads once...
    assert delta["zadd"] == calls // 2 + calls // 4  # ...and writes only when recording
    others = {n: d for n, d in delta.items() if d and n not in SCRIPT_COMMANDS | {"evalsha"}}
    assert set(others) <= HOUSEKEEPING, others


def test_script_reloads_after_a_flush(redis_server: RedisServer) -> None:
    """After SCRIPT FLUSH (as after a restart) the next call loads the script and succeeds."""

    async def scenario() -> list[Place]:
        store = store_for(redis_server.url)
        try:
            await store.record_and_fetch("u-1", PARIS, record=True, now=0)
            with redis_server.client() as c:
                c.script_flush()
            return await store.record_and_fetch("u-1", None, record=False, now=0)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [PARIS]


def test_members_are_compact_and_the_set_stays_listpack(redis_server: RedisServer) -> None:
    """Twenty IPv4 sign-ins: members of at most 64 bytes, the small (listpack) encoding."""
    far = Place(1_740_821_400.125, -33.8688, -151.2093, 1000.0, "AU", "255.255.255.255")
    assert len(encode(far)[1]) <= 64

    async def scenario() -> None:
        store = store_for(redis_server.url)
        try:
            for i in range(20):
                await store.record_and_fetch(
                    "u-1", replace(far, time=far.time + i), record=True, now=0
                )
        finally:
            await store.close()

    asyncio.run(scenario())
    with redis_server.client() as c:
        assert c.object("encoding", key_of("u-1")) in {b"listpack", b"ziplist"}  # 7.x / 6.x


def test_breaker_opens_after_repeated_failures_and_probes_once() -> None:
    """Closed -> open after N failures -> one probe after the reset time -> closed on success."""
    now = [0.0]
    breaker = CircuitBreaker(failures=3, reset_s=2.0, clock=lambda: now[0])
    assert [breaker.failed() for _ in range(3)] == [False, False, True]
    assert breaker.state == "open"
    assert not breaker.allow()
    now[0] = 2.5
    assert breaker.allow()
    assert breaker.state == "half-open"
    assert not breaker.allow()  # one probe at a time
    breaker.failed()  # the probe failed: open for another period
    assert not breaker.allow()
    now[0] = 4.6
    assert breaker.allow()
    assert breaker.succeeded()
    assert breaker.state == "closed"
    assert breaker.allow()
    assert breaker.opened == 1


def _sign_in(n: int) -> SignInContext:
    return SignInContext(
        request_id=f"r-{n}",
        time=1_000.0 + n,
        user_id="u-outage",
        application_id="a-1",
        client_app_type="browser",
        ip_address="192.0.2.10",
        ip_value=0xC000020A,
        ip_version=4,
        country="FR",
        latitude=48.8566,
        longitude=2.3522,
        accuracy_radius_km=20.0,
    )


@pytest.mark.parametrize("mode", [FailureMode.OPEN, FailureMode.CLOSED])
def test_outages_cost_at_most_the_budget_and_recover_by_themselves(
    redis_servers: Servers, risky_compiled: CompiledPolicySet, mode: FailureMode
) -> None:
    """Killed, restarted, paused, resumed: no call raises or overruns; the mode applies."""
    server = redis_servers.start()
    budget_ms, reset_s = 25.0, 0.25
    settings = RiskSettings(
        redis_url=server.url,
        redis_timeout_ms=budget_ms,
        failure_mode=mode,
        breaker_failures=3,
        breaker_reset_s=reset_s,
    )
    expected = DEGRADED_CLOSED if mode is FailureMode.CLOSED else DEGRADED_OPEN
    log: list[tuple[str, float, float, Assessment]] = []  # phase, start, duration, answer
    opened: list[int] = []

    async def scenario() -> None:
        assessor = build_assessor(settings)
        n = 0

        async def call(phase: str) -> Assessment:
            nonlocal n
            n += 1
            started = time.perf_counter()
            assessment = await assessor.assess(_sign_in(n), risky_compiled)
            log.append((phase, started, time.perf_counter() - started, assessment))
            await asyncio.sleep(0.003)
            return assessment

        async def until_recovered(phase: str) -> None:
            deadline = time.monotonic() + reset_s + 2.0
            while (await call(phase)).degraded:
                assert time.monotonic() < deadline, f"no recovery after {phase}"

        try:
            assert await assessor.store.ping()
            for _ in range(10):
                assert not (await call("up")).degraded
            server.kill()
            for _ in range(60):
                await call("killed")
            server.restart()
            await until_recovered("restarted")
            server.pause()
            for _ in range(60):
                await call("paused")
            server.resume()
            await until_recovered("resumed")
            for _ in range(10):
                assert not (await call("up again")).degraded
            assert isinstance(assessor.store, RedisStore)
            opened.append(assessor.store.breaker.opened)
        finally:
            if server.paused:
                server.resume()
            await assessor.close()

    asyncio.run(scenario())
    slowest = max(duration for _, _, duration, _ in log)
    assert slowest < budget_ms / 1000 + SLACK_S, f"a call took {slowest * 1000:.1f} ms"
    for phase in ("killed", "paused"):
        during = [(start, d, a) for p, start, d, a in log if p == phase]
        assert all(a == expected for _, _, a in during), phase
        # The breaker keeps the outage cheap: only the calls before it opened, and its
        # probes (about one per reset period), waited for Redis at all.
        span = during[-1][0] - during[0][0]
        waited = sum(d > budget_ms / 2000 for _, d, _ in during)
        assert waited <= 3 + span / reset_s + 2, (phase, waited, span)
    assert opened == [2]  # once per outage; each recovery closed it
    verdict = evaluate(_sign_in(0), risky_compiled, expected).verdict
    assert verdict is (Verdict.DENY if mode is FailureMode.CLOSED else Verdict.ALLOW)


SECRET = "s3cret-Pa55-do-not-log"  # noqa: S105 - a throwaway server's password
ADMIN = "admin-Pa55-do-not-log"


def test_passwords_never_appear_in_errors_or_logs(
    redis_servers: Servers, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL user's password stays out of exception text, tracebacks and log records."""
    server = redis_servers.start("--requirepass", ADMIN)
    with server.client(password=ADMIN) as c:
        c.execute_command("ACL", "SETUSER", "pdp", "on", f">{SECRET}", "~pdp:*", "+@all")
    good = f"redis://pdp:{SECRET}@127.0.0.1:{server.port}/0"
    wrong = f"redis://pdp:{SECRET}-wrong@127.0.0.1:{server.port}/0"
    texts: list[str] = []

    def keep(exc: BaseException) -> None:
        texts.append("".join(traceback.format_exception(exc)))

    async def scenario() -> None:
        store = store_for(good, breaker_failures=2)
        bad = store_for(wrong)
        try:
            assert await store.record_and_fetch("u-1", PARIS, record=True, now=0) == []
            with pytest.raises(RiskStoreUnavailable) as info:
                await bad.record_and_fetch("u-1", PARIS, record=True, now=0)
            keep(info.value)
            server.kill()
            for _ in range(3):  # the second failure opens the breaker, which logs
                with pytest.raises(RiskStoreUnavailable) as info:
                    await store.record_and_fetch("u-1", PARIS, record=True, now=0)
                keep(info.value)
            assert not await store.ping()
            texts.extend((store.name, repr(parse_redis_url(good))))
        finally:
            await store.close()
            await bad.close()

    with structlog.testing.capture_logs() as events:
        asyncio.run(scenario())
    with pytest.raises(ValueError, match=r"\*\*\*") as info:
        parse_redis_url(f"redis://pdp:{SECRET}@127.0.0.1:notaport/0")
    keep(info.value)
    out, err = capfd.readouterr()
    everything = "\n".join([*texts, repr(events), out, err, caplog.text])
    assert "risk_store_breaker_open" in everything  # the logs were captured, somewhere
    assert "pdp:***@" in everything
    assert SECRET not in everything
    assert ADMIN not in everything


def test_sentinel_mode_finds_the_master(redis_servers: Servers) -> None:
    """In sentinel mode the URL names the sentinels; the store works on the master they name."""
    master = redis_servers.start()
    sentinel = redis_servers.start_sentinel(master, "pdp-risk")
    unused_port = redis_servers.start().port  # a dead sentinel: the store must skip past it
    redis_servers.started[-1].kill()
    url = f"redis://127.0.0.1:{unused_port},127.0.0.1:{sentinel.port}/0"

    async def scenario() -> list[Place]:
        store = store_for(url, redis_mode="sentinel", sentinel_service="pdp-risk")
        try:
            assert await store.ping()
            await store.record_and_fetch("u-1", PARIS, record=True, now=0)
            return await store.record_and_fetch("u-1", None, record=False, now=0)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [PARIS]
    with master.client() as c:
        assert c.zcard(key_of("u-1")) == 1


def test_overload_waits_for_a_connection_without_opening_the_breaker(
    redis_servers: Servers,
) -> None:
    """Calls that never got a connection within the budget fail alone; Redis is not blamed."""
    server = redis_servers.start()

    async def scenario() -> list[BaseException | list[Place]]:
        store = store_for(server.url, budget_ms=40, redis_pool_size=1, breaker_failures=2)
        try:
            assert await store.ping()
            server.pause()
            results = await asyncio.gather(
                *(store.record_and_fetch("u-1", PARIS, record=True, now=0) for _ in range(5)),
                return_exceptions=True,
            )
            assert store.breaker.state == "closed"  # one failure, four waits for the connection
            return results
        finally:
            server.resume()
            await store.close()

    results = asyncio.run(scenario())
    assert all(isinstance(r, RiskStoreUnavailable) for r in results)
    assert sum("no free connection" in str(r) for r in results) == 4


@pytest.mark.parametrize(
    ("url", "nodes", "shown"),
    [
        ("redis://h", [("h", 6379)], "redis://h:6379/0"),
        ("rediss://pdp:pw@h:6380/2", [("h", 6380)], "rediss://pdp:***@h:6380/2"),
        ("redis://:pw@a:1,[::1]:3", [("a", 1), ("::1", 3)], "redis://:***@a:1,[::1]:3/0"),
        ("redis://u%40x:p%3Aw@h/0", [("h", 6379)], "redis://u%40x:***@h:6379/0"),
    ],
)  # fmt: skip
def test_redis_urls_parse_and_redact(url: str, nodes: list[tuple[str, int]], shown: str) -> None:
    """Hosts, ports, TLS and database come from the URL; its redacted form hides the password."""
    address = parse_redis_url(url)
    assert list(address.nodes) == nodes
    assert address.redacted == shown
    assert address.tls is url.startswith("rediss")


@pytest.mark.parametrize(
    "url",
    ["http://h", "redis://u:pw@h:99999", "redis://u:pw@h/x", "redis://u:pw@h/0?socket_timeout=1"],
)
def test_bad_redis_urls_are_refused_without_showing_the_password(url: str) -> None:
    """A bad URL is a startup error whose message never carries the password."""
    with pytest.raises(ValueError, match="redis URL") as info:
        parse_redis_url(url)
    assert ":pw" not in str(info.value)


def test_tls_urls_build_tls_connections() -> None:
    """rediss:// connects with TLS, and its CA option reaches the connection."""
    store = store_for("rediss://pdp:pw@h:6380/0?ssl_ca_certs=/etc/ca.pem")
    pool = store.client.connection_pool
    assert pool.connection_class.__name__ == "SSLConnection"
    assert pool.connection_kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert "pw" not in repr(store.client)
