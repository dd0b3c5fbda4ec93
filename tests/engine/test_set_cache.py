"""A compiled set is read-only after compile; the engine keeps its state per set, apart."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import pytest

from pdp.engine.set_cache import cache_for
from pdp.policy.compile import CompiledPolicySet
from pdp.policy_store import PolicyStore

ROOT = Path(__file__).resolve().parents[2]


def compiled_example() -> CompiledPolicySet:
    """The example set, compiled afresh."""
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    return store.current


def test_a_compiled_set_refuses_attribute_writes() -> None:
    """Rebinding any attribute after compile raises: the set is frozen once compiled."""
    compiled = compiled_example()
    with pytest.raises(FrozenInstanceError):
        compiled.all_users = 0  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        compiled.version = "changed"  # type: ignore[misc]


def test_each_set_has_its_own_engine_cache_dropped_with_it() -> None:
    """Two sets, two caches; the same set, the same cache (also after another was asked)."""
    first, second = compiled_example(), compiled_example()
    a, b = cache_for(first), cache_for(second)
    assert a is not b
    assert cache_for(first) is a
