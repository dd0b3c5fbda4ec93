"""Typed reads from the gateway config's YAML, and the errors that name the bad key.

`Reader` wraps one mapping; each typed read marks its key as read, and `done` rejects the
keys no setting read, so a misspelt setting is an error rather than a silent default.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final, Literal

from pdp.errors import StartupError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def within(address: tuple[str, int | None, int], networks: tuple[Network, ...]) -> bool:
    """Whether a parsed address (text, value, version) lies in one of `networks`."""
    _, value, version = address
    if value is None or not networks:
        return False
    found = _ranges.get(id(networks))
    if found is None or found[0] is not networks:  # a config's tuples live as long as it
        found = _ranges[id(networks)] = (
            networks,
            tuple((n.version, int(n.network_address), int(n.broadcast_address)) for n in networks),
        )
    return any(v == version and low <= value <= high for v, low, high in found[1])


# id(networks) -> (networks, their (version, first, last) ranges); held, so ids stay theirs.
_ranges: dict[int, tuple[tuple[Network, ...], tuple[tuple[int, int, int], ...]]] = {}


class GatewayConfigError(StartupError):
    """The gateway config is invalid; the message names the key path and the bad value."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a signal comes from: a request header, or a key in a dynamic-metadata namespace."""

    kind: Literal["header", "metadata"]
    name: str  # the header name (lower-case) or the metadata key
    namespace: str = ""  # the filter_metadata namespace, for metadata

    def __str__(self) -> str:
        if self.kind == "header":
            return f"header {self.name}"
        return f"metadata {self.namespace}:{self.name}"


class Reader:
    """Typed reads from one YAML mapping; `done` rejects the keys nobody read."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            raise GatewayConfigError(f"{path or 'the config'}: must be a mapping with text keys")
        self._data: dict[str, object] = dict(data)
        self._path = path

    def _at(self, key: str) -> str:
        return f"{self._path}.{key}" if self._path else key

    def keys(self) -> list[str]:
        """The keys not read yet."""
        return list(self._data)

    def take(self, key: str) -> object:
        """The raw value of `key` (None when absent), marking it read."""
        return self._data.pop(key, None)

    def done(self) -> None:
        """Raise for every key that no setting read: it is a typo or an unknown setting."""
        if self._data:
            unknown = ", ".join(self._at(k) for k in sorted(self._data))
            raise GatewayConfigError(f"unknown setting: {unknown}")

    def section(self, key: str) -> Reader:
        """The nested mapping at `key` (empty when absent)."""
        value = self.take(key)
        return Reader({} if value is None else value, self._at(key))

    def text(self, key: str, default: str) -> str:
        """A string setting."""
        value = self.take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise GatewayConfigError(f"{self._at(key)}: must be text, not {value!r}")
        return str(value).strip()

    def texts(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A list of strings (a single string is a list of one)."""
        value = self.take(key)
        if value is None:
            return default
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise GatewayConfigError(f"{self._at(key)}: must be a list of text, not {value!r}")
        return tuple(i.strip() for i in items if i.strip())

    def integer(self, key: str, default: int) -> int:
        """A non-negative integer setting."""
        value = self.take(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GatewayConfigError(f"{self._at(key)}: must be an integer >= 0, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        """A true/false setting."""
        value = self.take(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise GatewayConfigError(f"{self._at(key)}: must be true or false, not {value!r}")
        return value

    def mapping(self, key: str) -> dict[str, str]:
        """A mapping of text to text."""
        section = self.section(key)
        out = {k: section.text(k, "") for k in list(section.keys())}
        section.done()
        return out

    def header(self, key: str) -> str:
        """A header name, lower-cased as Envoy sends header names."""
        name = self.text(key, "").lower()
        if name and not _TOKEN.fullmatch(name):
            raise GatewayConfigError(f"{self._at(key)}: not an HTTP header name: {name!r}")
        return name

    def networks(self, key: str) -> tuple[Network, ...]:
        """A list of CIDR ranges."""
        out = []
        for text in self.texts(key, ()):
            try:
                out.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise GatewayConfigError(f"{self._at(key)}: not a CIDR range: {text!r}") from None
        return tuple(out)

    def pattern(self, key: str, default: str) -> re.Pattern[str]:
        """A regular expression."""
        return self.pattern_of(self.text(key, default), key)

    def pattern_of(self, text: str, key: str) -> re.Pattern[str]:
        """`text` compiled as a regular expression for the setting `key`."""
        try:
            return re.compile(text)
        except re.error as exc:
            raise GatewayConfigError(f"{self._at(key)}: bad regular expression: {exc}") from None

    def source(self, key: str) -> Source | None:
        """`header:NAME` or `metadata:NAMESPACE:KEY`; None when not configured."""
        text = self.text(key, "")
        if not text:
            return None
        kind, _, rest = text.partition(":")
        if kind == "header" and _TOKEN.fullmatch(rest.lower()):
            return Source("header", rest.lower())
        namespace, _, name = rest.rpartition(":")
        if kind == "metadata" and namespace and name:
            return Source("metadata", name, namespace)
        raise GatewayConfigError(
            f"{self._at(key)}: must be header:NAME or metadata:NAMESPACE:KEY, not {text!r}"
        )


_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9a-z]+")  # RFC 9110 token, lower-case
