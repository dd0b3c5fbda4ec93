"""Decoding one policy file: bytes to text to JSON or YAML values, within size limits.

This module owns what a single file may cost. Its text is told by the byte-order mark
(real Graph exports are often UTF-16LE), then parsed as JSON or YAML into plain JSON values
(objects with string keys, arrays, strings, numbers, booleans, null). Every limit is checked
while parsing, so a hostile file is refused in time proportional to its size:

- `MAX_DEPTH` levels of nesting (objects and arrays), after YAML aliases are expanded;
- `MAX_DOCUMENTS` YAML documents in one file;
- `MAX_ALIAS_EXPANSION`: what YAML aliases may add to a document, counted in values and
  characters (an alias "bomb" of nested aliases would otherwise expand to gigabytes);
  an alias to its own ancestor is refused;
- YAML beyond JSON is refused: mapping keys other than strings, and the ``!!binary``,
  ``!!set``, ``!!omap`` and ``!!pairs`` types. Timestamps stay text, as in JSON.

The size of a file and of a whole set is limited by the source walker (`pdp.policy.source`).
Every problem is a `ValueError` whose message says what is wrong (with a line and column
where the parser knows them).

A key written twice in a JSON object is recorded in `Duplicates` for the caller to judge; in
YAML any duplicate key is an error with its line and column.
"""

from __future__ import annotations

import codecs
import contextlib
import json
from collections.abc import Callable, Hashable
from typing import Any, Final

import yaml

MAX_DEPTH: Final = 64
MAX_DOCUMENTS: Final = 100_000
MAX_ALIAS_EXPANSION: Final = 1_000_000

# id(object) -> (object, [(key written twice, whether every earlier value is null or the same)])
Duplicates = dict[int, tuple[dict[str, Any], list[tuple[str, bool]]]]

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


def parse(name: str, text: str, duplicates: Duplicates) -> list[tuple[str, Any]]:
    """Parse JSON (by a ``.json`` name) or YAML into (path, top-level value) pairs.

    A YAML file holding more than one (non-empty) document gives paths ``$#N``; otherwise
    the path is ``$``. Raises `ValueError` saying what is wrong.
    """
    if name.lower().endswith(".json"):
        return [("$", _parse_json(text, duplicates))] if text.strip() else []
    loaded = _parse_yaml(text)
    single = sum(value is not None for value in loaded) == 1
    return [("$" if single else f"$#{i}", v) for i, v in enumerate(loaded) if v is not None]


def _parse_json(text: str, duplicates: Duplicates) -> Any:
    try:
        value = json.loads(text, object_pairs_hook=_pairs_hook(duplicates))
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ValueError(f"invalid JSON: {exc.msg} ({where})") from None
    except RecursionError:
        raise ValueError(f"invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise ValueError(f"invalid JSON: {exc}") from None
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Refuse a value nested deeper than MAX_DEPTH, level by level (no recursion)."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise ValueError(f"invalid JSON: nested deeper than {MAX_DEPTH} levels")
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below += [child for child in children if type(child) in _CONTAINERS]
        level = below


_CONTAINERS = (dict, list)  # exactly the types json.loads builds


def _pairs_hook(duplicates: Duplicates) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
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


def _parse_yaml(text: str) -> list[Any]:
    documents: list[Any] = []
    loader: _YamlLoader | None = None
    try:
        loader = _YamlLoader(text)  # reading starts here: a bad character fails at once
        while loader.check_data():  # type: ignore[no-untyped-call]
            if len(documents) == MAX_DOCUMENTS:
                raise ValueError(f"invalid YAML: more than {MAX_DOCUMENTS:,} documents in a file")
            documents.append(loader.get_data())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ValueError(f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.reader.ReaderError as exc:
        what = f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "byte"
        raise ValueError(f"invalid YAML: {exc.reason}: {what} at {exc.position}") from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise ValueError(f"invalid YAML: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()
    return documents


class _YamlLoader(yaml.SafeLoader):
    """A SafeLoader for JSON values only: limits on nesting and aliases, no duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        """Compose one node, refusing nesting deeper than MAX_DEPTH as it is read."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", mark
                )
            node = super().compose_node(parent, index)
            assert node is not None  # composing a node either returns one or raises
            return node
        finally:
            self._depth -= 1

    def compose_document(self) -> yaml.Node:
        """Compose one document, then refuse it if its aliases expand it too far."""
        node = super().compose_document()
        assert node is not None  # called only when a document follows
        _check_aliases(node)
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Build a mapping, failing on a key that is no string or is written twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<": the merged mapping's keys are checked where it is defined
            key = self.construct_object(key_node)
            if not isinstance(key, str):
                problem = f"a key must be text, found {key!r:.40}"
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            if key in seen:
                problem = f'duplicate key "{key}"'
                raise yaml.constructor.ConstructorError(None, None, problem, key_node.start_mark)
            seen.add(key)
        mapping = super().construct_mapping(node, deep=deep)
        for key in mapping:  # keys merged in with "<<" from an inline mapping
            if not isinstance(key, str):
                problem = f"a key must be text, found {key!r:.40}"
                raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
        return mapping


def _timestamp_as_text(loader: _YamlLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


def _not_json(loader: _YamlLoader, node: yaml.Node) -> None:
    problem = f"the YAML type {node.tag.rsplit(':', 1)[-1]} has no JSON equivalent"
    raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


_YamlLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
for _tag in ("binary", "set", "omap", "pairs"):
    _YamlLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _not_json)


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a document whose aliases add more than MAX_ALIAS_EXPANSION, or loop.

    The size of a node is 1 plus its scalar's length, or plus its children's sizes; an alias
    is the node it names, so a node reached twice counts twice. Sizes and depths are
    memoised per node, which makes this linear in the composed (not expanded) document.
    """
    memo: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, depth below it)
    composed = 0  # size as written: each node once
    budget_note = f"YAML aliases expand this document by more than {MAX_ALIAS_EXPANSION:,}"

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        nonlocal composed
        known = memo.get(id(node))
        if known is not None:
            if known[0] < 0:
                raise yaml.composer.ComposerError(
                    None, None, "a YAML alias refers to its own ancestor", node.start_mark
                )
            if depth + known[1] >= MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_DEPTH} levels", node.start_mark
                )
            return known
        memo[id(node)] = (-1, 0)  # being measured: reaching it again is a loop
        if isinstance(node, yaml.ScalarNode):
            size, below = 1 + len(node.value), 0
            composed += size
        else:
            composed += 1
            size, below = 1, 0
            children = (
                [c for pair in node.value for c in pair]
                if isinstance(node, yaml.MappingNode)
                else node.value
            )
            for child in children:
                child_size, child_below = measure(child, depth + 1)
                size += child_size
                below = max(below, child_below + 1)
                if size - composed > MAX_ALIAS_EXPANSION:
                    raise yaml.composer.ComposerError(
                        None, None, f"{budget_note} values and characters", node.start_mark
                    )
        memo[id(node)] = (size, below)
        return size, below

    measure(root, 0)
