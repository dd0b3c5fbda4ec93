"""Policy sources: files on disk to a flat list of raw Microsoft Graph documents.

This module owns the first stage of loading a policy set: finding the policy files under a
root (one file, or a folder walked recursively, links followed once, Kubernetes ConfigMap
mounts included), reading them within size limits (`MAX_FILE_BYTES` per file,
`MAX_SET_BYTES` in all, `MAX_FILES` files), having `pdp.policy.decode` parse them,
unwrapping the accepted top-level shapes (one object, an array of objects, a Graph list
response ``{"value": [...]}``; at most `MAX_DOCUMENTS` per file) and telling each
document's kind. It does not validate what a document says; that is the parser's job.

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

`walk` is also what the hot reloader polls, so a change is noticed exactly in the files a
load reads.
"""

from __future__ import annotations

import enum
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pdp.policy.decode import MAX_DOCUMENTS, Duplicates, decode_text, parse
from pdp.policy.diagnostics import Diagnostic, Severity, key_path, quote

SUFFIXES = (".json", ".yaml", ".yml")
MAX_FILE_BYTES: Final = 64 * 1024 * 1024
MAX_SET_BYTES: Final = 256 * 1024 * 1024
MAX_FILES: Final = 10_000
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


def load_sources(root: Path) -> LoadedSources:
    """Read every policy file under `root` (a file or a folder) into raw documents.

    Never raises for bad input: every problem is a diagnostic, and `digest` changes exactly
    when a file's relative path or bytes change.
    """
    files, diagnostics = walk(root)
    documents: list[SourceDocument] = []
    read: list[tuple[str, bytes]] = []
    total = 0
    for file in files:
        size = file.stat.st_size if file.stat is not None else 0
        if total + size > MAX_SET_BYTES:
            limit = f"{MAX_SET_BYTES:,} bytes"
            diagnostics.append(_error(file.rel, "$", f"the policy files exceed {limit} in all"))
            break
        raw = _read(file, diagnostics)
        if raw is None:
            continue
        total += len(raw)
        read.append((file.rel, raw))
        documents.extend(_load_file(file.rel, raw, diagnostics))
    return LoadedSources(documents, diagnostics, _digest(read), [rel for rel, _ in read])


@dataclass(frozen=True, slots=True)
class PolicyFile:
    """A policy file found under a root: its relative path, its path, and its stat."""

    rel: str  # relative to the root given (the file name itself when root is a file)
    path: Path
    stat: os.stat_result | None  # links followed; None when it could not be taken


def walk(root: Path) -> tuple[list[PolicyFile], list[Diagnostic]]:
    """The policy files under `root` (a file or a folder), sorted, and what went wrong.

    Links are followed, each folder at most once (by device and inode), so links to an
    ancestor (``ln -s . loop``) neither loop nor repeat. Hidden entries are skipped, which
    covers Kubernetes ConfigMap mounts: the visible files are links through ``..data``. A
    file that is not a regular file (a FIFO, a device) is skipped with a warning. At most
    `MAX_FILES` files are listed. Never raises for bad input.
    """
    diagnostics: list[Diagnostic] = []
    try:
        root_stat = root.stat()
    except FileNotFoundError:
        diagnostics.append(_error(str(root), "$", "no such file or directory"))
        return [], diagnostics
    except OSError as exc:
        diagnostics.append(_error(str(root), "$", f"cannot read ({_reason(exc)})"))
        return [], diagnostics
    if not stat.S_ISDIR(root_stat.st_mode):
        if not root.name.lower().endswith(SUFFIXES):
            diagnostics.append(_error(root.name, "$", "not a .json, .yaml or .yml file"))
            return [], diagnostics
        return [PolicyFile(root.name, root, root_stat)], diagnostics
    files: list[PolicyFile] = []
    seen = {(root_stat.st_dev, root_stat.st_ino)}
    folders = [(root, "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            names = sorted(entry.name for entry in os.scandir(folder))
        except OSError as exc:
            where = prefix.rstrip("/") or str(root)
            diagnostics.append(_error(where, "$", f"cannot read folder ({_reason(exc)})"))
            continue
        later: list[tuple[Path, str]] = []
        for name in names:
            if name.startswith("."):
                continue
            path, rel = folder / name, prefix + name
            try:
                st: os.stat_result | None = path.stat()
            except OSError:
                st = None  # a dangling link or a link loop: read() says why, if it is a file
            if st is not None and stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    later.append((path, rel + "/"))
            elif not name.lower().endswith(SUFFIXES):
                continue
            elif st is not None and not stat.S_ISREG(st.st_mode):
                diagnostics.append(_warning(rel, "$", "not a regular file: skipped"))
            elif len(files) == MAX_FILES:
                message = f"more than {MAX_FILES:,} policy files: the rest are not read"
                diagnostics.append(_error(str(root), "$", message))
                return sorted(files, key=lambda f: f.rel), diagnostics
            else:
                files.append(PolicyFile(rel, path, st))
        folders.extend(reversed(later))
    if not files and not diagnostics:
        diagnostics.append(_error(str(root), "$", "no .json, .yaml or .yml files found"))
    return sorted(files, key=lambda f: f.rel), diagnostics


def _read(file: PolicyFile, diagnostics: list[Diagnostic]) -> bytes | None:
    """The bytes of one file, or None (and a diagnostic) when unreadable or too large."""
    too_large = f"file is larger than {MAX_FILE_BYTES:,} bytes, the limit for one file"
    if file.stat is not None and file.stat.st_size > MAX_FILE_BYTES:
        diagnostics.append(_error(file.rel, "$", too_large))
        return None
    try:
        with file.path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        diagnostics.append(_error(file.rel, "$", f"cannot read file ({_reason(exc)})"))
        return None
    if len(raw) > MAX_FILE_BYTES:  # it grew after the walk
        diagnostics.append(_error(file.rel, "$", too_large))
        return None
    return raw


def _reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


def _digest(files: list[tuple[str, bytes]]) -> str:
    """Sha256 over length-prefixed relative paths and contents (unambiguous framing)."""
    digest = hashlib.sha256()
    for rel, raw in files:
        name = rel.encode("utf-8", "surrogateescape")
        for part in (name, raw):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def _load_file(rel: str, raw: bytes, diagnostics: list[Diagnostic]) -> Iterator[SourceDocument]:
    """Decode and parse one file, then unwrap and classify its top-level values."""
    duplicates: Duplicates = {}
    try:
        values = parse(rel, decode_text(raw), duplicates)
    except ValueError as exc:
        diagnostics.append(_error(rel, "$", str(exc)))
        return
    if not values:
        diagnostics.append(_warning(rel, "$", "no documents"))
    for base, value in values:
        yield from _unwrap(rel, base, value, duplicates, diagnostics)


def _unwrap(
    rel: str, base: str, value: Any, duplicates: Duplicates, diagnostics: list[Diagnostic]
) -> Iterator[SourceDocument]:
    """Yield the documents in one top-level value: an object, an array or a Graph list response."""
    envelope = isinstance(value, dict) and isinstance(value.get("value"), list)
    if envelope and all(key == "value" or str(key).startswith("@") for key in value):
        diagnostics.extend(_duplicate_keys(rel, base, value, duplicates, "", deep=False))
        if value.get("@odata.nextLink"):
            where = key_path(base, "@odata.nextLink")
            diagnostics.append(
                _warning(rel, where, "paged Graph response: only this page is loaded")
            )
        base, value = key_path(base, "value"), value["value"]
    if isinstance(value, dict):
        items: list[tuple[str, Any]] = [(base, value)]
    elif isinstance(value, list):
        if len(value) > MAX_DOCUMENTS:
            message = f"more than {MAX_DOCUMENTS:,} documents in one file"
            diagnostics.append(_error(rel, base, message))
            return
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
        if not isinstance(odata_type, str):
            return None, f"; found @odata.type {quote(odata_type)}"
        name = odata_type.strip().lower().removeprefix("#").removeprefix("microsoft.graph.")
        kind = _BY_TYPE.get(name)
        return kind, "" if kind else f"; found @odata.type {quote(odata_type)}"
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
    rel: str, path: str, value: Any, duplicates: Duplicates, label: str, *, deep: bool
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
            yield Diagnostic(severity, rel, key_path(path, key), message, label)
        children = [(key_path(path, str(key)), child) for key, child in value.items()]
    for child_path, child in children if deep else []:
        yield from _duplicate_keys(rel, child_path, child, duplicates, label, deep=True)


_DUP = ": the later value silently replaces the earlier one"
_NULL_DUP = ": the later value is used (the earlier one is null or the same)"


_LABEL_LIMIT = 200


def _label(doc: dict[str, Any]) -> str:
    """Return the "id" if a non-empty string, else its "displayName", else ""."""
    for key in ("id", "displayName"):
        value = doc.get(key)
        if isinstance(value, str) and value:
            return value if len(value) <= _LABEL_LIMIT else f"{value[:_LABEL_LIMIT]}..."
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
