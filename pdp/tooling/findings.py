"""What `pdp lint` reports: rules (with their public sources) and findings against them.

A `Rule` is one check: a stable id (baseline items keep their versioned ids, e.g.
`MS.AAD.3.2v2`), its severity, a one-line remediation and the URL of the public guidance
it comes from. A `Finding` is the rule failing on a policy set: a message, the policies
involved (with the file and line where each is written) and, for checks decided by
evaluating sign-ins, the sign-in that shows it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.StrEnum):
    """How serious a finding is; the names are SARIF's result levels."""

    ERROR = "error"
    WARNING = "warning"
    NOTE = "note"

    @property
    def rank(self) -> int:
        """Higher is more serious."""
        return {"error": 3, "warning": 2, "note": 1}[self.value]


@dataclass(frozen=True, slots=True)
class Rule:
    """One lint check."""

    id: str
    title: str  # one line: what is wrong when the rule fails
    description: str  # what the rule checks and how pdp decides it
    remediation: str  # one line: what to do
    source: str  # public URL of the guidance
    severity: Severity
    category: str  # lockout, baseline, hygiene
    security_severity: str = ""  # GitHub code scanning: "0.1" to "10.0"


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """A policy named in a finding, and where it is written."""

    id: str
    display_name: str
    state: str
    file: str  # relative to the linted path ("" when the path is the file itself)
    line: int


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule failing on the linted set."""

    rule: Rule
    message: str
    policies: tuple[PolicyRef, ...] = ()
    sign_in: str = ""  # the sign-in that shows it, in words
    severity: Severity | None = None  # None: the rule's

    @property
    def level(self) -> Severity:
        """The severity of this finding."""
        return self.severity or self.rule.severity


@dataclass(frozen=True, slots=True)
class BaselineResult:
    """One baseline item, met or not, and by which sign-ins it was decided."""

    rule: Rule
    met: bool
    sign_ins: int  # how many sign-ins were evaluated


@dataclass(slots=True)
class LintReport:
    """Everything `pdp lint` found on one policy set."""

    path: str
    policies: int
    emergency_access: tuple[str, ...]  # how the emergency-access principals were chosen
    findings: list[Finding] = field(default_factory=list)
    baseline: list[BaselineResult] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)  # every rule that ran
    sign_ins: int = 0  # sign-ins evaluated in all
    seconds: float = 0.0

    def count(self, severity: Severity) -> int:
        """How many findings have `severity`."""
        return sum(f.level is severity for f in self.findings)

    def fails(self, threshold: Severity | None) -> bool:
        """Whether a finding is at or above `threshold` (None: never)."""
        return threshold is not None and any(f.level.rank >= threshold.rank for f in self.findings)
