"""Smoke tests for benchmarks/: the generator and a tiny benchmark run, so they cannot rot.

Nothing here asserts a timing: only that the script runs and prints its table.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from pdp.policy.load import load_policy_set

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


@pytest.fixture
def synthetic(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The generator module, imported the way bench_engine.py imports it."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    return importlib.import_module("synthetic")


def test_generated_policy_set_loads_cleanly(synthetic: ModuleType, tmp_path: Path) -> None:
    """A generated set goes through the real loader with no diagnostics at all."""
    universe = synthetic.make_universe(3)
    synthetic.write_policy_set(tmp_path / "set", universe, 60, 3)
    policy_set, diagnostics = load_policy_set(tmp_path / "set")
    assert diagnostics == []
    assert len(policy_set.policies) == 60
    assert len(policy_set.locations) == 35


def test_generator_is_deterministic(synthetic: ModuleType, tmp_path: Path) -> None:
    """The same seed gives the same policy files and the same requests."""
    for name in ("a", "b"):
        synthetic.write_policy_set(tmp_path / name, synthetic.make_universe(5), 20, 5)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    universe = synthetic.make_universe(5)
    assert synthetic.make_requests(universe, 50, 5) == synthetic.make_requests(universe, 50, 5)


def test_tiny_benchmark_prints_its_table() -> None:
    """`python benchmarks/bench_engine.py` runs end to end and prints the table and goals."""
    command = [sys.executable, str(BENCHMARKS / "bench_engine.py")]
    command += ["--iterations", "20", "--sizes", "3,12", "--requests", "30", "--seed", "7"]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, encoding="utf-8", env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "os.cpu_count()=" in out
    assert "iterations=20 per row, seed=7" in out
    assert (
        "| size | policies active | mode | p50 µs | p90 µs | p99 µs | mean µs "
        "| applied per request (avg) |"
    ) in out
    assert "| evaluate |" in out
    assert "| evaluate explain |" in out
    assert "p50(12) / p50(3) = " in out
    assert "p50(195) not measured" in out


def test_request_path_ab_runs_against_a_tree(tmp_path: Path) -> None:
    """One tiny round of this checkout against a copy of its own pdp/: the table comes out."""
    other = tmp_path / "other"
    shutil.copytree(ROOT / "pdp", other / "pdp", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "bench_request_path_ab.py"),
            "--against",
            str(other),
            "--rounds",
            "1",
            "--cold",
            "200",
            "--loops",
            "5",
        ],
        capture_output=True,
        encoding="utf-8",
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    assert "| memo-cold map |" in done.stdout
    assert "| audit render |" in done.stdout
