"""FROZEN COPY for parity tests: the pre-domain-values implementation; never change it.

The record and metrics as built from protobuf messages before the decision path moved to
domain values; tests/observability/test_parity.py compares the new implementation with it.

What pdp records about each call of the decision API: decision metrics and the audit line.

`DecisionObserver.observe` is called exactly once per call that reached the decision path,
whatever became of it (decided, refused, failed, cancelled), by every transport that
decides. It counts the decision, the results of the policies that applied and a degraded
risk state with label children bound once (one dict look-up and an increment each), and
hands one audit line to the `AuditLog`.
"""

from __future__ import annotations

import time
from typing import Final

from prometheus_client.metrics import Counter as CounterChild
from proto_audit_record import DECISIONS, NOT_APPLIED_RESULTS, RESULTS, audit_line

from pdp.observability.audit import AuditLog
from pdp.observability.metrics import DECISIONS as DECISIONS_TOTAL
from pdp.observability.metrics import POLICY_RESULTS, RISK_DEGRADED_DECISIONS
from pdp.v1 import pdp_pb2 as pb

RESULT_CACHE_LIMIT: Final = 100_000  # label children kept bound; bounded by the policy sets


class DecisionObserver:
    """Counts decisions and writes audit records."""

    def __init__(self, audit: AuditLog | None = None, *, truncate_ip: bool = False) -> None:
        self._audit = audit
        self._truncate_ip = truncate_ip
        self._decisions: dict[int, CounterChild] = {
            value: DECISIONS_TOTAL.labels(name) for value, name in DECISIONS.items()
        }
        self._results: dict[tuple[str, int], CounterChild] = {}
        self.decided = 0  # decisions made by this process (logged at shutdown)

    def observe(
        self,
        request: pb.EvaluateRequest,
        response: pb.EvaluateResponse | None,
        *,
        created: float,
        started: float,
        failure: tuple[int, str] | None = None,
    ) -> None:
        """Record one call: `created` is its wall-clock time, `started` its perf_counter()."""
        latency_s = time.perf_counter() - started
        if response is not None:
            self.decided += 1
            decision = self._decisions.get(response.decision)
            if decision is not None:
                decision.inc()
            results = self._results
            for policy in response.policies:
                if policy.result in NOT_APPLIED_RESULTS:
                    continue
                key = (policy.id, policy.result)
                child = results.get(key)
                if child is None:
                    if len(results) > RESULT_CACHE_LIMIT:
                        results.clear()
                    child = results[key] = POLICY_RESULTS.labels(policy.id, RESULTS[policy.result])
                child.inc()
            if response.risk.degraded:
                RISK_DEGRADED_DECISIONS.inc()
        if self._audit is not None:
            line = audit_line(
                request,
                response,
                created=created,
                latency_s=latency_s,
                failure=failure,
                hide_ip=self._truncate_ip,
            )
            self._audit.write(line)
