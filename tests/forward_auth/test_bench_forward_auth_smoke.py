"""A tiny run of benchmarks/bench_forward_auth.py, so it cannot rot (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_forward_auth_benchmark_runs_and_prints_its_table() -> None:
    """The script serves all three ways in from one pdp and prints one row for each."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_forward_auth.py"), "--calls", "30"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    for row in ("| Evaluate |", "| Check |", "| forward-auth |", "| forward-auth, new token |"):
        assert row in done.stdout
