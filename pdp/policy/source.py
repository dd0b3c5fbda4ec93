"""Policy sources: files on disk to a flat list of raw Microsoft Graph documents.

This module owns the first stage of loading a policy set: finding the policy files under a
root (one file, or a folder walked recursively, Kubernetes ConfigMap mounts included),
decoding them (BOM-aware), parsing JSON and YAML, unwrapping the accepted top-level shapes
(one object, an array of objects, a Graph list response ``{"value": [...]}``) and telling
each document's kind. It does not validate what a document says; that is the parser's job.

Every problem is a `Diagnostic` naming the file (relative to the root) and the JSON path of
the document inside it: ``$`` is the file's top-level value, ``$[3]`` the 4th element of a
top-level array and ``$.value[3]`` the 4th element of a Graph list response. A YAML file
holding more than one (non-empty) document prefixes paths with ``$#N``, N being the
zero-based index of the document in the file: ``$#2`` is its 3rd document, ``$#2[0]`` the
first element of that document's array, ``$#1.value[3]`` an element of a list response.
A YAML file with a single (non-empty) document uses the same paths as JSON.

A key written twice in a JSON object is an error at the key's path, unless every earlier
value is null or equal to the last one (nothing is lost: a warning). In YAML any duplicate
key is an error with its line and column.
"""

from __future__ import annotations

import codecs
import contextlib
import enum
import hashlib
import json
import re
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pdp.policy.diagnostics import Diagnostic, Severity

SUFFIXES = (".json", ".yaml", ".yml")
UNKNOWN_KIND = (
    "cannot tell what this document is: expected a conditionalAccessPolicy, ipNamedLocation,"
    " countryNamedLocation, compliantNetworkNamedLocation or authenticationStrengthPolicy"
    " (by @odata.type or shape)"
)


class DocumentKind(enum.StrEnum):
    """What a raw document is, named after its Graph ``@odata.type`` (or pdp's own config)."""

    POLICY = "conditionalAccessPolicy"
    IP_NAMED_LOCATION = "ipNamedLocation"
    COUNTRY_NAMED_LOCATION = "countryNamedLocation"
    COMPLIANT_NETWORK_NAMED_LOCATION = "compliantNetworkNamedLocation"
    AUTHENTICATION_STRENGTH = "authenticationStrengthPolicy"
    PDP_CONFIG = "pdpConfig"  # an object with a top-level "pdp" section


_BY_TYPE: dict[str, DocumentKind] = {
    kind.value.lower(): kind for kind in DocumentKind if kind is not DocumentKind.PDP_CONFIG
}
_BY_SHAPE = (
    ("ipRanges", DocumentKind.IP_NAMED_LOCATION),
    ("countriesAndRegions", DocumentKind.COUNTRY_NAMED_LOCATION),
    ("compliantNetworkType", DocumentKind.COMPLIANT_NETWORK_NAMED_LOCATION),
    ("allowedCombinations", DocumentKind.AUTHENTICATION_STRENGTH),
)


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """One raw Graph document (or pdp config section) and where it came from."""

    kind: DocumentKind
    file: str  # relative to the root given (the file name itself when root is a file)
    path: str  # JSON path of the document inside the file, e.g. "$", "$[3]", "$.value[3]"
    data: dict[str, Any]  # the raw object, unchanged (OData annotations included)
    label: str  # "id" if a non-empty string, else "displayName", else ""


@dataclass(frozen=True, slots=True)
class LoadedSources:
    """Everything read from a policy root: documents, diagnostics and a content digest."""

    documents: list[SourceDocument]
    diagnostics: list[Diagnostic]
    digest: str  # sha256 hex over each file's relative path and raw bytes, in sorted path order
    files: list[str]  # relative paths read, sorted


_BOMS = (  # UTF-32 first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16"),
)


def decode_text(raw: bytes) -> str:
    """Decode a policy file: by its BOM (UTF-8, UTF-16, UTF-32), else as UTF-8.

    Bytes without a BOM whose every other byte is (mostly) zero are taken as UTF-16 LE or
    BE. The BOM is not part of the result. Raises `ValueError` with a message like
    ``not valid UTF-8 text (invalid start byte at byte 12)`` when the bytes do not decode
    (offsets count from the start of the file, BOM included).
    """
    bom, codec, name = next((b for b in _BOMS if raw.startswith(b[0])), (b"", "", "UTF-8"))
    if not codec and (guess := _utf16_without_bom(raw)):
        with contextlib.suppress(UnicodeDecodeError):  # else: not UTF-16 after all
            return raw.decode(guess)
    try:
        return raw[len(bom) :].decode(codec or "utf-8")
    except UnicodeDecodeError as exc:
        where = exc.start + len(bom)
        raise ValueError(f"not valid {name} text ({exc.reason} at byte {where})") from None


def _utf16_without_bom(raw: bytes) -> str | None:
    """Name the UTF-16 codec when zero bytes sit in one byte position of most code units."""
    if len(raw) % 2 or 0 not in raw:
        return None
    units = len(raw) // 2
    zero_even, zero_odd = raw[0::2].count(0), raw[1::2].count(0)
    if zero_odd * 2 >= units and zero_odd > zero_even:
        return "utf-16-le"
    if zero_even * 2 >= units and zero_even > zero_odd:
        return "utf-16-be"
    return None


def load_sources(root: Path) -> LoadedSources:
    """Read every policy file under `root` (a file or a folder) into raw documents.

    Never raises for bad input: every problem is a diagnostic, and `digest` changes exactly
    when a file's relative path or bytes change.
    """
    diagnostics: list[Diagnostic] = []
    if not root.exists():
        diagnostics.append(_error(str(root), "$", "no such file or directory"))
        return LoadedSources([], diagnostics, _digest([]), [])
    if root.is_dir():
        paths = _walk(root, diagnostics)
        if not paths and not diagnostics:
            diagnostics.append(_error(str(root), "$", "no .json, .yaml or .yml files found"))
    elif root.name.lower().endswith(SUFFIXES):
        paths = [(root.name, root)]
    else:
        paths = []
        diagnostics.append(_error(root.name, "$", "not a .json, .yaml or .yml file"))
    documents: list[SourceDocument] = []
    read: list[tuple[str, bytes]] = []
    for rel, path in sorted(paths):
        try:
            raw = path.read_bytes()
        except OSError as exc:
            diagnostics.append(_error(rel, "$", f"cannot read file ({exc.strerror or exc})"))
            continue
        read.append((rel, raw))
        documents.extend(_load_file(rel, raw, diagnostics))
    return LoadedSources(documents, diagnostics, _digest(read), [rel for rel, _ in read])


def _walk(root: Path, diagnostics: list[Diagnostic]) -> list[tuple[str, Path]]:
    """Policy files under `root`: hidden and ``..data``-style entries skipped, links followed."""
    found: list[tuple[str, Path]] = []
    seen: set[Path] = set()  # resolved folders, so that a linked folder is read once (no cycles)

    def visit(folder: Path) -> None:
        if folder.resolve() in seen:
            return
        seen.add(folder.resolve())
        try:
            children = sorted(folder.iterdir())
        except OSError as exc:
            where = folder.relative_to(root).as_posix() if folder != root else str(root)
            diagnostics.append(_error(where, "$", f"cannot read folder ({exc.strerror or exc})"))
            return
        for child in children:
            if child.name.startswith("."):
                continue
            if child.is_dir():
                visit(child)
            elif child.name.lower().endswith(SUFFIXES) and (child.is_file() or child.is_symlink()):
                found.append((child.relative_to(root).as_posix(), child))

    visit(root)
    return found


def _digest(files: list[tuple[str, bytes]]) -> str:
    """Sha256 over length-prefixed relative paths and contents (unambiguous framing)."""
    digest = hashlib.sha256()
    for rel, raw in files:
        name = rel.encode("utf-8", "surrogateescape")
        for part in (name, raw):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


class _YamlLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys and keeps timestamps as strings, like JSON."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Build a mapping, failing on a key written twice (merge keys ``<<`` excepted)."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    problem = f'duplicate key "{key}"'
                    raise yaml.constructor.ConstructorError(
                        None, None, problem, key_node.start_mark
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_text(loader: _YamlLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)

# id(object) -> (object, [(key written twice, whether every earlier value is null or the same)])
_Duplicates = dict[int, tuple[dict[str, Any], list[tuple[str, bool]]]]


def _load_file(rel: str, raw: bytes, diagnostics: list[Diagnostic]) -> Iterator[SourceDocument]:
    """Decode and parse one file, then unwrap and classify its top-level values."""
    duplicates: _Duplicates = {}
    try:
        values = _parse(rel, decode_text(raw), duplicates)
    except ValueError as exc:
        diagnostics.append(_error(rel, "$", str(exc)))
        return
    if not values:
        diagnostics.append(_warning(rel, "$", "no documents"))
    for base, value in values:
        yield from _unwrap(rel, base, value, duplicates, diagnostics)


def _parse(rel: str, text: str, duplicates: _Duplicates) -> list[tuple[str, Any]]:
    """Parse JSON or YAML into (path, top-level value) pairs; `ValueError` says what is wrong."""
    if rel.lower().endswith(".json"):
        try:
            hook = _pairs_hook(duplicates)
            return [("$", json.loads(text, object_pairs_hook=hook))] if text.strip() else []
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ValueError(f"invalid JSON: {exc.msg} ({where})") from None
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"invalid JSON: {exc}") from None
    try:
        loaded = list(yaml.load_all(text, Loader=_YamlLoader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ValueError(f"invalid YAML: {exc}") from None
    single = sum(value is not None for value in loaded) == 1
    return [("$" if single else f"$#{i}", v) for i, v in enumerate(loaded) if v is not None]


def _pairs_hook(duplicates: _Duplicates) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    """Make a json object_pairs_hook recording, per object built, the keys it saw twice."""

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(obj) < len(pairs):
            values: dict[str, list[Any]] = {}
            for key, value in pairs:
                values.setdefault(key, []).append(value)
            found = [
                (key, all(v is None or v == seen[-1] for v in seen[:-1]))
                for key, seen in values.items()
                if len(seen) > 1
            ]
            duplicates[id(obj)] = (obj, found)  # holding obj keeps its id from being reused
        return obj

    return hook


def _unwrap(
    rel: str, base: str, value: Any, duplicates: _Duplicates, diagnostics: list[Diagnostic]
) -> Iterator[SourceDocument]:
    """Yield the documents in one top-level value: an object, an array or a Graph list response."""
    envelope = isinstance(value, dict) and isinstance(value.get("value"), list)
    if envelope and all(key == "value" or str(key).startswith("@") for key in value):
        diagnostics.extend(_duplicate_keys(rel, base, value, duplicates, "", deep=False))
        if value.get("@odata.nextLink"):
            where = _key_path(base, "@odata.nextLink")
            diagnostics.append(
                _warning(rel, where, "paged Graph response: only this page is loaded")
            )
        base, value = _key_path(base, "value"), value["value"]
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(base, value)]
    elif isinstance(value, list):
        items = [(f"{base}[{i}]", item) for i, item in enumerate(value)]
        if not items:
            diagnostics.append(_warning(rel, base, "no documents"))
    else:
        message = "expected an object, an array of objects or a Graph list response"
        diagnostics.append(_error(rel, base, f"{message}, found {_what(value)}"))
        return
    for path, item in items:
        if not isinstance(item, dict):
            diagnostics.append(_error(rel, path, f"expected an object, found {_what(item)}"))
            continue
        label = _label(item)
        diagnostics.extend(_duplicate_keys(rel, path, item, duplicates, label, deep=True))
        kind, found = _kind(item)
        if kind is None:
            diagnostics.append(_error(rel, path, UNKNOWN_KIND + found, label))
        else:
            yield SourceDocument(kind, rel, path, item, label)


# Top-level fields only a conditionalAccessPolicy has.
_POLICY_ONLY_KEYS = ("grantControls", "sessionControls", "state")


def _kind(doc: dict[str, Any]) -> tuple[DocumentKind | None, str]:
    """Tell the kind by ``@odata.type``, else by shape; else None and what was found."""
    odata_type = doc.get("@odata.type")
    if odata_type is not None and odata_type != "":
        name = str(odata_type).strip().lower().removeprefix("#").removeprefix("microsoft.graph.")
        kind = _BY_TYPE.get(name)
        return kind, "" if kind else f"; found @odata.type {json.dumps(odata_type, default=str)}"
    if isinstance(doc.get("conditions"), dict):
        return DocumentKind.POLICY, ""
    if any(key in doc for key in _POLICY_ONLY_KEYS):
        return DocumentKind.POLICY, ""  # a policy with its conditions missing: parse says so
    for key, kind in _BY_SHAPE:
        if key in doc:
            return kind, ""
    if isinstance(doc.get("pdp"), dict):
        return DocumentKind.PDP_CONFIG, ""
    return None, ""


def _duplicate_keys(
    rel: str, path: str, value: Any, duplicates: _Duplicates, label: str, *, deep: bool
) -> Iterator[Diagnostic]:
    """Report keys written twice in `value` (and, if `deep`, in everything inside it)."""
    if not duplicates or not isinstance(value, dict | list):
        return
    if isinstance(value, list):
        children = [(f"{path}[{i}]", child) for i, child in enumerate(value)]
    else:
        obj, found = duplicates.get(id(value), (value, []))
        for key, harmless in found if obj is value else []:
            severity, what = (Severity.WARNING, _NULL_DUP) if harmless else (Severity.ERROR, _DUP)
            message = f'duplicate key "{key}"{what}'
            yield Diagnostic(severity, rel, _key_path(path, key), message, label)
        children = [(_key_path(path, str(key)), child) for key, child in value.items()]
    for child_path, child in children if deep else []:
        yield from _duplicate_keys(rel, child_path, child, duplicates, label, deep=True)


_DUP = ": the later value silently replaces the earlier one"
_NULL_DUP = ": the later value is used (the earlier one is null or the same)"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _key_path(path: str, key: str) -> str:
    """``$.key`` for identifier-like keys, else ``$["@odata.nextLink"]``."""
    return f"{path}.{key}" if _IDENTIFIER.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _label(doc: dict[str, Any]) -> str:
    """Return the "id" if a non-empty string, else its "displayName", else ""."""
    for key in ("id", "displayName"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _what(value: Any) -> str:
    """Describe a value's JSON type for messages: "a string", "an array", ..."""
    names = ((bool, "a boolean"), ((int, float), "a number"), (str, "a string"), (list, "an array"))
    found = (name for types, name in names if isinstance(value, types))
    return "null" if value is None else next(found, "an object")


def _error(file: str, path: str, message: str, policy: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, file, path, message, policy)


def _warning(file: str, path: str, message: str, policy: str = "") -> Diagnostic:
    return Diagnostic(Severity.WARNING, file, path, message, policy)
