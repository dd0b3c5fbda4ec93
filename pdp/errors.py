"""Every error pdp raises on purpose, under one root, and the closed vocabulary naming them.

`PdpError` is the root. A request that cannot be decided raises `InvalidRequest` (naming the
field and the bad value), `NoPolicySet`, or `TokenRefused` (no bearer token, or one that pdp
verified itself and refused, with the reason as its code); a policy set that is refused raises
`pdp.policy.diagnostics.PolicySetError`; a setting, file or address the process cannot use
at start raises `StartupError`, which the command line turns into one line on stderr and
exit code 1 in one place (`pdp.cli`). Anything else is a bug.

`ErrorCode` names why a call got no decision. The same code appears in log records, in the
audit record's `status.failureReason` and, through each transport's one table, in the
answer the caller sees (a gRPC status for Evaluate, an HTTP status for Envoy's Check), so a
dashboard, a log line, an audit record and a client agree.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final


class PdpError(Exception):
    """The root of the errors pdp raises on purpose."""


class InvalidRequest(PdpError, ValueError):  # noqa: N818 - the domain's word for it
    """A request field failed validation; `field` says where (e.g. network.ip_address)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class NoPolicySet(PdpError, LookupError):  # noqa: N818 - the domain's word for the state
    """No policy set has been loaded yet, so no decision can be made."""

    def __init__(self) -> None:
        super().__init__("no policy set is loaded")


class Overloaded(PdpError):  # noqa: N818 - the state, like NoPolicySet
    """pdp is over one of its limits for this call: too many at once, or too large."""


class TokenRefused(PdpError):  # noqa: N818 - says what happened to the token
    """No bearer token, or one pdp refused; `code` names why (never the token itself)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StartupError(PdpError):
    """A setting, file or address the process cannot use: one line, naming the flag or file."""


class ErrorCode(enum.StrEnum):
    """Why a call got no decision."""

    INVALID_ARGUMENT = "invalid_argument"  # the request is malformed: the caller must fix it
    NO_POLICY_SET = "no_policy_set"  # no policy set loaded yet: retry later
    INTERNAL = "internal"  # a bug in pdp: logged with its traceback
    DEADLINE_EXCEEDED = "deadline_exceeded"  # the caller's deadline passed before evaluation
    CANCELLED = "cancelled"  # the caller went away (or the server stopped) mid-call
    RESOURCE_EXHAUSTED = "resource_exhausted"  # over pdp's limits (calls at once, size): retry
    UNAUTHENTICATED = "unauthenticated"  # no bearer token where pdp verifies tokens itself
    # A bearer token pdp verified itself and refused, by reason:
    TOKEN_MALFORMED = "token_malformed"  # not a JWT pdp can read (or too long, or no kid)
    TOKEN_ALGORITHM = "token_algorithm"  # signed with an algorithm outside the allow-list
    TOKEN_UNKNOWN_KEY = "token_unknown_key"  # its kid is not in the issuer's JWKS
    TOKEN_KEYS_UNAVAILABLE = "token_keys_unavailable"  # the JWKS could not be fetched
    TOKEN_SIGNATURE = "token_signature"  # the signature does not verify
    TOKEN_EXPIRED = "token_expired"  # exp passed (beyond the clock skew)
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"  # nbf or iat in the future
    TOKEN_AUDIENCE = "token_audience"  # aud is not one of ours
    TOKEN_ISSUER = "token_issuer"  # iss is not one of ours
    TOKEN_TENANT = "token_tenant"  # tid is not our tenant
    TOKEN_CLAIMS = "token_claims"  # a required claim is missing


# Every code that means "not authenticated": no token, or a token refused.
UNAUTHENTICATED_CODES: Final = frozenset(
    code for code in ErrorCode if code is ErrorCode.UNAUTHENTICATED or code.startswith("token_")
)

# The canonical status number of each code (google.rpc.Code, the numbers gRPC uses), which
# the audit record writes as `status.errorCode`.
STATUS_NUMBERS: Final[Mapping[ErrorCode, int]] = MappingProxyType(
    {
        ErrorCode.CANCELLED: 1,
        ErrorCode.INVALID_ARGUMENT: 3,
        ErrorCode.DEADLINE_EXCEEDED: 4,
        ErrorCode.RESOURCE_EXHAUSTED: 8,
        ErrorCode.INTERNAL: 13,
        ErrorCode.NO_POLICY_SET: 14,  # UNAVAILABLE
        **dict.fromkeys(UNAUTHENTICATED_CODES, 16),  # UNAUTHENTICATED
    }
)


def error_code(exc: BaseException) -> ErrorCode:
    """The code of an exception raised while deciding; anything unexpected is INTERNAL."""
    if isinstance(exc, InvalidRequest):
        return ErrorCode.INVALID_ARGUMENT
    if isinstance(exc, NoPolicySet):
        return ErrorCode.NO_POLICY_SET
    if isinstance(exc, Overloaded):
        return ErrorCode.RESOURCE_EXHAUSTED
    if isinstance(exc, TokenRefused):
        return exc.code
    return ErrorCode.INTERNAL


def public_message(exc: BaseException) -> str:
    """What a caller is told: the field and message, never the internals of a bug."""
    if error_code(exc) is ErrorCode.INTERNAL:
        return "internal error: see the pdp log"
    return str(exc)
