"""Diagnostics: what is wrong (or doubtful) in a policy source, and where.

Every problem found while loading, parsing or compiling a policy set is one `Diagnostic`
naming the file, the policy (id or displayName), the JSON path inside the document and
what is wrong. Errors refuse the whole set; warnings are reported by `pdp validate` and
logged on load, and never change what the set decides silently.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from typing import Any

from pdp.errors import PdpError

QUOTE_LIMIT = 80  # characters of a bad value shown in a message
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


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


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A value as a message shows it, in bounded time and length (inputs can be huge).

    Strings as Python writes them ('on'), one longer than `limit` cut with its length named;
    numbers as they are; lists and objects by their size only.
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if value is None or isinstance(value, bool | float):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() < 64 else f"a {value.bit_length()}-bit number"
    if isinstance(value, list):
        return f"a list of {len(value):,} item(s)"
    if isinstance(value, dict):
        return f"an object of {len(value):,} key(s)"
    return f"a {type(value).__name__}"


def key_path(path: str, key: str) -> str:
    """``$.key`` for identifier-like keys, else ``$["@odata.nextLink"]``."""
    if _IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    shown = key if len(key) <= QUOTE_LIMIT else f"{key[:QUOTE_LIMIT]}..."
    return f"{path}[{json.dumps(shown)}]"
