"""Policy hot reload: load the policy path at start, when it changes, and on SIGHUP.

`PolicyReloader` owns every load of the policy root into the `PolicyStore`. Loads run in a
thread (compiling a large set takes a while; the event loop keeps answering meanwhile) and
one at a time. The store compiles to the side and swaps one reference, so calls in flight
finish on the set they started with; a set with errors is refused, the old one keeps
serving, every diagnostic is logged as its own record and `pdp_policy_reloads_total
{outcome="failure"}` counts it.

Changes are found by polling a signature of the tree: (path, inode, size, mtime) of every
entry the loader would read, links followed. A Kubernetes ConfigMap volume publishes an
update by pointing its `..data` link at a new folder in one rename; the visible files are
links through `..data`, so each one then resolves to a new inode and the signature
changes. A change that lands while a load reads the files is caught by the next poll,
since the signature is taken before the load.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog

from pdp.observability import metrics
from pdp.policy.compile import CompiledPolicySet
from pdp.policy.diagnostics import Diagnostic, PolicySetError, Severity
from pdp.policy_store import PolicyStore

Signature = tuple[tuple[str, int, int, int], ...]
_log = structlog.get_logger(__name__)


def signature(root: Path) -> Signature:
    """(relative path, inode, size, mtime in ns) of every visible entry under `root`."""
    entries: list[tuple[str, int, int, int]] = []

    def add(path: Path, rel: str) -> None:
        try:
            st = path.stat()  # follows links: a swapped ..data gives new inodes
        except OSError:
            entries.append((rel, -1, -1, -1))
            return
        entries.append((rel, st.st_ino, st.st_size, st.st_mtime_ns))
        if path.is_dir():
            try:
                children = sorted(child.name for child in path.iterdir())
            except OSError:
                return
            for name in children:
                if not name.startswith("."):  # as the loader: ..data and hidden entries
                    add(path / name, f"{rel}/{name}")

    add(root, ".")
    return tuple(entries)


def policy_count(compiled: CompiledPolicySet) -> int:
    """Policies in a compiled set, disabled ones included."""
    return len(compiled.policies) + len(compiled.disabled)


class PolicyReloader:
    """Loads `root` into `store`: first at start, then on changes and on request."""

    def __init__(self, store: PolicyStore, root: Path, interval_s: float) -> None:
        self._store = store
        self._root = root
        self._interval_s = interval_s
        self._requested = asyncio.Event()
        self._loaded: Signature | None = None
        self._version: str | None = None

    async def load_first(self) -> CompiledPolicySet:
        """The first load; raises PolicySetError (after logging it) when the set is invalid."""
        compiled = await self._load("start", strict=True)
        assert compiled is not None  # strict: a refused set raised
        return compiled

    def request(self) -> None:
        """Reload at the next opportunity, changed or not (SIGHUP)."""
        self._requested.set()

    async def run(self) -> None:
        """Poll for changes (and serve requests) until cancelled."""
        while True:
            timeout = self._interval_s if self._interval_s > 0 else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._requested.wait(), timeout)
            if self._requested.is_set():
                self._requested.clear()
                await self._load("sighup")
                continue
            current = await asyncio.to_thread(signature, self._root)
            if current != self._loaded:
                await self._load("changed")

    async def _load(self, reason: str, *, strict: bool = False) -> CompiledPolicySet | None:
        """Load the root; the compiled set, or None (old set kept) when it was refused.

        With `strict`, a refused set raises its PolicySetError (after logging it).
        """
        started = time.perf_counter()
        seen = await asyncio.to_thread(signature, self._root)
        first = self._version is None
        try:
            warnings = await asyncio.to_thread(self._store.load, self._root)
        except PolicySetError as exc:
            self._loaded = seen  # not retried until it changes again (or SIGHUP)
            _log_diagnostics(exc.diagnostics)
            errors = sum(d.severity is Severity.ERROR for d in exc.diagnostics)
            if not first:
                metrics.POLICY_RELOADS.labels("failure").inc()
            _log.error(
                "policy_reload_failed" if not first else "policy_load_failed",
                reason=reason,
                errors=errors,
                policy_version=self._version,
                policies=str(self._root),
            )
            if strict:
                raise
            return None
        self._loaded = seen
        compiled = self._store.current
        _log_diagnostics(warnings)
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
