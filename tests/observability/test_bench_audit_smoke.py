"""benchmarks/bench_audit.py runs end to end and prints its figures (no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_audit_quick_prints_put_and_writer_figures() -> None:
    """`--quick` prints the put() rounds table, the medians and the writer's rate."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_audit.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "| round | put() ns | deque.append ns | put() - floor ns |" in done.stdout
    assert "median: put() " in done.stdout
    assert "lines per CPU second" in done.stdout
