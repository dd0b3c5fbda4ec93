"""A policy set's version: a hash of what the set means, not of the files it came from.

`policy_set_version` hashes a canonical JSON form of the parsed `PolicySet`: every field
that takes part in the model's equality (a dataclass field with `compare=False`, such as
the file a policy was read from, is not part of the meaning), sets sorted, mappings by key,
enums by value, IP networks as their canonical CIDR. Two folders whose policies, named
locations, authentication strengths and application groups parse to the same model get
the same version, whatever their file names, folder layout, order of files or objects,
text encoding, line endings, JSON or YAML, key order, enum case or OData annotations. So
two replicas, or a laptop and a cluster, serving the same set report the same
`policyVersion`. The walk is generic: a field added to the model is hashed with no change
here, and a value of a type this module does not know is an error, never skipped.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import fields, is_dataclass
from typing import Final, TypeAlias

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
    """`value` as plain JSON values in one canonical form; TypeError for an unknown type."""
    if isinstance(value, enum.Enum):  # first: a StrEnum is a str too
        return canonical(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Canonical] = {"@type": type(value).__name__}
        for f in fields(value):
            if f.compare:
                out[f.name] = canonical(getattr(value, f.name))
        return out
    if isinstance(value, IPNetwork):
        return str(value.cidr)
    if isinstance(value, frozenset | set):
        items = [canonical(item) for item in value]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    if isinstance(value, tuple | list):
        return [canonical(item) for item in value]
    if isinstance(value, dict):
        return {str(key): canonical(item) for key, item in value.items()}
    raise TypeError(f"policy_set_version cannot hash a {type(value).__name__}: add it here")
