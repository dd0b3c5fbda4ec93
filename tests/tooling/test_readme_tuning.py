"""README's "Tuning your policies" shows real output: these tests regenerate and compare it.

Also a one-round run of benchmarks/bench_tooling.py, so the script cannot rot (no timing is
asserted).
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pdp.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Tuning your policies") : README.index("## Performance")]


def block(command: str) -> str:
    """The output shown under `$ command` in the section."""
    match = re.search(rf"```\n\$ {re.escape(command)}\n(.*?)```", SECTION, re.DOTALL)
    assert match, f"no output block for {command!r}"
    return match.group(1)


def untimed(text: str) -> str:
    """Output without its run time."""
    return re.sub(r"\(\d+\.\d\d s\)|in \d+\.\d\d s", "(time)", text)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run `pdp ARGS` from the repository root; its stdout."""
    main(list(args))
    return capsys.readouterr().out


def test_pdp_test_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite run shown is what the example suites print."""
    monkeypatch.chdir(ROOT)
    out = run(capsys, "test", "examples/ai-workspace-tests")
    assert untimed(out) == untimed(block("pdp test examples/ai-workspace-tests"))


def test_pdp_lint_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every line of the lint excerpt is a line lint prints, in the same order."""
    monkeypatch.chdir(ROOT)
    out = untimed(run(capsys, "lint", "examples/ai-workspace")).splitlines()
    shown = untimed(block("pdp lint examples/ai-workspace")).splitlines()
    at = 0
    for line in (x for x in shown if x not in ("...", "")):
        assert line in out[at:], line
        at = out.index(line, at) + 1


def test_pdp_report_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The report shown is what the documented sample log gives."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = importlib.import_module("bench_tooling")
    monkeypatch.chdir(tmp_path)
    bench.write_log(tmp_path / "audit-sample.jsonl", 20_000)
    out = run(capsys, "report", "audit-sample.jsonl", "--since", "2026-11-20T00:00:00Z")
    assert out.rstrip("\n") == block(
        "pdp report audit-sample.jsonl --since 2026-11-20T00:00:00Z"
    ).rstrip("\n")


def test_benchmark_script_runs(tmp_path: Path) -> None:
    """bench_tooling.py runs one small round and prints both tables."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_tooling.py"),
            "--records",
            "2000",
            "--rounds",
            "1",
            "--quick",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| examples/ai-workspace | 12 |" in done.stdout
    assert "| full | 2,000 |" in done.stdout
    assert "goal: >= 200,000 records/s" in done.stdout
