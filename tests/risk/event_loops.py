"""Running a test's coroutine on asyncio's event loop and on uvloop, pdp serve's when installed.

uvloop runs due timers before reading sockets in each turn, asyncio after: the risk store's
deadlines must hold on both.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest


def run_on(loop_name: str, main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` on the named event loop: asyncio's, or uvloop (pdp serve's when installed)."""
    if loop_name == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="uvloop is a dev dependency")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


LOOPS = pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
