"""Servers under load: start one, know its port and pid, check its answers, stop it.

`pdp serve` is run as a black box through its command line (only flags that its `--help`
lists are passed); the null server (`null_server.py`) and peers (`peers/`) beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class Server:
    """A started server process."""

    port: int
    pid: int
    log: Path  # its stderr


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_grpc(port: int, process: subprocess.Popen[str], deadline: float) -> bool:
    """Whether a gRPC channel to 127.0.0.1:port became ready before the deadline."""
    while time.monotonic() < deadline and process.poll() is None:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=1)
            except grpc.FutureTimeoutError:
                continue
            return True
    return False


@contextlib.contextmanager
def started(
    command: list[str],
    log: Path,
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Server]:
    """Run a server until the block ends (SIGTERM, then SIGKILL after 30 s).

    With `port` None the server prints `listening on HOST:PORT` on stdout when ready;
    otherwise it listens on `port` and is ready once a gRPC channel to it connects.
    """
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE if port is None else stderr,
            stderr=stderr,
            encoding="utf-8",
            env=None if env is None else dict(env),
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        if port is None:
            assert process.stdout is not None
            while port is None and time.monotonic() < deadline:
                line = process.stdout.readline()
                if not line:
                    break
                if match := re.search(r"listening on \S+:(\d+)", line):
                    port = int(match[1])
        elif not _wait_for_grpc(port, process, deadline):
            port = None
        if port is None:
            tail = log.read_text("utf-8", errors="replace")[-2000:]
            raise SystemExit(f"server did not start: {' '.join(command)}\n{tail}")
        yield Server(port, process.pid, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_flags() -> set[str]:
    """The long options `pdp serve --help` lists (flags may be added after this script)."""
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--help"],
        capture_output=True,
        encoding="utf-8",
        check=True,
        cwd=ROOT,
    )
    return set(re.findall(r"--([a-z][a-z0-9-]*)", done.stdout))


@dataclasses.dataclass(frozen=True, slots=True)
class PdpCommand:
    """`pdp serve` as the benchmarks run it: one worker, metrics and audit log when it can."""

    command: list[str]
    metrics_port: int | None  # None: this pdp has no --metrics-port
    audit_log: Path | None  # None: not asked for, or this pdp has no --audit-log
    missing: list[str]  # optional flags this pdp does not have


def pdp_command(policies: Path, folder: Path, *, audit: bool = True) -> PdpCommand:
    """The `pdp serve` command line on `policies`, with its audit log under `folder`."""
    flags = serve_flags()
    command = [sys.executable, "-m", "pdp", "serve", "--policies", str(policies)]
    command += ["--listen", "127.0.0.1:0"]
    metrics_port, audit_log = free_port(), folder / "audit.jsonl"
    optional = {"metrics-port": str(metrics_port), "audit-log": str(audit_log), "workers": "1"}
    if not audit:
        del optional["audit-log"]
    for name, value in optional.items():
        if name in flags:
            command += [f"--{name}", value]
    return PdpCommand(
        command,
        metrics_port if "metrics-port" in flags else None,
        audit_log if "audit-log" in optional and "audit-log" in flags else None,
        sorted(name for name in optional if name not in flags),
    )


def null_command(policies: Path) -> list[str]:
    """The null server answering the example request under `policies`."""
    script = ROOT / "benchmarks" / "null_server.py"
    return [sys.executable, str(script), "--policies", str(policies), "--listen", "127.0.0.1:0"]


def pinned_server(command: list[str], pin: bool) -> list[str]:
    """A server command put on CPU 0 when `pin` (the load generators go on CPU 1)."""
    return ["taskset", "-c", "0", *command] if pin else command
