"""Every setting `pdp serve` (or `pdp evaluate`) cannot use: one line naming it, exit 1.

Each case runs the real command in a fresh process with one bad setting and checks the
exit code (2 for the one setting `pdp serve` refuses as a bad command line), that stderr
is exactly one line and names the flag, with no usage block, and that no traceback and
nothing on stdout escaped. `pdp evaluate` with Redis down keeps stdout for its JSON.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from pdp_process import free_port

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "ai-workspace"
REQUEST = ROOT / "examples" / "requests" / "engineer-dev-from-home-password-only.json"
Setup = Callable[[Path, contextlib.ExitStack], list[str]]


@dataclass(frozen=True)
class Case:
    """One bad setting: the flag the error must name, and the arguments that set it."""

    flag: str
    setup: Setup  # (tmp_path, stack) -> extra arguments
    commands: tuple[str, ...] = ("serve", "evaluate")
    exit_2_for: tuple[str, ...] = ()  # commands that refuse it as a bad command line


def _file(name: str, content: str) -> Setup:
    def setup(tmp_path: Path, _: contextlib.ExitStack) -> list[str]:
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        return [str(path)]

    return setup


def _with(flag: str, value: Setup | str) -> Setup:
    def setup(tmp_path: Path, stack: contextlib.ExitStack) -> list[str]:
        values = value(tmp_path, stack) if callable(value) else [value.format(tmp=tmp_path)]
        return [flag, *values]

    return setup


def _listening(tmp_path: Path, stack: contextlib.ExitStack) -> list[str]:
    """A port something else listens on."""
    sock = stack.enter_context(socket.socket())
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return [str(sock.getsockname()[1])]


def _listen_in_use(tmp_path: Path, stack: contextlib.ExitStack) -> list[str]:
    return [f"127.0.0.1:{_listening(tmp_path, stack)[0]}"]


PEM_GARBAGE = "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n"
CASES = {
    "geoip-db missing": Case("--geoip-db", _with("--geoip-db", "{tmp}/missing.mmdb")),
    "geoip-db not a database": Case(
        "--geoip-db", _with("--geoip-db", _file("geo.mmdb", "not a MaxMind database\n"))
    ),
    "redis-url with a wrong scheme": Case(  # serve checks the URL with its other options
        "--redis-url", _with("--redis-url", "http://x:6379"), exit_2_for=("serve",)
    ),
    "tls-cert missing": Case(
        "--tls-cert",
        lambda tmp, _: ["--tls-cert", f"{tmp}/cert.pem", "--tls-key", f"{tmp}/key.pem"],
        ("serve",),
    ),
    "tls-cert unreadable": Case(  # a folder: unreadable as a file even for root
        "--tls-cert", lambda tmp, _: ["--tls-cert", str(tmp), "--tls-key", str(tmp)], ("serve",)
    ),
    "tls-cert not a certificate": Case(
        "--tls-cert",
        lambda tmp, stack: [
            "--tls-cert",
            *_file("cert.pem", PEM_GARBAGE)(tmp, stack),
            "--tls-key",
            *_file("key.pem", PEM_GARBAGE.replace("CERTIFICATE", "PRIVATE KEY"))(tmp, stack),
        ],
        ("serve",),
    ),
    "gateway-config not YAML": Case(
        "--gateway-config", _with("--gateway-config", _file("gw.yaml", "a: [\n")), ("serve",)
    ),
    "gateway-config invalid": Case(
        "--gateway-config", _with("--gateway-config", _file("gw.yaml", "version: 2\n")), ("serve",)
    ),
    "gateway-config missing": Case(
        "--gateway-config", _with("--gateway-config", "{tmp}/missing.yaml"), ("serve",)
    ),
    "audit-log in a missing folder": Case(
        "--audit-log", _with("--audit-log", "{tmp}/no/such/folder/audit.jsonl"), ("serve",)
    ),
    "listen port in use": Case("--listen", _with("--listen", _listen_in_use), ("serve",)),
    "listen port in use, two workers": Case(
        "--listen",
        lambda tmp, stack: ["--workers", "2", "--listen", *_listen_in_use(tmp, stack)],
        ("serve",),
    ),
    "listen on an address not of this host": Case(
        "--listen", _with("--listen", "192.0.2.1:5000"), ("serve",)
    ),
    "metrics-port in use": Case("--metrics-port", _with("--metrics-port", _listening), ("serve",)),
    "policies missing": Case("--policies", _with("--policies", "{tmp}/no-policies")),
}
PARAMS = [
    pytest.param(command, case, id=f"{command}: {name}")
    for name, case in CASES.items()
    for command in case.commands
]


def _command(command: str, extra: list[str]) -> list[str]:
    base = [sys.executable, "-m", "pdp", command, "--policies", str(POLICIES)]
    if command == "serve":
        return [*base, "--listen", "127.0.0.1:0", "--metrics-port", "0", *extra]
    return [*base, "--request", str(REQUEST), *extra]


@pytest.mark.parametrize(("command", "case"), PARAMS)
def test_a_setting_that_cannot_be_used_is_one_line_naming_it_and_an_exit_code(
    tmp_path: Path, command: str, case: Case
) -> None:
    """Exit 1 (2 for a bad command line), one line on stderr naming the flag, no traceback.

    No usage block either: the operator reading a crash-looping pod's log sees the one line.
    """
    with contextlib.ExitStack() as stack:
        argv = _command(command, case.setup(tmp_path, stack))
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path
        )
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"pdp {command}: ")
    assert case.flag in lines[0]
    assert done.returncode == (2 if command in case.exit_2_for else 1)
    assert done.stdout == ""


def test_evaluate_with_redis_down_keeps_stdout_for_the_json_answer() -> None:
    """Redis unreachable: the answer is still given, stdout is only its JSON, logs on stderr."""
    down = f"redis://127.0.0.1:{free_port()}"  # nothing listens there
    done = subprocess.run(
        [*_command("evaluate", []), "--redis-url", down],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)  # nothing but the JSON
    assert answer["requestId"] == "walkthrough-3"
    assert answer["decision"] == "DECISION_CHALLENGE"
    assert "risk_store" in done.stderr  # the failure is logged, on stderr
    assert "Traceback" not in done.stderr
