"""`pdp --version`, `pdp evaluate`'s output shape, and entry points whose reader leaves early."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pdp

ROOT = Path(__file__).resolve().parents[1]
POLICIES = str(ROOT / "examples" / "ai-workspace")
REQUESTS = ROOT / "examples" / "requests"
ONE = str(REQUESTS / "engineer-prod-from-office.json")
TWO = str(REQUESTS / "engineer-prod-from-home.json")


def pdp_command(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m pdp ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "pdp", *args],
        capture_output=True,
        encoding="utf-8",
        check=False,
        cwd=ROOT,
        timeout=60,
    )


def test_version_is_the_package_version() -> None:
    """`pdp --version` prints the version the installed distribution carries."""
    done = pdp_command("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"pdp {pdp.__version__}\n"
    assert importlib.metadata.version("pdp-conditional-access") == pdp.__version__


def test_evaluate_prints_an_object_for_one_request_and_an_array_for_several() -> None:
    """One --request gives its response object; two give an array of both, in order."""
    one = pdp_command("evaluate", "--policies", POLICIES, "--request", ONE)
    assert one.returncode == 0, one.stderr
    single = json.loads(one.stdout)
    assert isinstance(single, dict)
    assert single["decision"] == "DECISION_ALLOW"
    both = pdp_command("evaluate", "--policies", POLICIES, "--request", ONE, "--request", TWO)
    assert both.returncode == 0, both.stderr
    pair = json.loads(both.stdout)
    assert [r["decision"] for r in pair] == ["DECISION_ALLOW", "DECISION_DENY"]
    assert pair[0] == single


ENTRY_POINTS = {
    "config table": [sys.executable, "-m", "pdp.config"],
    "evaluate": [sys.executable, "-m", "pdp", "evaluate", "--policies", POLICIES, "--request", ONE],
    "validate": [sys.executable, "-m", "pdp", "validate", "--policies", POLICIES],
    "serve help": [sys.executable, "-m", "pdp", "serve", "--help"],
    "version": [sys.executable, "-m", "pdp", "--version"],
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_closed_stdout_ends_quietly(name: str) -> None:
    """With stdout's reader gone before anything is written, the command exits 0, no traceback."""
    proc = subprocess.Popen(
        ENTRY_POINTS[name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader leaves at once, as `| head -0` would
    stderr = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
