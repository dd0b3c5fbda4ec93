"""The audit record's bounds: how much of a call one audit line may hold, whatever it carried.

A record is built from a sign-in and a decision, and neither is trusted to be small: a way
in may hand over a refused request's raw values, a policy set may have long names, and a
risk store may return anything. `RecordBounds.render` builds one line within these bounds:

- every string the record writes (ids, addresses, names, controls, the policy version) is
  at most `MAX_TEXT` characters; a longer one is cut and ends with `MARKER`;
- lists are capped: `MAX_POLICIES` applied policies, `MAX_REQUIREMENTS` requirements,
  `MAX_DETECTIONS` risk detections, `MAX_MEMBERS` entries in each of their lists;
- U+0085, U+2028 and U+2029, which JSON leaves raw but many line readers split at, are
  written escaped: a record is one line however its reader splits lines;
- the line, as UTF-8, is at most `MAX_LINE_BYTES`: were it longer (long strings that JSON
  escapes six-fold, with many policies), it is formatted again without its lists.

A record that lost anything names the fields in `truncatedFields`, and
`pdp_audit_records_truncated_total` counts it. Checking costs a few length reads per record
and, per distinct policies or requirements tuple (the engine reuses them), one pass that
is then remembered; a record within bounds is formatted from the very objects it came with.
Runs on the audit writer's thread (not thread-safe: it remembers the tuples it checked).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Requirement
from pdp.errors import ErrorCode
from pdp.observability.audit_record import AuditLine
from pdp.observability.metrics import AUDIT_TRUNCATED
from pdp.risk.assessment import Detection, Place

MAX_TEXT: Final = 1024
MARKER: Final = "...[truncated]"
MAX_POLICIES: Final = 256  # Entra allows 195 Conditional Access policies per tenant
MAX_REQUIREMENTS: Final = 64
MAX_DETECTIONS: Final = 16
MAX_MEMBERS: Final = 64  # of each list inside: a requirement's anyOf and policyIds, controls
MAX_LINE_BYTES: Final = 64 * 1024
LISTS: Final = ("requirements", "riskDetections", "appliedConditionalAccessPolicies")
_CACHE_LIMIT: Final = 4096
# Characters JSON leaves as they are but line readers (Python's str.splitlines, older
# JavaScript) take for line ends: written escaped, so one record is one line for them too.
_LINE_BREAKS: Final = re.compile("[\x85\u2028\u2029]")
_ESCAPED_BREAKS: Final = {0x85: "\\u0085", 0x2028: "\\u2028", 0x2029: "\\u2029"}
Policies = tuple[PolicyOutcome, ...]
Requirements = tuple[Requirement, ...]
T = TypeVar("T")
# The context's strings the record writes, and the record field each one is in.
_CONTEXT_TEXT: Final = (
    ("request_id", "id"),
    ("user_id", "userId"),
    ("service_principal_id", "servicePrincipalId"),
    ("application_id", "appId"),
    ("ip_address", "ipAddress"),
    ("country", "location"),
    ("device_id", "deviceDetail"),
)


def cut(text: str) -> str:
    """`text`, or its first MAX_TEXT characters and MARKER when it is longer."""
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + MARKER


class RecordBounds:
    """Renders audit lines within the bounds above; counts the records it had to cut."""

    def __init__(self, line: AuditLine) -> None:
        self._line = line
        # id(tuple) -> (the tuple, the bounded tuple, whether it was cut); the tuple is kept,
        # so its id cannot be reused while the entry lives.
        self._policies: dict[int, tuple[Policies, Policies, bool]] = {}
        self._requirements: dict[int, tuple[Requirements, Requirements, bool]] = {}

    def render(
        self,
        ctx: SignInContext,
        decision: Decision | None,
        *,
        created: float,
        latency_s: float,
        failure: ErrorCode | None,
    ) -> bytes:
        """One call's audit line as UTF-8 bytes (newline-terminated), within the bounds."""
        cuts: list[str] = []
        ctx = self._context(ctx, cuts)
        if decision is not None:
            decision = self._decision(decision, cuts)
        times = (created, latency_s, failure)
        data = self._render(ctx, decision, cuts, times)
        if len(data) > MAX_LINE_BYTES and decision is not None:
            cuts += [name for name in LISTS if name not in cuts]
            decision = dataclasses.replace(
                decision,
                requirements=(),
                policies=(),
                risk=dataclasses.replace(decision.risk, detections=()),
            )
            data = self._render(ctx, decision, cuts, times)
        if cuts:
            AUDIT_TRUNCATED.inc()
        return data

    def _render(
        self,
        ctx: SignInContext,
        decision: Decision | None,
        cuts: Sequence[str],
        times: tuple[float, float, ErrorCode | None],
    ) -> bytes:
        created, latency_s, failure = times
        text = self._line(ctx, decision, created=created, latency_s=latency_s, failure=failure)
        # JSON allows these raw; many line readers split there. (isascii() is a flag read.)
        if not text.isascii() and _LINE_BREAKS.search(text):
            text = text.translate(_ESCAPED_BREAKS)
        if cuts:  # one more member before the closing brace
            names = ",".join(f'"{name}"' for name in sorted(set(cuts)))
            text = f'{text[:-2]},"truncatedFields":[{names}]}}\n'
        # "replace": a lone surrogate (no way in lets one through) must not stop the writer
        return text.encode("utf-8", "replace")

    def _context(self, ctx: SignInContext, cuts: list[str]) -> SignInContext:
        """`ctx`, or a copy with its long strings cut."""
        longest = max(
            len(ctx.request_id),
            len(ctx.user_id),
            len(ctx.service_principal_id),
            len(ctx.application_id),
            len(ctx.ip_address),
            len(ctx.country),
            len(ctx.device_id),
        )
        if longest <= MAX_TEXT:
            return ctx
        changes: dict[str, object] = {}
        for name, field in _CONTEXT_TEXT:
            value: str = getattr(ctx, name)
            if len(value) > MAX_TEXT:
                changes[name] = cut(value)
                cuts.append(field)
        return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]

    def _decision(self, decision: Decision, cuts: list[str]) -> Decision:
        """`decision`, or a copy with its policies, requirements and detections bounded."""
        policies = self._remembered(
            decision.policies, _policies, "appliedConditionalAccessPolicies", self._policies, cuts
        )
        requirements = self._remembered(
            decision.requirements, _requirements, "requirements", self._requirements, cuts
        )
        risk = decision.risk
        detections = risk.detections
        if detections and not _detections_fit(detections):
            detections = tuple(_detection(d) for d in detections[:MAX_DETECTIONS])
            risk = dataclasses.replace(risk, detections=detections)
            cuts.append("riskDetections")
        version = decision.policy_version
        if len(version) > MAX_TEXT:
            version = cut(version)
            cuts.append("policyVersion")
        if (
            policies is decision.policies
            and requirements is decision.requirements
            and risk is decision.risk
            and version is decision.policy_version
        ):
            return decision
        return dataclasses.replace(
            decision,
            policies=policies,
            requirements=requirements,
            risk=risk,
            policy_version=version,
        )

    def _remembered(
        self,
        value: tuple[T, ...],
        bound: Callable[[tuple[T, ...]], tuple[tuple[T, ...], bool]],
        field: str,
        table: dict[int, tuple[tuple[T, ...], tuple[T, ...], bool]],
        cuts: list[str],
    ) -> tuple[T, ...]:
        """`value` within bounds, checked once per tuple: the engine reuses its tuples."""
        if not value:
            return value
        known = table.get(id(value))
        if known is None or known[0] is not value:
            bounded, was_cut = bound(value)
            if len(table) >= _CACHE_LIMIT:
                table.clear()
            known = table[id(value)] = (value, bounded, was_cut)
        if known[2]:
            cuts.append(field)
        return known[1]


def _policies(policies: Policies) -> tuple[Policies, bool]:
    """(the policies within bounds, whether anything was cut); the same tuple when not."""
    fits = len(policies) <= MAX_POLICIES and all(
        len(p.id) <= MAX_TEXT
        and len(p.display_name) <= MAX_TEXT
        and _fit(p.grant_controls)
        and _fit(p.session_controls)
        for p in policies
    )
    if fits:
        return policies, False
    bounded = tuple(
        dataclasses.replace(
            p,
            id=cut(p.id),
            display_name=cut(p.display_name),
            grant_controls=_texts(p.grant_controls),
            session_controls=_texts(p.session_controls),
        )
        for p in policies[:MAX_POLICIES]
    )
    return bounded, True


def _requirements(requirements: Requirements) -> tuple[Requirements, bool]:
    """(the requirements within bounds, whether anything was cut)."""
    if len(requirements) <= MAX_REQUIREMENTS and all(
        _fit(r.any_of) and _fit(r.policy_ids) for r in requirements
    ):
        return requirements, False
    bounded = tuple(
        Requirement(_texts(r.any_of), _texts(r.policy_ids)) for r in requirements[:MAX_REQUIREMENTS]
    )
    return bounded, True


def _detections_fit(detections: tuple[Detection, ...]) -> bool:
    return len(detections) <= MAX_DETECTIONS and all(
        len(d.kind) <= MAX_TEXT
        and len(d.level) <= MAX_TEXT
        and _place_fits(d.previous)
        and _place_fits(d.current)
        for d in detections
    )


def _place_fits(place: Place | None) -> bool:
    return place is None or (len(place.country) <= MAX_TEXT and len(place.ip_address) <= MAX_TEXT)


def _detection(detection: Detection) -> Detection:
    return dataclasses.replace(
        detection,
        kind=cut(detection.kind),
        level=cut(detection.level),
        previous=_place(detection.previous),
        current=_place(detection.current),
    )


def _place(place: Place | None) -> Place | None:
    if place is None:
        return None
    return dataclasses.replace(place, country=cut(place.country), ip_address=cut(place.ip_address))


def _fit(values: tuple[str, ...]) -> bool:
    return len(values) <= MAX_MEMBERS and all(len(v) <= MAX_TEXT for v in values)


def _texts(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(cut(v) for v in values[:MAX_MEMBERS])
