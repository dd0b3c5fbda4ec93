"""A verified token's claims as plain Python values, whichever way in verified the token.

Envoy's jwt_authn filter hands the payload over as a protobuf `Struct` in the request's
dynamic metadata; a gateway that leaves verification to pdp has its payload decoded as a
JSON object. `pdp.gateway.identity` maps claims to a sign-in from one shape, a mapping of
claim names to JSON values (str, int or float, bool, None, list, dict); `StructClaims`
presents a `Struct` that way, converting a claim only when it is read (a token carries many
claims the mapping never reads).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class StructClaims(Mapping[str, object]):
    """The fields of a protobuf Struct as JSON values, converted on access."""

    __slots__ = ("_fields",)

    def __init__(self, fields: Any) -> None:
        self._fields = fields

    def __getitem__(self, name: str) -> object:
        if name not in self._fields:
            raise KeyError(name)
        return json_value(self._fields[name])

    def get(self, name: str, default: object = None) -> object:
        """The claim `name` as a JSON value, or `default` when the token has none."""
        value = self._fields.get(name)
        return default if value is None else json_value(value)

    def __contains__(self, name: object) -> bool:
        return name in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


def json_value(value: Any) -> object:
    """A protobuf `Value` as the JSON value it holds."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return value.string_value
    if kind == "number_value":
        return value.number_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "list_value":
        return [json_value(item) for item in value.list_value.values]
    if kind == "struct_value":
        return {key: json_value(item) for key, item in value.struct_value.fields.items()}
    return None
