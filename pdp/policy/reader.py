"""A cursor over one raw Graph document that reads typed values and records diagnostics.

The parser uses it for every field so that each problem is reported once, with the file,
the policy and the JSON path, and so that Graph's habits are handled in one place:
`@odata` annotations are ignored, null means not configured, enum values compare
case-insensitively, and flags enums may arrive as one comma-separated string.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pdp.policy.diagnostics import Diagnostic, Severity


def is_annotation(key: str) -> bool:
    """OData annotations and action links that carry no policy meaning."""
    return "@odata" in key or key.startswith("#")


class Reader:
    """Reads fields of one document, collecting diagnostics against its file and label."""

    def __init__(self, file: str, label: str, diagnostics: list[Diagnostic]) -> None:
        self.file = file
        self.label = label
        self.diagnostics = diagnostics

    def error(self, path: str, message: str) -> None:
        """Record an error: the whole policy set will be refused."""
        self.diagnostics.append(Diagnostic(Severity.ERROR, self.file, path, message, self.label))

    def warn(self, path: str, message: str) -> None:
        """Record a warning: reported, never silently changes a decision."""
        self.diagnostics.append(Diagnostic(Severity.WARNING, self.file, path, message, self.label))

    def obj(self, value: Any, path: str) -> Mapping[str, Any] | None:
        """An object field: None when null (not configured); error when not an object."""
        if value is None:
            return None
        if isinstance(value, list) and not value:
            return None  # some exports write an unconfigured condition as []
        if not isinstance(value, dict):
            self.error(path, f"expected an object, found {_kind(value)}")
            return None
        return value

    def fields(self, obj: Mapping[str, Any], path: str, known: Iterable[str]) -> None:
        """Warn about keys this pdp version does not know (they are not evaluated)."""
        known_set = set(known)
        for key, value in obj.items():
            if is_annotation(key) or key in known_set:
                continue
            if configured(value):
                self.warn(f"{path}.{key}", "unknown field: pdp does not evaluate it")

    def string(self, obj: Mapping[str, Any], key: str, path: str) -> str | None:
        """A string field, or None when absent or null."""
        value = obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            self.error(f"{path}.{key}", f"expected a string, found {_kind(value)}")
            return None
        return value

    def boolean(self, obj: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        """A boolean field (null means the default)."""
        value = obj.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(f"{path}.{key}", f"expected true or false, found {_kind(value)}")
            return default
        return value

    def strings(self, obj: Mapping[str, Any], key: str, path: str) -> list[str]:
        """A list of strings; null means empty. A flags string "a,b" is split."""
        value = obj.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list):
            self.error(f"{path}.{key}", f"expected a list of strings, found {_kind(value)}")
            return []
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, str) and item.strip():
                out.append(item.strip())
            else:
                self.error(
                    f"{path}.{key}[{i}]", f"expected a non-empty string, found {_kind(item)}"
                )
        return out

    def ids(
        self, obj: Mapping[str, Any], key: str, path: str, specials: Iterable[str] = ()
    ) -> frozenset[str]:
        """Object ids (lower-cased) with special values in canonical case."""
        canon = {s.lower(): s for s in specials}
        out: set[str] = set()
        for i, item in enumerate(self.strings(obj, key, path)):
            special = canon.get(item.lower())
            if special is not None:
                out.add(special)
                continue
            if item.startswith("<") and item.endswith(">"):
                self.warn(
                    f"{path}.{key}[{i}]",
                    f"{item!r} looks like an unsubstituted template placeholder: no sign-in "
                    "carries it, so it matches nothing",
                )
            out.add(item.lower())
        return frozenset(out)

    def enums(
        self, obj: Mapping[str, Any], key: str, path: str, vocabulary: Mapping[str, str]
    ) -> frozenset[str]:
        """Enum members in canonical case; an unknown member is kept (it matches nothing)."""
        out: set[str] = set()
        for i, item in enumerate(self.strings(obj, key, path)):
            canonical = vocabulary.get(item.lower())
            if canonical is None:
                if item.lower() not in ("unknownfuturevalue", "none"):
                    self.warn(
                        f"{path}.{key}[{i}]",
                        f"unknown value {item!r} (known: {', '.join(vocabulary.values())}): "
                        "no sign-in matches it",
                    )
                out.add(item)
            else:
                out.add(canonical)
        return frozenset(out)

    def enum(
        self, obj: Mapping[str, Any], key: str, path: str, vocabulary: Mapping[str, str]
    ) -> str | None:
        """One enum member in canonical case; an unknown member is an error."""
        value = self.string(obj, key, path)
        if value is None:
            return None
        canonical = vocabulary.get(value.lower())
        if canonical is None:
            self.error(
                f"{path}.{key}",
                f"unknown value {value!r} (expected one of: {', '.join(vocabulary.values())})",
            )
        return canonical


def configured(value: Any) -> bool:
    """Whether a raw value configures something (null, [], {} and "" do not)."""
    if isinstance(value, dict):
        return any(configured(v) for k, v in value.items() if not is_annotation(k))
    return value not in (None, [], "", False)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, list):
        return "a list"
    return "an object"
