"""A very short run of benchmarks/load.py, so the load test cannot rot.

It starts the null server and a real `pdp serve`, drives both with h2load for about a
second per run on 127.0.0.1, and checks that the report comes out. No timing is asserted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_load_script_prints_its_report() -> None:
    """`python benchmarks/load.py` runs both servers end to end and prints table and goals."""
    require_tool("h2load", "nghttp2-client")
    command = [sys.executable, str(ROOT / "benchmarks" / "load.py")]
    command += ["--duration", "1", "--warm-up", "0", "--streams", "1", "--driver", "h2load"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, encoding="utf-8", check=False, timeout=170
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "driver h2load" in out
    assert "| server | load | streams | requests | req/s | p50 ms | p90 ms | p99 ms |" in out
    assert "| null | saturation | 12x1 |" in out
    assert "| pdp | saturation | 12x1 |" in out
    assert "| pdp | half saturation, " in out
    assert "goal: pdp / null throughput = " in out
    assert "goal: pdp p99 at half saturation = " in out
    assert "failed requests (load generator): 0" in out
    assert "pdp /metrics, Evaluate calls by grpc_code: {'OK': " in out
    assert re.search(r"pdp audit records written: [\d,]+ \(one per call\)", out), out
