"""The load test's instruments: CPU from /proc, h2pool, the request pool, interleaved rounds.

Each is checked against something real (a process burning CPU, a gRPC server recording
what it receives, pdp's own request parser), never against a figure of speed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from bench_tools import BENCHMARKS, require_h2pool
from google.protobuf import json_format

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

import drivers  # isort: skip - from benchmarks/, put on the path by bench_tools
import null_server  # isort: skip
import proc_cpu  # isort: skip
import request_pool  # isort: skip
import rounds  # isort: skip
import servers  # isort: skip

ROOT = BENCHMARKS.parent

BURN = """
import subprocess, sys, threading, time
def burn(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
if sys.argv[1] == "thread":
    worker = threading.Thread(target=burn, args=(0.3,))
    worker.start()
    worker.join()
else:  # "child": a child process burns the CPU
    subprocess.Popen([sys.executable, "-c", sys.argv[2], "thread"], stdout=subprocess.DEVNULL)
print("ready", flush=True)
time.sleep(60)
"""


def _burner(mode: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", BURN, mode]
    if mode == "child":
        command.append(BURN)
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def test_cpu_seconds_counts_threads_that_ended() -> None:
    """A thread's CPU stays in its process's figure after the thread has exited."""
    with _burner("thread") as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"
            assert proc_cpu.cpu_seconds(process.pid) >= 0.29
        finally:
            process.kill()


def test_cpu_seconds_counts_live_child_processes() -> None:
    """A server's worker processes count: the parent's figure includes its descendants."""
    with _burner("child") as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline() == "ready\n"  # the parent is ready at once
            deadline = time.monotonic() + 30
            while proc_cpu.cpu_seconds(process.pid) < 0.29 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(proc_cpu.process_tree(process.pid)) == 2
            assert proc_cpu.process_ticks(process.pid) / proc_cpu.TICKS_PER_SECOND < 0.25
            assert proc_cpu.cpu_seconds(process.pid) >= 0.29
        finally:
            for pid in proc_cpu.process_tree(process.pid)[1:]:
                os.kill(pid, signal.SIGKILL)
            process.kill()


class _Recorder(pdp_pb2_grpc.PolicyDecisionServiceServicer):
    """Records the request id of every call; refuses the ids that start with `bad`."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()

    def Evaluate(  # noqa: N802 - the RPC's name
        self, request: pb.EvaluateRequest, context: grpc.ServicerContext
    ) -> pb.EvaluateResponse:
        with self.lock:
            self.seen[request.request_id] += 1
        if request.request_id.startswith("bad"):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "refused")
        return pb.EvaluateResponse(request_id=request.request_id)


@pytest.fixture
def recorder() -> tuple[_Recorder, int]:
    """A real gRPC server recording what it receives; its port."""
    service = _Recorder()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pdp_pb2_grpc.add_PolicyDecisionServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, port
    server.stop(grace=None)


def _frames(ids: list[str]) -> list[bytes]:
    frames = []
    for request_id in ids:
        body = pb.EvaluateRequest(request_id=request_id).SerializeToString()
        frames.append(b"\x00" + len(body).to_bytes(4, "big") + body)
    return frames


def _h2pool(tmp_path: Path, port: int, ids: list[str], *extra: str) -> tuple[str, list[str]]:
    binary = require_h2pool(tmp_path / "cache")
    bodies = drivers.Bodies.write(tmp_path / "bodies", _frames(ids))
    log = tmp_path / "h2pool.log"
    command = [binary, "-p", str(port), "-P", "/pdp.v1.PolicyDecisionService/Evaluate"]
    command += ["-b", str(bodies.pool), "-c", "2", "-m", "2", "-D", "0.5", "-l", str(log), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, log.read_text("utf-8").splitlines()


def test_h2pool_cycles_through_every_body(tmp_path: Path, recorder: tuple[_Recorder, int]) -> None:
    """Every body of the pool reaches the server, in turn, and succeeded calls are counted."""
    service, port = recorder
    ids = [f"r-{n}" for n in range(25)]
    out, log = _h2pool(tmp_path, port, ids)
    assert set(service.seen) == set(ids)
    counts = sorted(service.seen.values())
    assert counts[-1] - counts[0] <= 1 + 4  # round robin, give or take the calls in flight
    done = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded", out)
    assert done, out
    assert int(done[2]) == int(done[3]) == len(log) > 0
    assert all(line.split("\t")[1::2] == ["200", "0"] for line in log)


def test_h2pool_counts_grpc_errors_as_failed(
    tmp_path: Path, recorder: tuple[_Recorder, int]
) -> None:
    """A call answered with a gRPC error (HTTP 200, grpc-status 7) is failed, not succeeded."""
    _, port = recorder
    out, log = _h2pool(tmp_path, port, ["good", "bad"])
    done = re.search(r"(\d+) done, (\d+) succeeded, (\d+) failed", out)
    assert done, out
    assert int(done[3]) > 0
    assert int(done[2]) + int(done[3]) == int(done[1])
    statuses = Counter(line.split("\t")[3] for line in log)
    assert set(statuses) == {"0", "7"}
    latencies, failed = drivers._read_log(tmp_path / "h2pool.log")
    assert failed == statuses["7"]
    assert len(latencies) == len(log)


def test_h2pool_holds_a_rate(tmp_path: Path, recorder: tuple[_Recorder, int]) -> None:
    """With -r, calls start at that rate, not as fast as the server answers."""
    _, port = recorder
    out, _ = _h2pool(tmp_path, port, ["a", "b", "c"], "-r", "100")
    done = re.search(r"(\d+) done", out)
    assert done, out
    assert 30 <= int(done[1]) <= 70  # 100/s for 0.5 s: about 50, never thousands


def test_pool_is_deterministic_distinct_and_varied() -> None:
    """Same seed, same pool; every request differs beyond its id; the mix covers the axes."""
    pool = request_pool.make_pool(1200, 1)
    assert pool == request_pool.make_pool(1200, 1)
    assert pool != request_pool.make_pool(1200, 2)
    contents = {json.dumps({**r, "requestId": ""}, sort_keys=True) for r in pool}
    assert len(contents) == 1200
    messages = [json_format.ParseDict(r, pb.EvaluateRequest()) for r in pool]
    addresses = [m.network.ip_address for m in messages]
    assert sum(":" in a for a in addresses) > 100
    assert sum("." in a for a in addresses) > 500
    assert sum(bool(m.subject.service_principal_id) for m in messages) > 100
    assert len({m.subject.user_id for m in messages if m.subject.user_id}) > 900
    assert {m.risk.sign_in for m in messages} == set(range(5))
    assert {m.device.platform for m in messages if m.HasField("device")} == set(range(7)) - {4}
    assert len({m.client_app_type for m in messages}) == 5
    assert any(m.HasField("authentication") and m.authentication.HasField("authenticated_at")
               for m in messages)  # fmt: skip


def test_pool_script_writes_what_load_py_sends(tmp_path: Path) -> None:
    """`request_pool.py --out` writes the same pool that load.py builds in memory."""
    out = tmp_path / "pool.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "request_pool.py"), "--count", "50", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text("utf-8")) == request_pool.make_pool(50, 1)


def _run(server: str, requests: int, cpu_s: float, latency_us: int) -> drivers.Run:
    return drivers.Run(server, "saturation", requests, 0, 1.0, (latency_us,) * 100, cpu_s)


def test_rounds_alternate_order_and_ratios_come_per_round() -> None:
    """Rounds run A B, B A, A B; a ratio is given overall and per round, against its goal."""
    calls: list[str] = []

    def measure(target: drivers.Target, rate: float | None) -> drivers.Run:
        calls.append(target.name)
        cpu = {"null": 0.2, "pdp": 0.5}[target.name] * (1 + len(calls) / 10)
        return _run(target.name, 1000, cpu, 1000)

    bodies = drivers.Bodies((), Path("unused"))
    targets = [drivers.Target(name, 1, 1, "/m", bodies) for name in ("null", "pdp")]
    series = rounds.interleaved(measure, targets, 3)
    assert calls == ["null", "pdp", "pdp", "null", "null", "pdp"]
    goal = rounds.ratio(
        "CPU", series["null"], series["pdp"], rounds.cpu_per_call, 0.8, at_least=True, unit="µs"
    )
    assert len(goal.per_round) == 3
    assert goal.value == pytest.approx(0.2 * (1.1 + 1.4 + 1.5) / (0.5 * (1.2 + 1.3 + 1.6)))
    assert not goal.met
    line = goal.render()
    assert line.startswith("goal: CPU = ")
    assert line.endswith(">= 0.8: NOT met)")
    assert "rounds 0.3" in line
    assert series["pdp"].cpu_us_per_call == pytest.approx(0.5 * 4.1 * 1e6 / 3000)


def test_pdp_command_asks_for_one_worker_metrics_and_audit(tmp_path: Path) -> None:
    """`pdp serve` runs with one worker, /metrics and an audit log, unless told --no-audit."""
    audited = servers.pdp_command(ROOT / "examples" / "ai-workspace", tmp_path)
    command = audited.command
    assert command[command.index("--workers") + 1] == "1"
    assert command[command.index("--audit-log") + 1] == str(tmp_path / "audit.jsonl")
    assert command[command.index("--metrics-port") + 1] == str(audited.metrics_port)
    assert audited.missing == []
    quiet = servers.pdp_command(ROOT / "examples" / "ai-workspace", tmp_path, audit=False)
    assert "--audit-log" not in quiet.command
    assert quiet.audit_log is None
    assert servers.pinned_server(["x"], True) == ["taskset", "-c", "0", "x"]
    assert servers.pinned_server(["x"], False) == ["x"]


def test_null_server_uses_pdp_serve_defaults() -> None:
    """The null server's limits are `pdp serve`'s defaults, as its --help states them."""
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    text = " ".join(done.stdout.split())
    rpcs = re.search(r"--max-concurrent-rpcs N .*?default: (\d+)\]", text)
    size = re.search(r"--max-message-bytes N .*?default: (\d+)\]", text)
    assert rpcs, text
    assert size, text
    assert int(rpcs[1]) == null_server.MAX_CONCURRENT_RPCS
    assert int(size[1]) == null_server.MAX_MESSAGE_BYTES
