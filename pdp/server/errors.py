"""The closed vocabulary of request errors, and the one table mapping them to gRPC codes.

Every way a call can fail is one `ErrorCode`; the same codes name the failure in log
records and in the audit record's `status.failureReason`, and `GRPC_STATUS` gives the status
the caller (and the `grpc_code` label of the gRPC metrics) sees, so a dashboard, a log line,
an audit record and a client's status code agree. `error_code` classifies an exception;
`GRPC_STATUS` is the only place a code meets gRPC.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import grpc

from pdp.policy_store import NoPolicySet


class ErrorCode(enum.StrEnum):
    """Why a decision could not be made."""

    INVALID_ARGUMENT = "invalid_argument"  # the request is malformed: the caller must fix it
    NO_POLICY_SET = "no_policy_set"  # no policy set loaded yet: retry later
    INTERNAL = "internal"  # a bug in pdp: logged with its traceback
    DEADLINE_EXCEEDED = "deadline_exceeded"  # the caller's deadline passed before evaluation
    CANCELLED = "cancelled"  # the caller went away (or the server stopped) mid-call


GRPC_STATUS: Final[Mapping[ErrorCode, grpc.StatusCode]] = MappingProxyType(
    {
        ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
        ErrorCode.NO_POLICY_SET: grpc.StatusCode.UNAVAILABLE,
        ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
        ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
        ErrorCode.CANCELLED: grpc.StatusCode.CANCELLED,
    }
)


class InvalidRequest(ValueError):  # noqa: N818 - the domain's word, like NoPolicySet
    """A request field failed validation; `field` is its proto path (e.g. network.ip_address)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def error_code(exc: BaseException) -> ErrorCode:
    """The code of an exception raised while deciding; anything unexpected is INTERNAL."""
    if isinstance(exc, InvalidRequest):
        return ErrorCode.INVALID_ARGUMENT
    if isinstance(exc, NoPolicySet):
        return ErrorCode.NO_POLICY_SET
    return ErrorCode.INTERNAL


def failure(code: ErrorCode) -> tuple[int, str]:
    """The audit record's (status number, reason) for a call that ended with `code`."""
    status: int = GRPC_STATUS[code].value[0]
    return status, code.value


def public_message(exc: BaseException) -> str:
    """What the caller is told: the field and message, never the internals of a bug."""
    code = error_code(exc)
    if code is ErrorCode.INTERNAL:
        return "internal error: see the pdp log"
    return str(exc)
