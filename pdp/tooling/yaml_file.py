"""Read one YAML file of pdp's own formats (test suites) strictly, remembering where keys are.

A key written twice is an error (a typo must not silently replace a value), time stamps
stay text (they are parsed where their meaning is known), and every key's line is kept by
its JSON-like path (`$.tests[2].expect.decision`), so that messages and JUnit output can
point at the line a person has to fix.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml


class YamlFileError(ValueError):
    """The file is not YAML pdp can read; the message names the line and column."""


@dataclass(frozen=True, slots=True)
class YamlFile:
    """A parsed YAML document and the line (1-based) of every key and list item in it."""

    data: Any
    lines: Mapping[str, int] = field(default_factory=dict)

    def line(self, path: str) -> int:
        """The line of `path`, or of its nearest enclosing key that has one (else 1)."""
        while path:
            found = self.lines.get(path)
            if found is not None:
                return found
            cut = max(path.rfind("."), path.rfind("["))
            if cut <= 0:
                break
            path = path[:cut]
        return 1


class _Loader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys and keeps time stamps as text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} written twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _timestamp_as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def parse_yaml(text: str) -> YamlFile:
    """Parse one YAML document; raise YamlFileError for bad YAML or several documents."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
        if len(nodes) > 1:
            line = nodes[1].start_mark.line + 1
            raise YamlFileError(f"line {line}: one YAML document per file, found a second one")
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise YamlFileError(f"{where}{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise YamlFileError(" ".join(str(exc).split())) from None
    lines: dict[str, int] = {}
    if nodes and nodes[0] is not None:
        _record_lines(nodes[0], "$", lines)
    return YamlFile(data, lines)


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = f"{path}.{key_node.value}"
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, f"{path}[{i}]", lines)


def unknown_keys(obj: Mapping[str, Any], known: Iterable[str]) -> list[str]:
    """The keys of `obj` that are not in `known`, in file order."""
    allowed = set(known)
    return [str(key) for key in obj if key not in allowed]
