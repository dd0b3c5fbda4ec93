"""What pdp records about each call of a decision API: decision metrics and the audit record.

`DecisionObserver.observe` is called exactly once per call that reached the decision path,
whatever became of it (decided, refused, failed, cancelled), by every way in, with domain
values: the sign-in (`SignInContext`) and the `Decision`, or the `ErrorCode` of a call that
got none. On the request path it only counts (plain ints, published into the metrics when
they are read; see `pdp.observability.tally`) and hands the values to the `AuditLog`, whose
writer thread builds the line. Nothing here formats text or takes a lock per call.

For a call that failed before its sign-in could be read whole, the way in passes what it
could read (`ctx` with the request id and whatever fields it got), so the audit record still
says who asked and why it was refused.
"""

from __future__ import annotations

import time
from typing import Final

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Result, Verdict
from pdp.errors import ErrorCode
from pdp.observability.audit import AuditLog
from pdp.observability.audit_record import NOT_APPLIED_RESULTS
from pdp.observability.metrics import (
    DECISIONS,
    POLICY_RESULTS,
    PUBLISHER,
    RISK_DEGRADED_DECISIONS,
)
from pdp.observability.tally import CountTally

OUTCOME_SETS_LIMIT: Final = 4096  # distinct policies tuples counted before publishing early


class DecisionMetrics:
    """pdp_decisions_total, pdp_policy_results_total and degraded decisions, as plain ints.

    The engine hands out the same `policies` tuple for the same outcome, so a decision's
    per-policy results are counted as one increment per tuple (kept by identity) and
    expanded into per-policy counts when published. A decision with `explain` has a fresh
    tuple: its applied policies are counted one by one instead.
    """

    def __init__(self) -> None:
        self._verdicts = {
            verdict: CountTally(DECISIONS.labels(verdict.value)) for verdict in Verdict
        }
        self._degraded = CountTally(RISK_DEGRADED_DECISIONS)
        # id(policies) -> its calls; only the event loop's thread adds, counts or clears.
        self._outcome_sets: dict[int, _Calls] = {}
        self._published_sets: dict[int, int] = {}  # the publisher's: calls already added
        self._outcomes: dict[tuple[str, Result], int] = {}  # explained decisions' results
        self._published_outcomes: dict[tuple[str, Result], int] = {}

    def count(self, decision: Decision, *, explain: bool) -> None:
        """Count one decision (event loop thread)."""
        self._verdicts[decision.verdict].count += 1
        if decision.risk.degraded:
            self._degraded.count += 1
        policies = decision.policies
        if not policies:
            return
        if explain:
            outcomes = self._outcomes
            for outcome in policies:
                if outcome.result not in NOT_APPLIED_RESULTS:
                    key = (outcome.id, outcome.result)
                    outcomes[key] = outcomes.get(key, 0) + 1
            return
        sets = self._outcome_sets
        entry = sets.get(id(policies))
        if entry is None or entry.policies is not policies:
            if len(sets) >= OUTCOME_SETS_LIMIT:  # bound memory: publish, then start afresh
                with PUBLISHER.lock:
                    self.publish()
                    sets.clear()
                    self._published_sets.clear()
            entry = sets[id(policies)] = _Calls(policies)
        entry.calls += 1

    def publish(self) -> None:
        """Add what was counted since the last publish into the metrics (publisher's lock)."""
        for tally in self._verdicts.values():
            tally.publish()
        self._degraded.publish()
        published_sets = self._published_sets
        for key, entry in list(self._outcome_sets.items()):
            calls = entry.calls
            delta = calls - published_sets.get(key, 0)
            if delta:
                _add(entry.policies, delta)
                published_sets[key] = calls
        published = self._published_outcomes
        for outcome, calls in list(self._outcomes.items()):
            delta = calls - published.get(outcome, 0)
            if delta:
                POLICY_RESULTS.labels(outcome[0], outcome[1].value).inc(delta)
                published[outcome] = calls


class _Calls:
    """How many decisions had one `policies` tuple."""

    __slots__ = ("calls", "policies")

    def __init__(self, policies: tuple[PolicyOutcome, ...]) -> None:
        self.policies = policies
        self.calls = 0


def _add(policies: tuple[PolicyOutcome, ...], calls: int) -> None:
    for outcome in policies:
        if outcome.result not in NOT_APPLIED_RESULTS:
            POLICY_RESULTS.labels(outcome.id, outcome.result.value).inc(calls)


class DecisionObserver:
    """Counts decisions and hands each call to the audit log."""

    def __init__(self, audit: AuditLog | None = None) -> None:
        self._audit = audit
        self._metrics = DecisionMetrics()
        PUBLISHER.add(self._metrics.publish)
        self.decided = 0  # decisions made by this process (logged at shutdown)

    def observe(
        self,
        ctx: SignInContext,
        decision: Decision | None,
        *,
        created: float,
        started: float,
        failure: ErrorCode | None = None,
    ) -> None:
        """Record one call: `created` is its wall-clock time, `started` its perf_counter()."""
        latency_s = time.perf_counter() - started
        if decision is not None:
            self.decided += 1
            self._metrics.count(decision, explain=ctx.explain)
        if self._audit is not None:
            self._audit.put(ctx, decision, created, latency_s, failure)

    def close(self) -> None:
        """Publish the last counts and stop publishing this observer's."""
        PUBLISHER.remove(self._metrics.publish)
