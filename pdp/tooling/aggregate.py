"""`pdp report`'s aggregation: audit records in, posture figures out, in one streaming pass.

Per record: the decision, per policy its result, what report-only policies would have done
(blocked: `reportOnlyFailure`; prompted: `reportOnlyInterrupted`, the UI's "user action
required") for which users on which applications, challenges and denies per application
(friction), travel detections by country pair, degraded decisions, failed calls by
reason and decisions per hour. Memory is bounded whatever the log's length: counters are
keyed by policy, result, application (capped), country pair and hour, and distinct users
are counted by `sketches.Distinct`. A time window keeps records with `since <= time <
until`, compared to the second on the UTC time stamp.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import msgspec

from pdp.tooling.audit_reader import NULL, AuditParts, AuditRecord
from pdp.tooling.sketches import Capped, Distinct

REPORT_ONLY_BLOCKED = "reportOnlyFailure"
REPORT_ONLY_PROMPTED = "reportOnlyInterrupted"
TRAVEL = frozenset({"impossibleTravel", "unlikelyTravel"})
OK_STATUS = msgspec.Raw(b'{"errorCode":0}')  # as pdp writes it; other spellings are decoded
_DURATION = re.compile(r"^(\d+)([mhd])$")


def window_bound(text: str, now: datetime) -> str:
    """A window bound as 'YYYY-MM-DDTHH:MM:SS' UTC: an RFC 3339 time, or a duration ago (24h)."""
    match = _DURATION.match(text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        stamp = now - timedelta(**{unit: int(match.group(1))})
    else:
        stamp = datetime.fromisoformat(text.strip())
        if stamp.tzinfo is None:
            raise ValueError(f"{text!r}: give an offset (Z or +hh:mm) or a duration like 24h")
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _utc_second(stamp: str) -> str:
    """A record's time stamp as 'YYYY-MM-DDTHH:MM:SS' UTC ('' when unreadable)."""
    if stamp.endswith("Z") and len(stamp) >= 20:
        return stamp[:19]
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(slots=True)
class _Impact:
    """What one report-only policy would have done."""

    blocked: int = 0
    prompted: int = 0
    blocked_users: Distinct = field(default_factory=Distinct)
    prompted_users: Distinct = field(default_factory=Distinct)
    apps: Capped = field(default_factory=Capped)


@dataclass(slots=True)
class Aggregator:
    """Accumulates one report; `add` every record, then `finish` and read the figures.

    Per record the work is a few comparisons and one count of its outcome, keyed by
    (decision, application, conditionalAccessStatus, raw policies text): records of the
    same outcome share a key. The keys are folded into the per-policy, per-application
    and per-decision counters when they pass `OUTCOME_LIMIT` and at the end, so memory
    stays bounded and the figures exact.
    """

    since: str = ""  # 'YYYY-MM-DDTHH:MM:SS' UTC, "" for open
    until: str = ""
    records: int = 0
    outside_window: int = 0
    first: str = ""
    last: str = ""
    decisions: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    ca_status: Counter[str] = field(default_factory=Counter)
    results: Counter[tuple[str, str]] = field(default_factory=Counter)
    names: dict[str, str] = field(default_factory=dict)
    impact: dict[str, _Impact] = field(default_factory=dict)
    apps: dict[str, list[int]] = field(default_factory=dict)  # app -> [decided, challenge, deny]
    travel: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    degraded: int = 0
    hours: Counter[tuple[str, str]] = field(default_factory=Counter)  # (hour, decision)
    users: Distinct = field(default_factory=lambda: Distinct(100_000))
    parts: AuditParts = field(default_factory=AuditParts)
    app_limit: int = 10_000
    _outcomes: dict[tuple[str, str, str, bytes], int] = field(default_factory=dict)
    _acting: dict[bytes, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    OUTCOME_LIMIT = 200_000

    def add(self, record: AuditRecord) -> None:
        """Count one record (if it falls in the window)."""
        stamp = record.createdDateTime or ""
        second = stamp[:19] if stamp.endswith("Z") else _utc_second(stamp)
        if (self.since and second < self.since) or (self.until and second >= self.until):
            self.outside_window += 1
            return
        self.records += 1
        self.last = max(self.last, second)
        if second and (second < self.first or not self.first):
            self.first = second
        status = record.status
        if status != OK_STATUS and status != NULL:  # noqa: PLR1714 - Raw is not hashable
            parsed = self.parts.status(bytes(status))
            if parsed is not None and parsed.errorCode:
                self.failed[parsed.failureReason or f"error {parsed.errorCode}"] += 1
                return
        decision = record.decision or ""
        user = record.userId or record.servicePrincipalId or ""
        if user:
            self.users.add(user)
        app = record.appId or ""
        policies = bytes(record.appliedConditionalAccessPolicies)
        key = (decision, app, record.conditionalAccessStatus or "", policies)
        outcomes = self._outcomes
        outcomes[key] = outcomes.get(key, 0) + 1
        if len(outcomes) > self.OUTCOME_LIMIT:
            self._fold()
        self.hours[second[:13], decision] += 1
        if record.riskDegraded:
            self.degraded += 1
        detections = record.riskDetections
        if len(detections) > 4:  # not [] or null
            self._detections(bytes(detections))
        acting = self._acting.get(policies)
        if acting is None:
            acting = self._acting[policies] = tuple(
                (p.id or "", p.result or "")
                for p in self.parts.policies(policies)
                if p.result in (REPORT_ONLY_BLOCKED, REPORT_ONLY_PROMPTED)
            )
            if len(self._acting) > self.OUTCOME_LIMIT:
                self._acting.clear()
        for policy_id, result in acting:
            self._report_only(policy_id, result, user, app)

    def finish(self) -> None:
        """Fold what is left; call once after the last record."""
        self._fold()

    def _fold(self) -> None:
        for (decision, app, ca_status, policies), n in self._outcomes.items():
            self.decisions[decision] += n
            self.ca_status[ca_status] += n
            counts = self.apps.get(app)
            if counts is None:
                shown = app if len(self.apps) < self.app_limit else "(other)"
                counts = self.apps.setdefault(shown, [0, 0, 0])
            counts[0] += n
            if decision == "challenge":
                counts[1] += n
            elif decision == "deny":
                counts[2] += n
            for policy in self.parts.policies(policies):
                policy_id = policy.id or ""
                self.results[policy_id, policy.result or ""] += n
                if policy_id not in self.names:
                    self.names[policy_id] = policy.displayName or policy_id
        self._outcomes.clear()

    def _report_only(self, policy_id: str, result: str, user: str, app: str) -> None:
        impact = self.impact.get(policy_id)
        if impact is None:
            impact = self.impact[policy_id] = _Impact()
        if result == REPORT_ONLY_BLOCKED:
            impact.blocked += 1
            impact.blocked_users.add(user)
        else:
            impact.prompted += 1
            impact.prompted_users.add(user)
        impact.apps.add(app)

    def _detections(self, raw: bytes) -> None:
        for detection in self.parts.detections(raw):
            kind = detection.riskEventType or ""
            if kind in TRAVEL:
                before = detection.previous.countryOrRegion if detection.previous else None
                after = detection.current.countryOrRegion if detection.current else None
                self.travel[kind, before or "?", after or "?"] += 1
