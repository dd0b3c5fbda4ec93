"""Load a whole policy set: sources -> parsed documents -> cross-checked `PolicySet`.

Besides policies this parses named locations, authentication strengths and pdp's own
config document, then checks what spans documents: unique ids, and references from
policies to named locations and strengths. Any error refuses the whole set
(`PolicySetError`); the caller keeps serving the set it had.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from netaddr import AddrFormatError, IPNetwork

from pdp.policy import schema
from pdp.policy import vocabulary as v
from pdp.policy.diagnostics import Diagnostic, PolicySetError, Severity, key_path, quote
from pdp.policy.model import (
    ALL,
    ALL_TRUSTED,
    NONE,
    AuthenticationStrength,
    NamedLocation,
    Policy,
    PolicySet,
)
from pdp.policy.parse_policy import ALL_AGENT_ID_RESOURCES, parse_policy
from pdp.policy.reader import Reader, is_annotation, is_guid, is_placeholder
from pdp.policy.schema import check_properties
from pdp.policy.source import DocumentKind, SourceDocument, load_sources
from pdp.policy.version import policy_set_version
from pdp.vocabulary import AUTHENTICATION_METHOD_MODES


def load_policy_set(root: Path) -> tuple[PolicySet, list[Diagnostic]]:
    """Load and check every document under `root`; raise PolicySetError on any error."""
    sources = load_sources(root)
    diagnostics = list(sources.diagnostics)
    policies: list[Policy] = []
    origins: dict[str, SourceDocument] = {}
    locations: dict[str, NamedLocation] = {}
    strengths: dict[str, AuthenticationStrength] = dict(v.BUILT_IN_STRENGTHS)
    inline_strengths: dict[str, AuthenticationStrength] = {}
    # pdp's own config documents first: they say how the others are read.
    config = [doc for doc in sources.documents if doc.kind is DocumentKind.PDP_CONFIG]
    guid_ids, groups = _configs(config, diagnostics)
    seen: dict[str, str] = {}
    for doc in sources.documents:
        if doc.kind is DocumentKind.PDP_CONFIG:
            continue
        reader = _At(
            Reader(
                doc.file,
                doc.label,
                diagnostics,
                guid_ids=guid_ids,
                application_groups=tuple(groups),
            ),
            doc.path,
        )
        where = doc.file if doc.path == "$" else f"{doc.file}{doc.path[1:]}"
        raw_id = doc.data.get("id")
        if isinstance(raw_id, str) and raw_id.strip():
            _unique(raw_id.strip().lower(), where, seen, reader)
        check_properties(doc.data, _SCHEMAS[doc.kind], reader)
        if doc.kind is DocumentKind.POLICY:
            policy = parse_policy(doc.data, reader, where, where, inline_strengths)
            if policy is not None:
                policies.append(policy)
                origins[policy.id] = doc
        elif doc.kind is DocumentKind.AUTHENTICATION_STRENGTH:
            strength = _strength(doc.data, reader)
            if strength is not None:
                strengths[strength.id] = strength
        else:
            location = _location(doc, reader)
            if location is not None:
                locations[location.id] = location
    for strength_id, strength in inline_strengths.items():
        strengths.setdefault(strength_id, strength)
    _check_references(policies, origins, locations, strengths, groups, diagnostics)
    if any(d.severity is Severity.ERROR for d in diagnostics):
        raise PolicySetError(diagnostics)
    policy_set = PolicySet(
        # By id: the set has no order, so neither its answers nor its version depend on
        # the order of files or of the objects in them.
        policies=tuple(sorted(policies, key=lambda policy: policy.id)),
        locations=locations,
        strengths=strengths,
        application_groups=groups,
        version="",
    )
    return replace(policy_set, version=policy_set_version(policy_set)), diagnostics


_SCHEMAS = {
    DocumentKind.POLICY: schema.POLICY,
    DocumentKind.IP_NAMED_LOCATION: schema.IP_NAMED_LOCATION,
    DocumentKind.COUNTRY_NAMED_LOCATION: schema.COUNTRY_NAMED_LOCATION,
    DocumentKind.COMPLIANT_NETWORK_NAMED_LOCATION: schema.COMPLIANT_NETWORK_NAMED_LOCATION,
    DocumentKind.AUTHENTICATION_STRENGTH: schema.AUTHENTICATION_STRENGTH,
}


class _At(Reader):
    """A reader whose paths are prefixed with the document's path inside its file."""

    def __init__(self, base: Reader, prefix: str) -> None:
        super().__init__(
            base.file,
            base.label,
            base.diagnostics,
            guid_ids=base.guid_ids,
            application_groups=base.application_groups,
        )
        self.prefix = prefix

    def error(self, path: str, message: str) -> None:
        super().error(self.prefix + path[1:], message)

    def warn(self, path: str, message: str) -> None:
        super().warn(self.prefix + path[1:], message)


def _unique(object_id: str, where: str, seen: dict[str, str], reader: Reader) -> None:
    first = seen.setdefault(object_id, where)
    if first != where:
        reader.error("$.id", f"duplicate id {object_id!r}: also defined in {first}")


def _location(doc: SourceDocument, r: Reader) -> NamedLocation | None:
    data = doc.data
    raw_id = r.string(data, "id", "$") or ""
    location_id = raw_id.lower()
    name = r.string(data, "displayName", "$") or location_id
    if not location_id:
        r.error("$.id", "a named location needs an id: policies refer to it by id")
        return None
    r.check_id(raw_id, "$.id")
    if doc.kind is DocumentKind.IP_NAMED_LOCATION:
        ranges: list[IPNetwork] = []
        raw_ranges = data.get("ipRanges")
        if not isinstance(raw_ranges, list) or not raw_ranges:
            r.error("$.ipRanges", "an IP named location needs a non-empty list of ipRanges")
            return None
        for i, item in enumerate(raw_ranges):
            cidr = item.get("cidrAddress") if isinstance(item, dict) else None
            network = parse_cidr(cidr) if isinstance(cidr, str) else None
            if network is None:
                what = f"not an IPv4 or IPv6 CIDR: {quote(cidr)}"
                r.error(f"$.ipRanges[{i}].cidrAddress", what)
            else:
                ranges.append(network)
        return NamedLocation(
            id=location_id,
            display_name=name,
            kind="ip",
            ip_ranges=tuple(ranges),
            is_trusted=r.boolean(data, "isTrusted", "$", False),
        )
    if doc.kind is DocumentKind.COUNTRY_NAMED_LOCATION:
        countries = r.strings(data, "countriesAndRegions", "$")
        for i, code in enumerate(countries):
            if len(code) != 2 or not code.isalpha():
                r.error(f"$.countriesAndRegions[{i}]", f"not an ISO 3166 alpha-2 code: {code!r}")
        method = r.string(data, "countryLookupMethod", "$") or "clientIpAddress"
        if method.lower() == "authenticatorappgps":
            r.warn(
                "$.countryLookupMethod",
                "GPS lookup is not available to pdp: the country of the client IP is used",
            )
        return NamedLocation(
            id=location_id,
            display_name=name,
            kind="country",
            countries=frozenset(c.upper() for c in countries),
            include_unknown_countries=r.boolean(
                data, "includeUnknownCountriesAndRegions", "$", False
            ),
        )
    return NamedLocation(
        id=location_id,
        display_name=name,
        kind="compliantNetwork",
        is_trusted=r.boolean(data, "isTrusted", "$", True),
    )


def parse_cidr(text: str) -> IPNetwork | None:
    """An IPv4 or IPv6 CIDR (a bare address is a /32 or /128), or None when it is not one.

    The usual form is decoded by the C socket functions (several times faster than netaddr's
    own parser, which matters for sets of 100,000s of ranges); anything else goes to netaddr.
    """
    address, slash, prefix = text.strip().partition("/")
    v6 = ":" in address
    width = 128 if v6 else 32
    if not slash or (prefix.isascii() and prefix.isdigit() and len(prefix) <= 3):
        length = int(prefix) if slash else width
        try:
            packed = socket.inet_pton(socket.AF_INET6 if v6 else socket.AF_INET, address)
        except (OSError, ValueError):
            packed = b""
        if packed and length <= width:
            return IPNetwork((int.from_bytes(packed, "big"), length), version=6 if v6 else 4)
    try:
        return IPNetwork(text.strip())
    except (AddrFormatError, ValueError, TypeError):
        return None


def _strength(data: Mapping[str, Any], r: Reader) -> AuthenticationStrength | None:
    raw_id = r.string(data, "id", "$") or ""
    strength_id = raw_id.lower()
    if not strength_id:
        r.error("$.id", "an authentication strength needs an id: policies refer to it by id")
        return None
    r.check_id(raw_id, "$.id")
    combinations: list[frozenset[str]] = []
    for i, combination in enumerate(r.strings(data, "allowedCombinations", "$")):
        methods = frozenset(m.strip() for m in combination.split(","))
        unknown = sorted(m for m in methods if m.lower() not in AUTHENTICATION_METHOD_MODES)
        if unknown:
            r.warn(f"$.allowedCombinations[{i}]", f"unknown authentication methods {unknown}")
        combinations.append(methods)
    if not combinations:
        r.error("$.allowedCombinations", "an authentication strength needs allowedCombinations")
    return AuthenticationStrength(
        id=strength_id,
        display_name=r.string(data, "displayName", "$") or strength_id,
        combinations=tuple(combinations),
    )


_OBJECT_IDS = {"guid": True, "any": False}


def _configs(
    docs: list[SourceDocument], diagnostics: list[Diagnostic]
) -> tuple[bool, dict[str, frozenset[str]]]:
    """Pdp's own config documents: whether ids must be GUIDs, and the application groups.

    A document is `{"pdp": {"objectIds": "guid" | "any", "applicationGroups": {...}}}`;
    groups from several documents merge (see `_config`), and their objectIds must agree.
    """
    settings: dict[bool, str] = {}
    for doc in docs:
        r = _At(Reader(doc.file, doc.label, diagnostics), doc.path)
        section = r.obj(doc.data.get("pdp"), "$.pdp") or {}
        mode = r.enum(section, "objectIds", "$.pdp", {k: k for k in _OBJECT_IDS})
        if mode is not None:
            settings.setdefault(_OBJECT_IDS[mode], f"{doc.file}: {doc.path}")
    if len(settings) > 1:
        first, other = settings.values()
        diagnostics.append(
            Diagnostic(
                Severity.ERROR,
                docs[0].file,
                "$.pdp.objectIds",
                f"config documents disagree on objectIds ({first} and {other})",
            )
        )
    guid_ids = next(iter(settings), True)
    group_config = _GroupConfig()
    for doc in docs:
        r = _At(Reader(doc.file, doc.label, diagnostics, guid_ids=guid_ids), doc.path)
        _config(doc.data, r, group_config)
    return guid_ids, group_config.apply(v.DEFAULT_APPLICATION_GROUPS)


@dataclass(slots=True)
class _GroupConfig:
    """Application groups from pdp config documents: replacements first, then extensions."""

    replace: dict[str, frozenset[str]] = field(default_factory=dict)
    extend: dict[str, frozenset[str]] = field(default_factory=dict)

    def apply(self, built_in: Mapping[str, frozenset[str]]) -> dict[str, frozenset[str]]:
        """The built-in groups with this configuration applied (names compare ignoring case)."""
        groups = dict(built_in)
        names = {name.lower(): name for name in groups}
        for changes, keep in ((self.replace, False), (self.extend, True)):
            for name, ids in changes.items():
                key = names.setdefault(name.lower(), name)
                groups[key] = (groups.get(key, frozenset()) if keep else frozenset()) | ids
        return groups


def _config(data: Mapping[str, Any], r: Reader, into: _GroupConfig) -> None:
    """The application groups of one pdp config document (objectIds is read before).

    `{"pdp": {"applicationGroups": {name: [app ids]}}}`: a list extends a built-in bundle
    of that name (or defines a new group); an object `{"replace": [app ids]}` replaces the
    built-in members instead.
    """
    section = r.obj(data.get("pdp"), "$.pdp") or {}
    for key in section:
        if key not in ("applicationGroups", "objectIds") and not is_annotation(key):
            r.error(
                key_path("$.pdp", key),
                f"unknown pdp config key {quote(key)} (known: applicationGroups, objectIds)",
            )
    path = "$.pdp.applicationGroups"
    groups_obj = r.obj(section.get("applicationGroups"), path) or {}
    for name, value in groups_obj.items():
        if not isinstance(name, str) or is_annotation(name):
            continue
        target, holder, key, where = into.extend, groups_obj, name, path
        if isinstance(value, dict):
            for extra in value:
                if extra != "replace" and not is_annotation(extra):
                    r.error(key_path(key_path(path, name), extra), "unknown key (known: replace)")
            target, holder, key, where = into.replace, value, "replace", key_path(path, name)
        ids = r.ids(holder, key, where)
        if not ids:
            r.error(key_path(where, key), "an application group needs app ids")
        target[name] = target.get(name, frozenset()) | ids


def _check_references(  # noqa: PLR0917 - private, one call site
    policies: list[Policy],
    origins: dict[str, SourceDocument],
    locations: dict[str, NamedLocation],
    strengths: dict[str, AuthenticationStrength],
    groups: dict[str, frozenset[str]],
    diagnostics: list[Diagnostic],
) -> None:
    """Warn about references that resolve to nothing: they match nothing (fail closed)."""

    def warn(policy: Policy, message: str) -> None:
        doc = origins[policy.id]
        diagnostics.append(Diagnostic(Severity.WARNING, doc.file, doc.path, message, doc.label))

    group_names = {g.lower() for g in groups}
    for policy in policies:
        cond = policy.conditions
        for location_id in sorted(cond.locations.include | cond.locations.exclude):
            if location_id not in (ALL, ALL_TRUSTED) and location_id not in locations:
                what = f"named location {quote(location_id)}"
                warn(policy, f"{what} is not defined: it contains no IP")
        apps = cond.applications.include_applications | cond.applications.exclude_applications
        for app in sorted(apps):
            if app == ALL_AGENT_ID_RESOURCES:
                warn(policy, f"pdp sees no sign-in to {app}: it matches nothing")
            elif not (is_guid(app) or is_placeholder(app) or app in (ALL, NONE, *group_names)):
                # only with objectIds "any": with GUIDs this is an error already
                warn(policy, f"application {quote(app)} is neither an app id nor a known group")
        for control in policy.grant.controls if policy.grant else ():
            if control.startswith("authenticationStrength:"):
                strength_id = control.split(":", 1)[1]
                if strength_id not in strengths:
                    warn(
                        policy,
                        f"authentication strength {quote(strength_id)} is not defined: "
                        "no sign-in can meet it",
                    )
