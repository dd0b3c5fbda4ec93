"""Sign-ins written as EvaluateRequest JSON (proto3 JSON), turned into `SignInContext`s.

Test suites describe sign-ins in the request shape users already know from
`pdp evaluate` and `examples/requests/`. This module is the only place in `pdp.tooling`
that knows how that shape becomes the engine's input, so when the transport's mapping
moves, one import changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from pdp.context import SignInContext
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2 as pb


def sign_in_from_json(request: Mapping[str, Any], now: float) -> SignInContext:
    """The sign-in an EvaluateRequest (proto3 JSON, as a mapping) describes.

    `now` is its time when the request has none. Raises ValueError naming the field and
    what is wrong (unknown fields, bad enum names, an invalid IP, ...).
    """
    message = pb.EvaluateRequest()
    try:
        json_format.ParseDict(dict(request), message)  # unknown fields are errors
        return to_context(message, now)
    except (json_format.ParseError, ValueError) as exc:
        raise ValueError(str(exc)) from None
