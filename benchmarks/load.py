"""Load test: pdp against the null server over gRPC, on this machine (127.0.0.1 only).

    python benchmarks/load.py [--rounds 3] [--duration 4] [--warm-up 1] [--pool 1200]
                              [--pin] [--no-audit]

Starts `pdp serve` on the example policies (one worker, /metrics and the audit log to a
file when this pdp has those flags) and the null server (`null_server.py`: the same gRPC
stack answering one constant response), and drives both with two request sets:

1. the 12 requests of deploy/ghz/requests.json (the file users give ghz against a
   cluster), through h2load: one process and connection per request, --streams each;
2. a pool of distinct requests (`request_pool.py`, seeded: users, groups, IPs v4 and v6,
   devices, risk levels, service principals), through h2pool (`h2pool.c`), which cycles
   through the pool over as many connections with as many streams.

Every request of both sets is first sent once through a gRPC client: all must succeed.
Each set then runs in interleaved rounds (null, pdp, then pdp, null, ...): at saturation,
then at half of pdp's saturation throughput for both servers. Per server it prints calls,
req/s, p50/p90/p99 latency and the server's CPU µs per call (utime + stime from /proc over
the measured window), and the goals as ratios from the same run: CPU per call
null/pdp >= 0.8, throughput pdp/null >= 0.8, and p99 at half saturation pdp/null <= 1.3
at the same rate. Afterwards it checks that pdp's /metrics counted every call as OK and
that the audit file has one record per call.

The load generators share the machine with the servers. By default the OS schedules
everything on every core; `--pin` puts the servers (all their threads) on CPU 0 and the
load generators on CPU 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import grpc
import request_pool
from drivers import Bodies, H2load, H2pool, Target, Window, build_h2pool
from google.protobuf import json_format
from rounds import HEADER, RULE, Goal, Series, cpu_per_call, interleaved, p99, ratio, throughput
from servers import null_command, pdp_command, pinned_server, started

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "deploy" / "ghz" / "requests.json"
POLICIES = ROOT / "examples" / "ai-workspace"
METHOD = "/pdp.v1.PolicyDecisionService/Evaluate"
CPU_GOAL, THROUGHPUT_GOAL, P99_GOAL = 0.8, 0.8, 1.3


def load_requests(path: Path) -> list[pb.EvaluateRequest]:
    """The varied requests of the ghz data file; ghz's `{{...}}` templates get fixed ids."""
    requests = []
    for index, data in enumerate(json.loads(path.read_text("utf-8"))):
        message = json_format.ParseDict(data, pb.EvaluateRequest())
        message.request_id = f"load-{index}"
        requests.append(message)
    return requests


def pool_requests(count: int, seed: int) -> list[pb.EvaluateRequest]:
    """The seeded pool of `count` distinct requests (`request_pool.py`)."""
    return [
        json_format.ParseDict(data, pb.EvaluateRequest())
        for data in request_pool.make_pool(count, seed)
    ]


def grpc_frame(message: pb.EvaluateRequest) -> bytes:
    """One gRPC length-prefixed message: not compressed, 4-byte big-endian length, body."""
    body = message.SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def check_answers(port: int, requests: Sequence[pb.EvaluateRequest]) -> Counter[str]:
    """Call Evaluate once per request (all must succeed); the decisions seen."""
    decisions: Counter[str] = Counter()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
        for request in requests:
            try:
                response = stub.Evaluate(request, timeout=5)
            except grpc.RpcError as exc:
                raise SystemExit(
                    f"Evaluate failed for request {request.request_id}: "
                    f"{exc.code().name} {exc.details()}\n{json_format.MessageToJson(request)}"
                ) from exc
            decisions[pb.Decision.Name(response.decision)] += 1
    return decisions


def metrics_by_code(port: int) -> Counter[str]:
    """grpc_server_handled_total for Evaluate, by grpc_code, from pdp's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    codes: Counter[str] = Counter()
    for line in text.splitlines():
        if line.startswith("grpc_server_handled_total{") and 'grpc_method="Evaluate"' in line:
            code = re.search(r'grpc_code="([^"]+)"', line)
            codes[code[1] if code else "?"] += int(float(line.rsplit(" ", 1)[1]))
    return codes


@dataclasses.dataclass(frozen=True, slots=True)
class SetResult:
    """One request set measured on every server: saturation, then half of the subject's."""

    title: str
    shape: str  # connections x streams
    saturation: dict[str, Series]
    rate: float  # half the subject's saturation throughput
    half: dict[str, Series]

    def rows(self) -> list[str]:
        """The table rows, saturation first."""
        return [s.render(self.shape) for s in (*self.saturation.values(), *self.half.values())]

    def failed(self) -> int:
        """Calls answered with an error in any run."""
        return sum(s.failed for s in (*self.saturation.values(), *self.half.values()))


def measure_set(
    title: str, driver: H2load | H2pool, targets: Sequence[Target], rounds: int, subject: str
) -> SetResult:
    """Interleaved rounds at saturation, then at half of `subject`'s saturation throughput."""
    saturation = interleaved(driver.measure, targets, rounds)
    rate = saturation[subject].throughput / 2
    half = interleaved(driver.measure, targets, rounds, rate)
    return SetResult(title, driver.shape(targets[0]), saturation, rate, half)


def transport_goals(result: SetResult, subject: str, reference: str) -> list[Goal]:
    """The goals of a server against the null server: CPU, throughput, p99 at half load."""
    sat, half = result.saturation, result.half
    return [
        ratio(
            f"CPU per call {reference} / {subject}",
            sat[reference],
            sat[subject],
            cpu_per_call,
            CPU_GOAL,
            at_least=True,
            unit="µs",
        ),
        ratio(
            f"throughput {subject} / {reference}",
            sat[subject],
            sat[reference],
            throughput,
            THROUGHPUT_GOAL,
            at_least=True,
            unit="req/s",
        ),
        ratio(
            f"p99 at {result.rate:,.0f} req/s (half {subject}'s saturation) "
            f"{subject} / {reference}",
            half[subject],
            half[reference],
            p99,
            P99_GOAL,
            at_least=False,
            unit="ms",
        ),
    ]


def print_set(result: SetResult, goals: Sequence[Goal]) -> None:
    """The table and goal lines of one request set."""
    print()
    print(f"## {result.title}")
    print()
    print(HEADER)
    print(RULE)
    for row in result.rows():
        print(row)
    print()
    for goal in goals:
        print(goal.render())


def machine_line(args: argparse.Namespace) -> str:
    """Python, cores, load average and pinning: what the figures depend on."""
    pinning = "servers on CPU 0, load on CPU 1" if args.pin else "no CPU pinning"
    return (
        f"Python {platform.python_version()}, os.cpu_count()={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}, {pinning}"
    )


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options load.py and the peer comparison share."""
    parser.add_argument("--rounds", type=int, default=3, help="rounds per load (default: 3)")
    parser.add_argument("--duration", type=float, default=4, help="seconds measured per run")
    parser.add_argument("--warm-up", type=float, default=1, help="seconds before measuring")
    parser.add_argument("--streams", type=int, default=4, help="calls in flight per connection")
    parser.add_argument("--policies", type=Path, default=POLICIES, help="pdp's policy set")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, load on CPU 1")
    parser.add_argument("--no-audit", action="store_true", help="run pdp without its audit log")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse impossible settings with one line naming the option."""
    if args.rounds < 1 or args.duration <= 0 or args.warm_up < 0 or args.streams < 1:
        parser.error("--rounds and --streams must be at least 1, --duration above 0")
    if args.pin and (len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset")):
        parser.error("--pin needs two CPUs and taskset")


def find_h2load() -> str:
    """The h2load binary, or exit 2 naming the package."""
    tool = shutil.which("h2load")
    if tool is None:
        print("needs h2load: apt-get install nghttp2-client", file=sys.stderr)
        raise SystemExit(2)
    return tool


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the load test, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_arguments(parser)
    parser.add_argument("--pool", type=int, default=1200, help="distinct requests; 0: none")
    parser.add_argument("--seed", type=int, default=1, help="the pool's random seed")
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if 0 < args.pool < 1000:
        print(f"note: a pool of {args.pool} is below the 1,000 the goals are judged on")
    window = Window(args.duration, args.warm_up, args.streams, 1 if args.pin else None)
    h2load = H2load(find_h2load(), window)
    requests = load_requests(REQUESTS)
    pool = pool_requests(args.pool, args.seed) if args.pool else []
    h2pool = H2pool(build_h2pool(), window, len(requests)) if pool else None
    print(machine_line(args))
    print(
        f"{args.rounds} interleaved rounds per load, {args.duration:g} s measured per run "
        f"after {args.warm_up:g} s warm-up, one pdp worker"
        + (", pdp without its audit log (--no-audit)" if args.no_audit else "")
    )
    with tempfile.TemporaryDirectory(prefix="pdp-load-") as folder:
        tmp = Path(folder)
        pdp = pdp_command(args.policies, tmp, audit=not args.no_audit)
        sets = {"requests": requests, "pool": pool}
        titles = {
            "requests": f"{len(requests)} requests ({REQUESTS.relative_to(ROOT)})",
            "pool": f"{len(pool):,} distinct requests (request_pool.py, seed {args.seed})",
        }
        bodies = {
            name: Bodies.write(tmp / name, [grpc_frame(m) for m in messages])
            for name, messages in sets.items()
            if messages
        }
        null_cmd = pinned_server(null_command(args.policies), args.pin)
        with (
            started(null_cmd, tmp / "null.log") as null,
            started(pinned_server(pdp.command, args.pin), tmp / "pdp.log") as served,
        ):
            decisions = {}
            for name, messages in sets.items():
                check_answers(null.port, messages)
                decisions[name] = check_answers(served.port, messages)
            results = []
            for name, driver in (("requests", h2load), ("pool", h2pool)):
                if driver is None:
                    continue
                targets = [
                    Target("null", null.port, null.pid, METHOD, bodies[name]),
                    Target("pdp", served.port, served.pid, METHOD, bodies[name]),
                ]
                title = f"{titles[name]}, {driver.name}"
                results.append(measure_set(title, driver, targets, args.rounds, "pdp"))
            codes = metrics_by_code(pdp.metrics_port) if pdp.metrics_port else None
        audited = None
        if pdp.audit_log is not None and pdp.audit_log.exists():
            audited = len(pdp.audit_log.read_text("utf-8").splitlines())

    for result in results:
        print_set(result, transport_goals(result, "pdp", "null"))
    print()
    for name, counted in decisions.items():
        if sets[name]:
            print(f"pdp decisions, {name} (one pass): {dict(sorted(counted.items()))}")
    print(f"failed requests (load generators): {sum(r.failed() for r in results)}")
    if codes is not None:
        print(f"pdp /metrics, Evaluate calls by grpc_code: {dict(codes)}")
    if audited is not None:
        calls = None if codes is None else sum(codes.values())
        check = "" if calls is None else f" ({'one' if audited == calls else 'NOT one'} per call)"
        print(f"pdp audit records written: {audited:,}{check}")
    if pdp.missing:
        print(f"note: this pdp serve has no --{', --'.join(pdp.missing)}: ran without")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
