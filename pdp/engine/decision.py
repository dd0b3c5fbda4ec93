"""What the engine answers: the decision, the unmet requirements, session controls, and why.

Plain immutable values, shaped like the API's EvaluateResponse and like Entra's sign-in log
(`appliedConditionalAccessPolicies`), so the transport and the audit log only translate.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pdp.risk.assessment import Assessment


class Verdict(enum.StrEnum):
    """The decision on a sign-in."""

    ALLOW = "allow"
    CHALLENGE = "challenge"
    DENY = "deny"


class Result(enum.StrEnum):
    """A policy's result, as Graph appliedConditionalAccessPolicyResult."""

    SUCCESS = "success"
    FAILURE = "failure"
    NOT_APPLIED = "notApplied"
    NOT_ENABLED = "notEnabled"
    REPORT_ONLY_SUCCESS = "reportOnlySuccess"
    REPORT_ONLY_FAILURE = "reportOnlyFailure"
    REPORT_ONLY_NOT_APPLIED = "reportOnlyNotApplied"
    REPORT_ONLY_INTERRUPTED = "reportOnlyInterrupted"


@dataclass(frozen=True, slots=True)
class Requirement:
    """An unmet grant requirement: met by any one of `any_of`."""

    any_of: tuple[str, ...]
    policy_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Session:
    """The most restrictive session controls of the enforced policies that applied."""

    sign_in_frequency: int | None = None  # full sign-in: seconds, EVERY_TIME (-1) or None
    secondary_sign_in_frequency: int | None = None  # the second factor only: the same
    persistent_browser: str | None = None  # "always" | "never"
    application_enforced_restrictions: bool = False
    cloud_app_security: str | None = None
    continuous_access_evaluation: str | None = None
    secure_sign_in_session: bool = False
    disable_resilience_defaults: bool = False


@dataclass(frozen=True, slots=True)
class PolicyOutcome:
    """One policy's result and why (reasons are What-If condition names when not applied)."""

    id: str
    display_name: str
    state: str  # Graph state: enabled, disabled, enabledForReportingButNotEnforced
    result: Result
    reasons: tuple[str, ...] = ()
    grant_controls: tuple[str, ...] = ()
    session_controls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's whole answer for one sign-in."""

    verdict: Verdict
    requirements: tuple[Requirement, ...]
    session: Session
    policies: tuple[PolicyOutcome, ...]
    messages: tuple[str, ...]
    policy_version: str
    sign_in_risk: str  # the level the policies were evaluated with
    risk: Assessment
