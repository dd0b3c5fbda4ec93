"""A very short run of benchmarks/load.py, so the load test cannot rot.

It starts the null server and a real `pdp serve`, checks every request of both sets
through a gRPC client, drives both servers with h2load (the 12 requests) and h2pool (the
pool of distinct requests) for half a second per run on 127.0.0.1, and checks that the
report comes out whole. No figure is asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench_tools import require_h2pool
from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "| server | load | connections x streams | rounds | calls | req/s "
    "| p50 ms | p90 ms | p99 ms | CPU µs/call |"
)


def test_load_script_prints_its_report(tmp_path: Path) -> None:
    """`python benchmarks/load.py` runs both servers and both request sets end to end."""
    require_tool("h2load", "nghttp2-client")
    require_h2pool(tmp_path)
    command = [sys.executable, str(ROOT / "benchmarks" / "load.py"), "--rounds", "1"]
    command += ["--duration", "0.5", "--warm-up", "0.2", "--streams", "1", "--pool", "1000"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, encoding="utf-8", check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    sections = out.split("\n## ")
    assert len(sections) == 3, out
    assert sections[1].startswith("12 requests (deploy/ghz/requests.json), h2load")
    assert sections[2].startswith("1,000 distinct requests (request_pool.py, seed 1), h2pool")
    for section in sections[1:]:
        assert HEADER in section
        for server in ("null", "pdp"):
            assert f"| {server} | saturation | 12x1 | 1 | " in section
            assert re.search(rf"\| {server} \| [\d,]+ req/s \| 12x1 \| 1 \| ", section), section
        assert re.search(r"goal: CPU per call null / pdp = [\d,.]+ / [\d,.]+ µs = ", section)
        assert re.search(r"goal: throughput pdp / null = .* \(rounds .*>= 0.8: ", section)
        assert re.search(r"goal: p99 at [\d,]+ req/s \(half pdp's saturation\) pdp / null", section)
    decisions = re.search(r"pdp decisions, pool \(one pass\): \{(.*)\}", out)
    assert decisions, out
    counts = [int(n) for n in re.findall(r": (\d+)", decisions[1])]
    assert sum(counts) == 1000
    assert "pdp decisions, requests (one pass): {'DECISION_ALLOW': 6, " in out
    assert "failed requests (load generators): 0" in out
    assert "pdp /metrics, Evaluate calls by grpc_code: {'OK': " in out
    assert re.search(r"pdp audit records written: [\d,]+ \(one per call\)", out), out
