"""A policy set's version: a hash of what the set means, not of the files it came from.

`policy_set_version` hashes a canonical JSON form of the parsed `PolicySet`: every field
that takes part in the model's equality (a dataclass field with `compare=False`, such as
the file a policy was read from, is not part of the meaning) and is not at its default,
sets sorted, mappings by key, enums by value, IP networks as their canonical CIDR. Two
folders whose policies, named locations, authentication strengths and application groups
parse to the same model get the same version, whatever their file names, folder layout,
order of files or objects, text encoding, line endings, JSON or YAML, key order, enum
case or OData annotations. So two replicas, or a laptop and a cluster, serving the same
set report the same `policyVersion`. The walk is generic: a field added to the model is
hashed with no change here, and a value of a type this module does not know is an error,
never skipped.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import MISSING, Field, fields, is_dataclass
from typing import Any, Final, TypeAlias

from netaddr import IPNetwork

from pdp.policy.model import PolicySet

VERSION_HEX_DIGITS: Final = 16  # 64 bits: plenty to tell a tenant's policy sets apart
Canonical: TypeAlias = bool | int | float | str | list["Canonical"] | dict[str, "Canonical"] | None


def policy_set_version(policy_set: PolicySet) -> str:
    """The first 16 hex digits of sha256 over the canonical JSON of `policy_set`'s meaning."""
    text = json.dumps(
        canonical(policy_set), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:VERSION_HEX_DIGITS]


def canonical(value: object) -> Canonical:
    """`value` as plain JSON values in one canonical form; TypeError for an unknown type.

    A dataclass becomes an object of its compared fields, less those at their default: so
    a field added to the model later leaves the versions of sets that do not use it alone.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value  # type: ignore[return-value]  # exactly these types: JSON as they are
    if isinstance(value, frozenset | set):
        if all(type(item) is str for item in value):
            return sorted(value)
        items = [canonical(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, enum.Enum):  # before str: a StrEnum is a str too
        return canonical(value.value)
    compared = _compared_fields(kind)
    if compared is not None:
        out: dict[str, Canonical] = {"@type": kind.__name__}
        for name, default in compared:
            item = getattr(value, name)
            if default is _NO_DEFAULT or item != default:
                out[name] = canonical(item)
        return out
    if isinstance(value, tuple | list):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    if isinstance(value, IPNetwork):
        return str(value.cidr)
    if isinstance(value, str | int | float):  # subclasses of the plain types
        return canonical(kind.__mro__[-2](value))
    raise TypeError(f"policy_set_version cannot hash a {kind.__name__}: add it here")


_NO_DEFAULT: Final = object()
_FIELDS: dict[type, tuple[tuple[str, object], ...] | None] = {}


def _compared_fields(kind: type) -> tuple[tuple[str, object], ...] | None:
    """(name, default) of a dataclass's fields that take part in equality; None if no dataclass."""
    try:
        return _FIELDS[kind]
    except KeyError:
        pass
    compared = None
    if is_dataclass(kind):
        compared = tuple((f.name, _default(f)) for f in fields(kind) if f.compare)
    _FIELDS[kind] = compared
    return compared


def _default(f: Field[Any]) -> object:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return _NO_DEFAULT
