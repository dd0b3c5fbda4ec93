"""require_tool: a missing tool skips with the package named, fails under CI, and wheels count."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from system_tools import require_tool

MISSING = "pdp-no-such-tool-x9"


def test_missing_tool_skips_naming_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside CI a missing tool is a skip whose reason says how to install it."""
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING} not found.*apt-get install pkg"):
        require_tool(MISSING, "pkg")


def test_missing_tool_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under CI=true a missing tool fails the test: CI never passes by skipping."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_tool(MISSING, "PyPI some-wheel")


def test_tool_beside_the_interpreter_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tool a wheel put beside the interpreter counts even when that folder is not on PATH."""
    monkeypatch.setenv("PATH", "/nonexistent")
    python = Path(sys.executable).name
    assert Path(require_tool(python, "python3")).parent == Path(sys.executable).parent
