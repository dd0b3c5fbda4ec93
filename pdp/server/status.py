"""The one table where pdp's error codes meet gRPC: the status each `ErrorCode` answers.

Evaluate aborts a call that got no decision with `GRPC_STATUS[code]` and the error's public
message; the `grpc_code` label of the gRPC metrics and the audit record's status number
come from the same code (`pdp.errors.STATUS_NUMBERS`, which a test keeps equal to this).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import grpc

from pdp.errors import UNAUTHENTICATED_CODES, ErrorCode

GRPC_STATUS: Final[Mapping[ErrorCode, grpc.StatusCode]] = MappingProxyType(
    {
        ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.NO_POLICY_SET: grpc.StatusCode.UNAVAILABLE,
        ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
        ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
        ErrorCode.CANCELLED: grpc.StatusCode.CANCELLED,
        ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
        **dict.fromkeys(UNAUTHENTICATED_CODES, grpc.StatusCode.UNAUTHENTICATED),
    }
)
