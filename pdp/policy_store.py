"""The policy set currently in force, behind one reference that a reload swaps atomically.

`PolicyStore.load` reads, checks and compiles a policy root to the side and replaces the
current set only when the whole new set is valid; on `PolicySetError` the old set keeps
serving and the error (with every diagnostic) goes to the caller. Readers take
`store.current` once per decision, so a reload in the middle of a call cannot mix two sets:
swapping one attribute is atomic, and only loads are serialised by a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pdp.errors import NoPolicySet
from pdp.policy.compile import CompiledPolicySet, compile_policy_set
from pdp.policy.diagnostics import Diagnostic
from pdp.policy.load import load_policy_set


class PolicyStore:
    """Holds the compiled policy set in force; `load` replaces it only with a valid one."""

    def __init__(self) -> None:
        self._current: CompiledPolicySet | None = None
        self._load_lock = threading.Lock()

    @property
    def current(self) -> CompiledPolicySet:
        """The set in force; raises NoPolicySet before the first successful load."""
        current = self._current
        if current is None:
            raise NoPolicySet
        return current

    def load(self, path: Path) -> list[Diagnostic]:
        """Load and compile `path`, then swap it in; return its (warning) diagnostics.

        Raises PolicySetError, keeping the set in force, when the new set has errors.
        """
        with self._load_lock:
            policy_set, diagnostics = load_policy_set(path)
            self._current = compile_policy_set(policy_set)
        return diagnostics
