"""A very short run of benchmarks/load.py, so the load test cannot rot.

It starts the null server and a real `pdp serve`, drives both with h2load for about a
second per run on 127.0.0.1, and checks that the report comes out. No timing is asserted.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ensure_h2load() -> str:
    """The h2load binary; installed from Debian (nghttp2-client) when missing and possible."""
    found = shutil.which("h2load")
    apt_get = shutil.which("apt-get")
    if found is None and apt_get is not None and os.geteuid() == 0:
        subprocess.run(
            [apt_get, "install", "-y", "-q", "nghttp2-client"],
            capture_output=True,
            check=False,
            timeout=600,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which("h2load")
    if found is None:
        pytest.skip("h2load is not installed and cannot be installed (apt-get nghttp2-client)")
    return found


def test_load_script_prints_its_report() -> None:
    """`python benchmarks/load.py` runs both servers end to end and prints table and goals."""
    ensure_h2load()
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
