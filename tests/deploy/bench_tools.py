"""What the benchmark tests share: benchmarks/ on the import path, and the h2pool client.

The benchmark scripts import each other as top-level modules (`python benchmarks/load.py`
puts benchmarks/ first on the path); the tests import them the same way.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from system_tools import in_ci

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import drivers  # noqa: E402 - needs the path above


def require_h2pool(cache: Path) -> str:
    """h2pool built from benchmarks/h2pool.c into `cache`; skip (fail under CI) without cc."""
    try:
        return drivers.build_h2pool(cache)
    except SystemExit as exc:
        reason = f"h2pool cannot be built (apt-get install gcc libnghttp2-dev): {exc}"
        if in_ci():
            pytest.fail(f"{reason}: CI must install them (.ci/run)", pytrace=False)
        pytest.skip(reason.splitlines()[0])
