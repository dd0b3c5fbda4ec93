"""What the engine builds once per compiled policy set, and remembers of its answers.

A compiled set is frozen after compile (`pdp.policy.compile`); the engine's own per-set
state lives here instead, typed: the outcome records of every policy for every result it
can have, the records of disabled policies, What-If records with reasons, and the memo of
decision tails keyed by what a decision says once its failed requirements and elapsed
frequencies are known (bounded, cleared when full). `cache_for(compiled)` finds a set's
cache (created on first use, dropped with the set): the set most recently asked for is
found without a lookup, since every request of a worker decides against the set in force.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Final

from pdp.engine.decision import PolicyOutcome, Requirement, Result, Session, Verdict
from pdp.policy.compile import CompiledPolicySet

TAILS_LIMIT: Final = 8192  # memoised decision tails per set before they are cleared

# What a decision says once its applied policies, failed requirements and elapsed
# frequencies are known: verdict, requirements, messages, session, per-policy outcomes.
Tail = tuple[Verdict, tuple[Requirement, ...], tuple[str, ...], Session, tuple[PolicyOutcome, ...]]
TailKey = tuple[int, int, int, int, int, bool, int]


@dataclass(slots=True)
class SetCache:
    """The engine's state for one compiled policy set."""

    tails: dict[TailKey, Tail] = field(default_factory=dict)
    # per policy bit: its outcome record for each result it can have when it applies
    outcome_table: tuple[dict[Result, PolicyOutcome], ...] | None = None
    disabled: tuple[PolicyOutcome, ...] | None = None  # NOT_ENABLED records, with explain
    # (policy bit, result, What-If reasons) -> the record, for explained decisions
    explained: dict[tuple[int, Result, tuple[str, ...]], PolicyOutcome] = field(
        default_factory=dict
    )


_caches: weakref.WeakKeyDictionary[CompiledPolicySet, SetCache] = weakref.WeakKeyDictionary()
_last: list[tuple[CompiledPolicySet, SetCache] | None] = [None]


def cache_for(compiled: CompiledPolicySet) -> SetCache:
    """The engine's cache of `compiled` (created on first use)."""
    last = _last[0]
    if last is not None and last[0] is compiled:
        return last[1]
    cache = _caches.get(compiled)
    if cache is None:
        cache = _caches[compiled] = SetCache()
    _last[0] = (compiled, cache)
    return cache
