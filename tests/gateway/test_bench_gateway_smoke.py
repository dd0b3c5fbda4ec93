"""A tiny run of benchmarks/bench_gateway.py, so the benchmark cannot rot (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gateway_benchmark_runs_and_prints_its_verdict() -> None:
    """The script runs both paths on a few calls and prints the table and the goal line."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gateway.py"), "--iterations", "100"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "| gRPC Check |" in done.stdout
    assert "Check over Evaluate per call (gRPC p50)" in done.stdout
