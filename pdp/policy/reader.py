"""A cursor over one raw Graph document that reads typed values and records diagnostics.

The parser uses it for every field so that each problem is reported once, with the file,
the policy and the JSON path, and so that Graph's habits are handled in one place:
`@odata` annotations are ignored, null means not configured, enum values compare
case-insensitively, and flags enums may arrive as one comma-separated string.

Object ids (users, groups, roles, applications, service principals, named locations,
tenants, terms of use, authentication strengths) are GUIDs in Graph, and a value that is not
one is an error: a group's display name in ``includeGroups`` would match no sign-in. A
policy set whose identity provider does not use GUIDs (and pdp's own test cases) say so with
``{"pdp": {"objectIds": "any"}}``: ids are then any non-empty text. Either way a value in
angle brackets (``<EmergencyAccessGroup>``) is a template placeholder left unsubstituted:
accepted with a warning, it matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pdp.policy.diagnostics import Diagnostic, Severity, quote

_GUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_PLACEHOLDER = re.compile(r"<[^<>]+>")
_SHOWN = 8  # special values and group names a message lists at most


def is_annotation(key: str) -> bool:
    """OData annotations (``@odata.type``, ``x@odata.type``) and action links (``#...``)."""
    return "@" in key or key.startswith("#")


def is_guid(value: str) -> bool:
    """Whether `value` is a GUID as Graph writes object ids (8-4-4-4-12 hex digits)."""
    return _GUID.fullmatch(value) is not None


def is_placeholder(value: str) -> bool:
    """Whether `value` is a template placeholder like ``<EmergencyAccessGroup>``."""
    return _PLACEHOLDER.fullmatch(value) is not None


class Reader:
    """Reads fields of one document, collecting diagnostics against its file and label.

    `guid_ids` is whether object ids must be GUIDs (the default, as in Graph);
    `application_groups` are the names usable in place of application ids.
    """

    def __init__(
        self,
        file: str,
        label: str,
        diagnostics: list[Diagnostic],
        *,
        guid_ids: bool = True,
        application_groups: tuple[str, ...] = (),
    ) -> None:
        self.file = file
        self.label = label
        self.diagnostics = diagnostics
        self.guid_ids = guid_ids
        self.application_groups = application_groups

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
        self,
        obj: Mapping[str, Any],
        key: str,
        path: str,
        specials: Iterable[str] = (),
        *,
        names: Iterable[str] = (),
    ) -> frozenset[str]:
        """Object ids (lower-cased) with special values in canonical case.

        `names` are names accepted besides ids (application groups), kept lower-cased.
        """
        canon = {s.lower(): s for s in specials}
        named = {n.lower(): n for n in names}
        out: set[str] = set()
        for i, item in enumerate(self.strings(obj, key, path)):
            special = canon.get(item.lower())
            if special is not None:
                out.add(special)
                continue
            if item.lower() not in named:
                names_shown = [n for n in named.values() if not is_guid(n)]
                self.check_id(item, f"{path}.{key}[{i}]", [*canon.values(), *names_shown])
            out.add(item.lower())
        return frozenset(out)

    def check_id(
        self, value: str, path: str, specials: Iterable[str] = (), *, fails_closed: bool = False
    ) -> None:
        """Report an object id that is a placeholder (warning) or, with guid_ids, no GUID.

        No GUID is an error, or a warning when `fails_closed`: where a wrong id can only make
        the policy stricter (a terms-of-use agreement nobody can accept).
        """
        if is_placeholder(value):
            self.warn(
                path,
                f"{quote(value)} looks like an unsubstituted template placeholder: no sign-in "
                "carries it, so it matches nothing",
            )
        elif self.guid_ids and not is_guid(value):
            shown = list(specials)
            others = ", ".join(shown[:_SHOWN]) + (", ..." if len(shown) > _SHOWN else "")
            message = (
                f"{quote(value)} is not an object id: Graph identifies objects here by GUID"
                f"{f' (or one of: {others})' if others else ''}, and a name or other text "
            )
            if fails_closed:
                self.warn(path, message + "is met by no sign-in")
            else:
                self.error(
                    path,
                    message + 'would match nothing (a set whose ids are not GUIDs says {"pdp": '
                    '{"objectIds": "any"}})',
                )

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
                        f"unknown value {quote(item)} (known: {', '.join(vocabulary.values())}): "
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
                f"unknown value {quote(value)} (expected one of: {', '.join(vocabulary.values())})",
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
        return f"string {quote(value)}"
    if isinstance(value, int | float):
        return f"number {quote(value)}"
    if isinstance(value, list):
        return "a list"
    return "an object"
