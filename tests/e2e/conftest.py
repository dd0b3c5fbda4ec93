"""Fixtures of the end-to-end tests: a started `pdp serve`, and gRPC channels to it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pdp_process import PdpProcess


@pytest.fixture
def pdp(policy_dir: Path, tmp_path: Path) -> Iterator[PdpProcess]:
    """`pdp serve` on the shared policy set, auditing to tmp_path/audit.jsonl, ready."""
    audit = tmp_path / "audit.jsonl"
    with PdpProcess(policy_dir, "--audit-log", str(audit), "--reload-interval", "0.2") as process:
        process.wait_ready()
        yield process
