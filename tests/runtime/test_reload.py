"""The policy reloader: never dies, keeps the last good set, and never holds up a stop."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog
from graph_documents import mfa_policy

from pdp import policy_store
from pdp.observability import metrics
from pdp.policy.diagnostics import PolicySetError
from pdp.policy_store import PolicyStore
from pdp.runtime.reload import PolicyReloader, signature

INTERVAL_S = 0.05


def _write(folder: Path, name: str) -> None:
    (folder / "policy.json").write_text(json.dumps(mfa_policy(display_name=name)), encoding="utf-8")


def _failures() -> float:
    return metrics.POLICY_RELOADS.labels("failure")._value.get()


def _successes() -> float:
    return metrics.POLICY_RELOADS.labels("success")._value.get()


async def _until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.02)


def test_signature_of_a_folder_with_links_to_itself_lists_each_file_once(tmp_path: Path) -> None:
    """Two links to `.` used to make the change detector walk forever; now they add nothing."""
    _write(tmp_path, "v1")
    (tmp_path / "a").symlink_to(".")
    (tmp_path / "b").symlink_to(".")
    found: list[str] = []
    walker = threading.Thread(
        target=lambda: found.extend(entry[0] for entry in signature(tmp_path)), daemon=True
    )
    walker.start()
    walker.join(10)
    assert not walker.is_alive(), "the change detector is still walking the link loop"
    assert found == ["policy.json"]


def test_the_reloader_survives_any_exception_and_keeps_the_last_good_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load that raises (MemoryError here) is logged and counted; the next change loads."""
    real_load = policy_store.load_policy_set

    async def scenario() -> None:
        _write(tmp_path, "v1")
        store = PolicyStore()
        reloader = PolicyReloader(store, tmp_path, INTERVAL_S)
        first = await reloader.load_first()
        assert first is not None
        task = asyncio.create_task(reloader.run())
        failures, successes = _failures(), _successes()

        def broken(root: Path) -> Any:
            raise MemoryError("out of memory while loading")

        monkeypatch.setattr(policy_store, "load_policy_set", broken)
        with structlog.testing.capture_logs() as logs:
            _write(tmp_path, "v2")
            await _until(lambda: _failures() == failures + 1)
        assert store.current.version == first.version  # the last good set serves
        failed = [e for e in logs if e["event"] == "policy_reload_failed"]
        assert failed
        assert "MemoryError" in failed[0]["error"]
        monkeypatch.setattr(policy_store, "load_policy_set", real_load)
        _write(tmp_path, "v3")
        await _until(lambda: _successes() == successes + 1)
        assert store.current.version != first.version
        assert not task.done()  # still polling
        task.cancel()

    asyncio.run(scenario())


def test_an_alias_bomb_on_reload_is_refused_at_once_and_reloading_goes_on(tmp_path: Path) -> None:
    """The YAML bomb that stalled calls for 5 s and killed the reloader: refused, counted."""
    levels = [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = "\n".join(["'@odata.type': &t", "  a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"])
    bomb += "\n" + "\n".join(levels) + "\ndisplayName: bomb\n"

    async def scenario() -> None:
        _write(tmp_path, "v1")
        store = PolicyStore()
        reloader = PolicyReloader(store, tmp_path, INTERVAL_S)
        first = await reloader.load_first()
        assert first is not None
        task = asyncio.create_task(reloader.run())
        failures, successes = _failures(), _successes()
        (tmp_path / "bomb.yaml").write_text(bomb, encoding="utf-8")
        await _until(lambda: _failures() == failures + 1)
        assert store.current.version == first.version
        (tmp_path / "bomb.yaml").unlink()
        _write(tmp_path, "v2")
        await _until(lambda: _successes() == successes + 1)
        task.cancel()

    asyncio.run(scenario())


def test_a_stop_during_the_first_load_returns_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_first(stopping) gives None as soon as stopping is set, the load still running."""
    release = threading.Event()
    real_load = policy_store.load_policy_set

    def slow(root: Path) -> Any:
        release.wait(30)  # a set that takes a very long time to read
        return real_load(root)

    monkeypatch.setattr(policy_store, "load_policy_set", slow)
    _write(tmp_path, "v1")

    async def scenario() -> float:
        reloader = PolicyReloader(PolicyStore(), tmp_path, INTERVAL_S)
        stopping = asyncio.Event()
        asyncio.get_running_loop().call_later(0.2, stopping.set)
        started = time.monotonic()
        assert await reloader.load_first(stopping) is None
        return time.monotonic() - started

    try:
        assert asyncio.run(scenario()) < 5.0
    finally:
        release.set()


def test_an_unexpected_exception_in_the_first_load_is_a_refused_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At start, an exception other than a refused set becomes one: one line, exit 1."""

    def broken(root: Path) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(policy_store, "load_policy_set", broken)
    _write(tmp_path, "v1")
    reloader = PolicyReloader(PolicyStore(), tmp_path, INTERVAL_S)
    with pytest.raises(PolicySetError) as refused:
        asyncio.run(reloader.load_first())
    [diagnostic] = refused.value.diagnostics
    assert "the load failed: RecursionError" in diagnostic.message
