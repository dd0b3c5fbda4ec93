"""Diagnostics: what is wrong (or doubtful) in a policy source, and where.

Every problem found while loading, parsing or compiling a policy set is one `Diagnostic`
naming the file, the policy (id or displayName), the JSON path inside the document and
what is wrong. Errors refuse the whole set; warnings are reported by `pdp validate` and
logged on load, and never change what the set decides silently.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pdp.errors import PdpError


class Severity(enum.StrEnum):
    """How bad a diagnostic is: an error refuses the policy set, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in a policy source."""

    severity: Severity
    file: str  # path as given (relative to the policy root when loaded from a folder)
    path: str  # JSON path inside the file, e.g. "$[2].conditions.users.includeUsers[0]"
    message: str
    policy: str = ""  # policy or named-location id, else its displayName, else ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}"
        if self.policy:
            where += f" (policy {self.policy})"
        return f"{self.severity}: {where}: {self.message}"


class PolicySetError(PdpError):
    """A policy set was refused: it carries every error (and warning) that was found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity is Severity.ERROR]
        shown = "\n".join(str(d) for d in errors[:20])
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"policy set refused with {len(errors)} error(s):\n{shown}{more}")
