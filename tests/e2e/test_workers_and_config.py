"""Several workers on one port with combined /metrics; README's options table vs --help."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pdp_process import PdpProcess, channel, requests_of

from pdp.config import SERVE_OPTIONS
from pdp.v1 import pdp_pb2_grpc

README = Path(__file__).resolve().parents[2] / "README.md"
CALLS = 40


def test_two_workers_share_the_port_are_restarted_and_metrics_add_up(
    policy_dir: Path, tmp_path: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """Two workers serve one port; a killed one is replaced; /metrics sums every worker."""
    audit = tmp_path / "audit.jsonl"
    with PdpProcess(policy_dir, "--workers", "2", "--audit-log", str(audit)) as pdp:
        pdp.wait_ready(60)
        first = {r["worker"]: r["pid"] for r in pdp.matching("serving")}
        assert sorted(first) == [0, 1]
        os.kill(first[0], signal.SIGKILL)
        pdp.wait_for("worker_died", worker=0, exitcode=-signal.SIGKILL)
        pdp.wait_for("worker_replaced", worker=0, timeout=60)

        request = requests_of(sign_ins)["challenge_mfa"]
        for _ in range(CALLS):  # a new connection each time: the kernel picks a worker
            with channel(pdp.address) as ch:
                pdp_pb2_grpc.PolicyDecisionServiceStub(ch).Evaluate(request, timeout=10)
        deadline = time.monotonic() + 10  # each worker publishes its counts every second
        while (m := pdp.metrics()).value("pdp_decisions_total") < CALLS:
            assert time.monotonic() < deadline, "the workers' counts never reached /metrics"
            time.sleep(0.2)
        assert m.value("pdp_decisions_total", decision="challenge") == CALLS
        assert m.value("grpc_server_handled_total", grpc_method="Evaluate", grpc_code="OK") == CALLS
        assert m.value("pdp_worker_restarts_total") == 1
        assert m.value("pdp_policies_loaded") == 4
        assert len(m.labels("pdp_policy_set_info")) == 1

        assert pdp.stop(timeout=30) == 0
        served = [r["decisions"] for r in pdp.matching("stopped") if "worker" in r]
        assert len(served) == 2
        assert sum(served) == CALLS
        assert min(served) > 0  # both workers answered
        assert len(audit.read_text("utf-8").splitlines()) == CALLS


def test_workers_refuse_to_start_on_an_invalid_policy_set(tmp_path: Path) -> None:
    """A worker that cannot load its first policy set makes the supervisor exit 1."""
    (tmp_path / "bad.json").write_text('{"id": "x", "state": "sometimes"}', encoding="utf-8")
    command = [sys.executable, "-m", "pdp", "serve", "--policies", str(tmp_path / "bad.json")]
    command += ["--workers", "2", "--listen", "127.0.0.1:0", "--metrics-port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "worker_failed_to_start" in done.stderr
    assert "listening on" not in done.stdout


def _readme_rows() -> dict[str, str]:
    """The README configuration table: `--flag METAVAR` -> meaning [env; default]."""
    rows = {}
    for line in README.read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`--"):
            flag, env, default, meaning = (c.strip("`") for c in cells)
            rows[flag] = f"{meaning} [env: {env}; default: {default}]"
    return rows


def _help_rows() -> dict[str, str]:
    """`pdp serve --help`'s options: `--flag METAVAR` -> help text, whitespace collapsed."""
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    text = done.stdout.split("options:", 1)[1]
    entries = re.split(r"\n  (?=-)", "\n" + text)
    rows = {}
    for entry in entries:
        words = " ".join(entry.split())
        if not words.startswith("--") or words.startswith("-h"):
            continue
        for option in SERVE_OPTIONS:
            if words.startswith(option.invocation + " "):
                rows[option.invocation] = words.removeprefix(option.invocation).strip()
    return rows


def test_readme_configuration_table_is_what_serve_help_says() -> None:
    """Every `pdp serve` option is in README with the same env variable, default and meaning."""
    assert _readme_rows() == _help_rows()
    assert len(_help_rows()) == len(SERVE_OPTIONS)
