"""Policy hot reload: load the policy path at start, when it changes, and on SIGHUP.

`PolicyReloader` owns every load of the policy root into the `PolicyStore`. Loads run one at
a time on a daemon thread of their own, never on the event loop, so calls keep being
answered while a large set is read and compiled, and a SIGTERM during the first load ends
the process at once instead of waiting for the load (a daemon thread does not hold the
interpreter's exit). The store compiles to the side and swaps one reference, so calls in
flight finish on the set they started with.

The reloader never dies. A set with errors is refused and the old one keeps serving: every
diagnostic is logged as its own record, then `policy_reload_failed`, and
`pdp_policy_reloads_total{outcome="failure"}` counts it. Any other exception of a load or
of the change detector is logged the same way (with its traceback), counted as a failure,
and the loop goes on with the last good set.

Changes are found by polling a signature of the files the loader reads (the source
walker's own list, links followed once each, so link loops cost nothing): relative path,
inode, size and mtime of each. A Kubernetes ConfigMap volume publishes an update by
pointing its `..data` link at a new folder in one rename; the visible files are links
through `..data`, so each one then resolves to a new inode and the signature changes. A
change that lands while a load reads the files is caught by the next poll, since the
signature is taken before the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog

from pdp.observability import metrics
from pdp.policy.compile import CompiledPolicySet
from pdp.policy.diagnostics import Diagnostic, PolicySetError, Severity
from pdp.policy.source import walk
from pdp.policy_store import PolicyStore

Signature = tuple[tuple[str, int, int, int], ...]
T = TypeVar("T")
_log = structlog.get_logger(__name__)


def signature(root: Path) -> Signature:
    """(relative path, inode, size, mtime in ns) of every file a load would read.

    A file that cannot be stat'ed, and each problem the walk met (an unreadable folder),
    has an entry too, so that its repair is a change.
    """
    files, problems = walk(root)
    entries = [
        (f.rel, f.stat.st_ino, f.stat.st_size, f.stat.st_mtime_ns)
        if f.stat is not None
        else (f.rel, -1, -1, -1)
        for f in files
    ]
    entries += [(f"{d.file}: {d.message}", -1, -1, -1) for d in problems]
    return tuple(entries)


def policy_count(compiled: CompiledPolicySet) -> int:
    """Policies in a compiled set, disabled ones included."""
    return len(compiled.policies) + len(compiled.disabled)


async def off_loop(function: Callable[[Path], T], argument: Path) -> T:
    """Run `function(argument)` on a new daemon thread and await its result.

    Unlike the loop's default executor, whose threads the interpreter waits for at exit,
    an abandoned daemon thread cannot delay a shutdown.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver(setter: Callable[[Any], None], value: Any) -> None:
        if not future.done():  # the awaiting task may have been cancelled
            setter(value)

    def run() -> None:
        try:
            result = function(argument)
        except BaseException as exc:  # noqa: BLE001 - handed over to the awaiting task
            handover: tuple[Callable[[Any], None], Any] = (future.set_exception, exc)
        else:
            handover = (future.set_result, result)
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(deliver, *handover)

    threading.Thread(target=run, name="pdp-policy-load", daemon=True).start()
    return await future


class PolicyReloader:
    """Loads `root` into `store`: first at start, then on changes and on request."""

    def __init__(self, store: PolicyStore, root: Path, interval_s: float) -> None:
        self._store = store
        self._root = root
        self._interval_s = interval_s
        self._requested = asyncio.Event()
        self._loaded: Signature | None = None
        self._version: str | None = None

    async def load_first(self, stopping: asyncio.Event | None = None) -> CompiledPolicySet | None:
        """The first load, or None when `stopping` is set before it ends.

        Raises PolicySetError (after logging it) when the set is invalid or the load failed.
        """
        load = asyncio.ensure_future(self._load("start", strict=True))
        if stopping is None:
            return await load
        stop = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({load, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not load.done():
            load.cancel()  # its thread finishes (or dies with the process) unobserved
            _log.info("policy_load_abandoned", reason="stopping", policies=str(self._root))
            return None
        return load.result()

    def request(self) -> None:
        """Reload at the next opportunity, changed or not (SIGHUP)."""
        self._requested.set()

    async def run(self) -> None:
        """Poll for changes (and serve requests) until cancelled; never ends otherwise."""
        while True:
            try:
                await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the reloader must outlive any fault
                metrics.POLICY_RELOADS.labels("failure").inc()
                _log.exception(
                    "policy_reload_failed",
                    reason="error",
                    error=f"{type(exc).__name__}: {exc}",
                    policy_version=self._version,
                    policies=str(self._root),
                )
                await asyncio.sleep(self._interval_s if self._interval_s > 0 else 1.0)

    async def _poll(self) -> None:
        timeout = self._interval_s if self._interval_s > 0 else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._requested.wait(), timeout)
        if self._requested.is_set():
            self._requested.clear()
            await self._load("sighup")
            return
        current = await off_loop(signature, self._root)
        if current != self._loaded:
            await self._load("changed")

    async def _load(self, reason: str, *, strict: bool = False) -> CompiledPolicySet | None:
        """Load the root; the compiled set, or None (old set kept) when it was refused.

        With `strict`, a refused set raises its PolicySetError (after logging it), and so
        does an unexpected exception, turned into one. A failed set is not loaded again
        until its files change (or on SIGHUP).
        """
        started = time.perf_counter()
        first = self._version is None
        if first:  # a large set takes a while: say what the process is doing meanwhile
            _log.info("policy_load_started", reason=reason, policies=str(self._root))
        error = ""
        try:
            seen: Signature | None = await off_loop(signature, self._root)
        except Exception:  # noqa: BLE001 - the load says what is wrong, if anything
            seen = None  # compared unequal at the next poll: retried
        try:
            warnings = await off_loop(self._store.load, self._root)
        except PolicySetError as exc:
            refused = exc
        except Exception as exc:  # noqa: BLE001 - logged with its traceback, the set kept
            _log.exception("policy_load_error", reason=reason, policies=str(self._root))
            error = f"{type(exc).__name__}: {exc}"
            refused = PolicySetError(
                [Diagnostic(Severity.ERROR, str(self._root), "$", f"the load failed: {error}")]
            )
        else:
            return self._loaded_set(reason, seen, warnings, started)
        self._loaded = seen  # a refused set is not retried until it changes (or SIGHUP)
        _log_diagnostics(refused.diagnostics)
        if not first:
            metrics.POLICY_RELOADS.labels("failure").inc()
        _log.error(
            "policy_reload_failed" if not first else "policy_load_failed",
            reason=reason,
            errors=sum(d.severity is Severity.ERROR for d in refused.diagnostics),
            policy_version=self._version,
            policies=str(self._root),
            **({"error": error} if error else {}),
        )
        if strict:
            raise refused
        return None

    def _loaded_set(
        self, reason: str, seen: Signature | None, warnings: list[Diagnostic], started: float
    ) -> CompiledPolicySet:
        self._loaded = seen
        compiled = self._store.current
        _log_diagnostics(warnings)
        first = self._version is None
        previous, self._version = self._version, compiled.version
        metrics.set_policy_set(compiled.version, previous, policy_count(compiled), time.time())
        if not first:
            metrics.POLICY_RELOADS.labels("success").inc()
        _log.info(
            "policy_set_loaded",
            reason=reason,
            policy_version=compiled.version,
            previous_version=previous,
            policy_count=policy_count(compiled),
            warnings=len(warnings),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return compiled


def _log_diagnostics(diagnostics: list[Diagnostic]) -> None:
    for d in diagnostics:
        log = _log.error if d.severity is Severity.ERROR else _log.warning
        log(
            "policy_diagnostic",
            severity=str(d.severity),
            file=d.file,
            path=d.path,
            message=d.message,
            policy=d.policy,
        )
