"""Reading one CheckRequest: its headers, its dynamic metadata, and typed values from both.

Envoy sends headers as a map with lower-case names (`attributes.request.http.headers`, where
repeated headers arrive joined by ",") or, with `encode_raw_headers`, as a list
(`header_map`) that keeps each occurrence. `Headers` reads either, and a plain HTTP
request's headers (`Headers.of`, for the forward-auth endpoint). A value pdp treats as
one item (a user id, a device id, a risk level) must occur once and contain no ","; two
copies mean a client added its own to the gateway's, and the request is refused rather
than read either way. Every failure is `InvalidRequest` naming where the value came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, TypeVar

from pdp.errors import InvalidRequest
from pdp.gateway.config import Source

MAX_HEADER_VALUE: Final = 8192
_TRUE: Final = frozenset({"true", "1", "yes"})
_FALSE: Final = frozenset({"false", "0", "no"})
T = TypeVar("T")


class Headers:
    """The request headers by lower-case name."""

    __slots__ = ("_joined", "_raw")

    def __init__(self, http: Any) -> None:
        self._joined: Mapping[str, str] = http.headers
        self._raw: dict[str, list[str]] | None = None
        if not self._joined and len(http.header_map.headers):
            raw: dict[str, list[str]] = {}
            for entry in http.header_map.headers:
                value = entry.raw_value.decode("latin-1") if entry.raw_value else entry.value
                raw.setdefault(entry.key.lower(), []).append(value)
            self._raw = raw

    @classmethod
    def of(cls, raw: dict[str, list[str]]) -> Headers:
        """Headers from each lower-case name's values in arrival order (a plain HTTP request)."""
        headers = cls.__new__(cls)
        headers._joined = {}
        headers._raw = raw
        return headers

    def get(self, name: str) -> str | None:
        """Every value of `name`, joined by "," as HTTP allows; None when absent."""
        if self._raw is None:
            return self._joined.get(name)
        values = self._raw.get(name)
        return None if values is None else ",".join(values)

    def single(self, name: str) -> str | None:
        """The one value of `name` (stripped; None when absent or empty); refuses copies."""
        if self._raw is not None and len(self._raw.get(name, ())) > 1:
            raise InvalidRequest(f"header {name}", "sent more than once")
        value = self.get(name)
        if value is None:
            return None
        if "," in value:
            raise InvalidRequest(f"header {name}", "sent more than once (or holds a list)")
        if len(value) > MAX_HEADER_VALUE:
            raise InvalidRequest(f"header {name}", f"longer than {MAX_HEADER_VALUE} characters")
        return value.strip() or None

    def items(self, name: str) -> list[str]:
        """The comma-separated items of `name`, stripped, empty ones dropped."""
        value = self.get(name)
        if not value:
            return []
        return [stripped for item in value.split(",") if (stripped := item.strip())]


def read(source: Source, headers: Headers, metadata: Any) -> str | None:
    """The value `source` names in this request, as text; None when absent."""
    if source.kind == "header":
        return headers.single(source.name)
    namespace = metadata.get(source.namespace)
    value = None if namespace is None else namespace.fields.get(source.name)
    if value is None:
        return None
    return scalar(value, str(source))


def scalar(value: Any, where: str) -> str | None:
    """A string, number or bool protobuf Value as text; None for null; lists are refused."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        text: str = value.string_value
        return text.strip() or None
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "number_value":
        number: float = value.number_value
        if not math.isfinite(number):
            raise InvalidRequest(where, f"not a finite number: {number}")
        return str(int(number)) if number.is_integer() else repr(number)
    if kind in (None, "null_value"):
        return None
    raise InvalidRequest(where, f"must be a string, number or bool, not a {kind}")


def boolean(text: str, where: str) -> bool:
    """true/false (also 1/0, yes/no), case-insensitive."""
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise InvalidRequest(where, f"must be true or false, not {text!r}")


def number(text: str, where: str) -> float:
    """A finite decimal number."""
    try:
        value = float(text)
    except ValueError:
        raise InvalidRequest(where, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InvalidRequest(where, f"not a finite number: {text!r}")
    return value


def choice(text: str, table: Mapping[str, T], where: str) -> T:
    """The value for `text` in `table` (lower-case keys), case-insensitive."""
    try:
        return table[text.lower()]
    except KeyError:
        known = ", ".join(table)
        raise InvalidRequest(where, f"unknown value {text!r} (known: {known})") from None
