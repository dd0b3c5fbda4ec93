"""End to end: `pdp serve` as a subprocess answers exactly what `pdp evaluate` prints."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def read_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The next stdout line of `process`, or fail (with its stderr) after `timeout` seconds."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if selector.select(timeout) and (line := process.stdout.readline()):
            return line
    process.kill()
    _, err = process.communicate()
    pytest.fail(f"pdp serve printed nothing within {timeout}s; stderr:\n{err}")


@pytest.fixture
def server(policy_dir: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A running `pdp serve` on a free port, and its HOST:PORT; killed if a test leaves it."""
    command = [sys.executable, "-m", "pdp", "serve", "--policies", str(policy_dir)]
    process = subprocess.Popen(
        [*command, "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(process, START_TIMEOUT_S)
        assert line.startswith("listening on 127.0.0.1:"), line
        yield process, line.removeprefix("listening on ").strip()
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def evaluate_with_cli(policy_dir: Path, request_file: Path) -> dict[str, Any]:
    """What `pdp evaluate` prints for a request file, parsed."""
    command = [sys.executable, "-m", "pdp", "evaluate", "--policies", str(policy_dir)]
    done = subprocess.run(
        [*command, "--request", str(request_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def test_server_answers_what_evaluate_prints_and_stops_on_sigterm(
    server: tuple[subprocess.Popen[str], str],
    policy_dir: Path,
    tmp_path: Path,
    sign_ins: dict[str, dict[str, Any]],
) -> None:
    """For every shared sign-in the gRPC answer equals the CLI's; SIGTERM exits 0 in time."""
    process, address = server
    with grpc.insecure_channel(address) as channel:
        stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
        for name, data in sign_ins.items():
            request_file = tmp_path / f"{name}.json"
            request_file.write_text(json.dumps(data), encoding="utf-8")
            request = json_format.ParseDict(data, pb.EvaluateRequest())
            response = stub.Evaluate(request, timeout=10)
            over_grpc = json.loads(json_format.MessageToJson(response))
            assert over_grpc == evaluate_with_cli(policy_dir, request_file), name
            assert over_grpc["decision"] == f"DECISION_{name.split('_')[0].upper()}", name
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=STOP_TIMEOUT_S) == 0
    assert process.stderr is not None
    records = [json.loads(line) for line in process.stderr.read().splitlines()]
    serving = next(r for r in records if r["event"] == "serving")
    assert serving["port"] == int(address.rsplit(":", 1)[1])
    assert serving["policy_count"] == 4
    assert [r["event"] for r in records][-2:] == ["stopping", "stopped"]
