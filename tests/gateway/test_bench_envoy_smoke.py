"""A tiny run of benchmarks/bench_envoy.py, so the benchmark cannot rot (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]


def test_envoy_benchmark_runs_both_configurations_and_prints_its_ratios() -> None:
    """Both Envoys answer every request with 200; the table and the ratio lines are printed."""
    require_tool("h2load", "nghttp2-client")
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_envoy.py"),
            "--requests",
            "50",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| with ext_authz | 50 | 200: 50 |" in done.stdout
    assert "| without ext_authz | 50 | 200: 50 |" in done.stdout
    assert "Envoy CPU per request added by ext_authz" in done.stdout
