"""Fixtures of the end-to-end tests: a started `pdp serve`, and gRPC channels to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from pdp_process import FAST_RECONNECT, PdpProcess

from pdp.v1 import pdp_pb2 as pb


@pytest.fixture
def pdp(policy_dir: Path, tmp_path: Path) -> Iterator[PdpProcess]:
    """`pdp serve` on the shared policy set, auditing to tmp_path/audit.jsonl, ready."""
    audit = tmp_path / "audit.jsonl"
    with PdpProcess(policy_dir, "--audit-log", str(audit), "--reload-interval", "0.2") as process:
        process.wait_ready()
        yield process


def requests_of(sign_ins: dict[str, dict[str, Any]]) -> dict[str, pb.EvaluateRequest]:
    """The shared sign-ins as EvaluateRequests, by name."""
    return {
        name: json_format.ParseDict(data, pb.EvaluateRequest()) for name, data in sign_ins.items()
    }


def channel(address: str) -> grpc.Channel:
    """A plaintext channel to `address`."""
    return grpc.insecure_channel(address, options=FAST_RECONNECT)
