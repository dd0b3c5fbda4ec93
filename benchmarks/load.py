"""Load test: pdp against the null server, over gRPC, on this machine (127.0.0.1 only).

    python benchmarks/load.py [--duration 10] [--warm-up 2] [--streams 4]

Starts `pdp serve` on the example policies (one worker, with /metrics and the audit log
to a file when this pdp has those flags) and, one after the other, the null server
(`null_server.py`: the same gRPC stack answering a constant response). Both get the same
varied requests, `deploy/ghz/requests.json` (the file users give ghz against a cluster),
from h2load (Debian package nghttp2-client): gRPC over h2c, each request pre-encoded as a
gRPC message (a 5-byte prefix and the serialized EvaluateRequest). h2load sends one body
per run, so one h2load process per request runs at once, each on one connection with
--streams concurrent streams. Latency is h2load's per-request time (its --log-file).

Three runs: the null server at saturation, pdp at saturation, then pdp at half its
measured saturation throughput (h2load --rps). Prints a table and the goals:
pdp throughput >= 0.8x the null server's, and pdp's p99 < 2 ms at half saturation.
With ghz (and no h2load) installed, `--driver ghz` drives the same runs through it.

The load generator shares the machine with the server. By default the OS schedules both
on every core; `--pin` puts the server (all its threads) on CPU 0 and h2load on CPU 1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = ROOT / "deploy" / "ghz" / "requests.json"
POLICIES = ROOT / "examples" / "ai-workspace"
METHOD = "/pdp.v1.PolicyDecisionService/Evaluate"
RATIO_GOAL, P99_GOAL_MS = 0.8, 2.0
VERDICT = {True: "met", False: "NOT met"}
START_TIMEOUT_S = 30.0
HEADER = "| server | load | streams | requests | req/s | p50 ms | p90 ms | p99 ms |"


@dataclasses.dataclass(frozen=True, slots=True)
class Run:
    """One measured run: what was asked and what came back."""

    server: str
    load: str
    streams: str
    requests: int
    seconds: float
    latencies_us: list[int]
    failed: int

    @property
    def throughput(self) -> float:
        """Completed requests per second over the measured duration."""
        return self.requests / self.seconds

    def percentile_ms(self, q: float) -> float:
        """The nearest-rank `q` quantile of the latencies, in ms."""
        ordered = sorted(self.latencies_us)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000

    def render(self) -> str:
        """The run as a Markdown table row."""
        p50, p90, p99 = (self.percentile_ms(q) for q in (0.5, 0.9, 0.99))
        return (
            f"| {self.server} | {self.load} | {self.streams} | {self.requests:,} "
            f"| {self.throughput:,.0f} | {p50:.2f} | {p90:.2f} | {p99:.2f} |"
        )


def load_requests(path: Path) -> list[pb.EvaluateRequest]:
    """The varied requests of the ghz data file; ghz's `{{...}}` templates get fixed ids."""
    requests = []
    for index, data in enumerate(json.loads(path.read_text("utf-8"))):
        message = json_format.ParseDict(data, pb.EvaluateRequest())
        message.request_id = f"load-{index}"
        requests.append(message)
    return requests


def grpc_frame(message: pb.EvaluateRequest) -> bytes:
    """One gRPC length-prefixed message: not compressed, 4-byte big-endian length, body."""
    body = message.SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def serve_flags() -> set[str]:
    """The long options `pdp serve --help` lists (flags may be added after this script)."""
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--help"],
        capture_output=True,
        encoding="utf-8",
        check=True,
        cwd=ROOT,
    )
    return set(re.findall(r"--([a-z][a-z0-9-]*)", done.stdout))


@contextlib.contextmanager
def started(command: list[str], log: Path) -> Iterator[int]:
    """Run a server printing `listening on HOST:PORT`; yield the port; SIGTERM it after."""
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, encoding="utf-8"
        )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        port = None
        while port is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if match := re.search(r"listening on \S+:(\d+)", line):
                port = int(match[1])
        if port is None:
            tail = log.read_text("utf-8")[-2000:]
            raise SystemExit(f"server did not start: {' '.join(command)}\n{tail}")
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_answers(port: int, requests: Sequence[pb.EvaluateRequest]) -> Counter[str]:
    """Call Evaluate once per request (all must succeed); the decisions seen."""
    decisions: Counter[str] = Counter()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
        for request in requests:
            response = stub.Evaluate(request, timeout=5)
            decisions[pb.Decision.Name(response.decision)] += 1
    return decisions


def pinned(command: list[str], cpu: int | None) -> list[str]:
    """`command` run on one CPU (taskset), or as it is when `cpu` is None."""
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


@dataclasses.dataclass(frozen=True, slots=True)
class Driver:
    """The load generator (h2load or ghz) with the request files it sends."""

    tool: str  # path of h2load or ghz
    bodies: list[Path]  # h2load: one gRPC-framed request per file
    data: Path  # ghz: the requests as one JSON array
    args: argparse.Namespace

    def measure(self, port: int, rate: float | None, label: tuple[str, str]) -> Run:
        """One run against 127.0.0.1:port: saturation (rate None) or `rate` requests/s."""
        if Path(self.tool).name == "ghz":
            return self._ghz(port, rate, label)
        return self._h2load(port, rate, label)

    def _h2load(self, port: int, rate: float | None, label: tuple[str, str]) -> Run:
        """One h2load process per body at once; their figures merged into one Run."""
        args, processes = self.args, []
        for body in self.bodies:
            command = [self.tool, "-c", "1", "-m", str(args.streams), "-D", str(args.duration)]
            if args.warm_up:
                command += ["--warm-up-time", str(args.warm_up)]
            if rate is not None:
                command += ["--rps", f"{rate / len(self.bodies):.3f}"]
            log = Path(f"{body}.log")
            log.unlink(missing_ok=True)  # h2load appends to an existing log file
            command += ["-d", str(body), "--log-file", str(log)]
            command += ["-H", "content-type: application/grpc", "-H", "te: trailers"]
            command.append(f"http://127.0.0.1:{port}{METHOD}")
            processes.append(
                subprocess.Popen(
                    pinned(command, 1 if args.pin else None),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        requests, failed, latencies = 0, 0, []
        for body, process in zip(self.bodies, processes, strict=True):
            out, _ = process.communicate(timeout=args.duration + args.warm_up + 60)
            done = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out)
            if process.returncode != 0 or done is None:
                raise SystemExit(f"h2load failed ({process.returncode}):\n{out}")
            requests += int(done[2])
            failed += int(done[1]) - int(done[2])
            for line in Path(f"{body}.log").read_text("utf-8").splitlines():
                _start, status, micros = line.split("\t")
                latencies.append(int(micros))
                failed += status != "200"
        streams = f"{len(self.bodies)}x{args.streams}"
        return Run(*label, streams, requests, float(args.duration), latencies, failed)

    def _ghz(self, port: int, rate: float | None, label: tuple[str, str]) -> Run:
        """The same run through ghz: server reflection, requests round-robin, a JSON report."""
        connections = len(self.bodies)
        total = self.args.streams * connections
        command = [self.tool, "--insecure", "--call", METHOD[1:].replace("/", ".")]
        command += ["--data-file", str(self.data), "--concurrency", str(total)]
        command += ["--connections", str(connections), "--duration", f"{self.args.duration}s"]
        command += ["--format", "json"]
        if rate is not None:
            command += ["--rps", str(round(rate))]
        command.append(f"127.0.0.1:{port}")
        done = subprocess.run(command, capture_output=True, encoding="utf-8", check=True)
        report = json.loads(done.stdout)
        requests = int(report["count"])
        spread = {
            int(p["percentage"]): int(p["latency"]) // 1000 for p in report["latencyDistribution"]
        }
        # ghz reports percentiles, not samples: 100 samples with the same quantiles.
        latencies = [spread[min((k for k in spread if k >= q), default=99)] for q in range(1, 101)]
        failed = requests - int(report.get("statusCodeDistribution", {}).get("OK", 0))
        return Run(*label, str(total), requests, int(report["total"]) / 1e9, latencies, failed)


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
class Results:
    """Everything one load test measured."""

    null: Run
    saturated: Run
    half: Run
    decisions: Counter[str]
    codes: Counter[str] | None  # from /metrics, when pdp serves them
    audited: int | None  # audit records, when pdp writes them
    missing: list[str]  # optional pdp serve flags this pdp does not have


def run_all(driver: Driver, requests: list[pb.EvaluateRequest], tmp: Path) -> Results:
    """The null server at saturation, then pdp at saturation and at half of it."""
    args = driver.args
    server_cpu = 0 if args.pin else None
    null_command = [sys.executable, str(ROOT / "benchmarks" / "null_server.py")]
    with started(pinned(null_command, server_cpu), tmp / "null.log") as port:
        check_answers(port, requests)
        null = driver.measure(port, None, ("null", "saturation"))

    flags = serve_flags()
    pdp_command = [sys.executable, "-m", "pdp", "serve", "--policies", str(args.policies)]
    pdp_command += ["--listen", "127.0.0.1:0"]
    metrics_port, audit = free_port(), tmp / "audit.jsonl"
    optional = {"metrics-port": str(metrics_port), "audit-log": str(audit), "workers": "1"}
    if args.no_audit:  # to see what the audit log costs
        del optional["audit-log"]
    for name, value in optional.items():
        if name in flags:
            pdp_command += [f"--{name}", value]
    with started(pinned(pdp_command, server_cpu), tmp / "pdp.log") as port:
        decisions = check_answers(port, requests)
        saturated = driver.measure(port, None, ("pdp", "saturation"))
        rate = saturated.throughput / 2
        half = driver.measure(port, rate, ("pdp", f"half saturation, {rate:,.0f} req/s"))
        codes = metrics_by_code(metrics_port) if "metrics-port" in flags else None
    audited = len(audit.read_text("utf-8").splitlines()) if audit.exists() else None
    missing = sorted(name for name in optional if name not in flags)
    if args.no_audit:
        print("pdp ran without --audit-log (--no-audit)")
    return Results(null, saturated, half, decisions, codes, audited, missing)


def report(results: Results) -> None:
    """Print the table, the goals and the cross-checks."""
    runs = (results.null, results.saturated, results.half)
    print()
    print(HEADER)
    print("|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(run.render())
    print()
    ratio = results.saturated.throughput / results.null.throughput
    p99 = results.half.percentile_ms(0.99)
    met_ratio, met_p99 = ratio >= RATIO_GOAL, p99 < P99_GOAL_MS
    print(f"goal: pdp / null throughput = {ratio:.2f} (>= {RATIO_GOAL}: {VERDICT[met_ratio]})")
    print(
        f"goal: pdp p99 at half saturation = {p99:.2f} ms (< {P99_GOAL_MS} ms: {VERDICT[met_p99]})"
    )
    print()
    print(f"decisions per pass over the requests: {dict(sorted(results.decisions.items()))}")
    print(f"failed requests (load generator): {sum(run.failed for run in runs)}")
    if results.codes is not None:
        print(f"pdp /metrics, Evaluate calls by grpc_code: {dict(results.codes)}")
    if results.audited is not None:
        calls = None if results.codes is None else sum(results.codes.values())
        check = (
            ""
            if calls is None
            else f" ({'one per call' if results.audited == calls else 'NOT one per call'})"
        )
        print(f"pdp audit records written: {results.audited:,}{check}")
    if results.missing:
        print(f"note: this pdp serve has no --{', --'.join(results.missing)}: ran without")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the load test, print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    parser.add_argument("--warm-up", type=int, default=2, help="seconds before measuring")
    parser.add_argument("--streams", type=int, default=4, help="concurrent streams per request")
    parser.add_argument("--policies", type=Path, default=POLICIES, help="pdp's policy set")
    parser.add_argument("--driver", choices=("auto", "h2load", "ghz"), default="auto")
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, h2load on CPU 1")
    parser.add_argument("--no-audit", action="store_true", help="run pdp without its audit log")
    args = parser.parse_args(argv)
    if args.pin and (len(os.sched_getaffinity(0)) < 2 or not shutil.which("taskset")):
        parser.error("--pin needs two CPUs and taskset")
    found = {name: shutil.which(name) for name in ("h2load", "ghz")}
    if args.driver == "auto":
        args.driver = "h2load" if found["h2load"] else "ghz"
    tool = found[args.driver]
    if tool is None:
        print("load.py: needs h2load (apt-get install nghttp2-client) or ghz", file=sys.stderr)
        return 2
    requests = load_requests(REQUESTS)
    print(
        f"Python {platform.python_version()}, os.cpu_count()={os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}, driver {args.driver}"
    )
    print(
        f"{len(requests)} varied requests ({REQUESTS.relative_to(ROOT)}), "
        f"{args.duration} s per run after {args.warm_up} s warm-up, one pdp worker, "
        f"{'server on CPU 0, load on CPU 1' if args.pin else 'no CPU pinning'}"
    )
    with tempfile.TemporaryDirectory(prefix="pdp-load-") as folder:
        tmp = Path(folder)
        bodies = [tmp / f"request-{index}.bin" for index in range(len(requests))]
        for body, message in zip(bodies, requests, strict=True):
            body.write_bytes(grpc_frame(message))
        data = tmp / "requests.json"
        data.write_text(json.dumps([json_format.MessageToDict(m) for m in requests]))
        results = run_all(Driver(tool, bodies, data, args), requests, tmp)
    report(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
