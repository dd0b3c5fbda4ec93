"""Decision -> the forward-auth answer: 200, 401 or 403, and nothing else on purpose.

NGINX's auth_request lets a request through on 2xx, refuses it on 401 (copying the first
`WWW-Authenticate`, in Debian's 1.22) or 403, and turns every other status into a 500 for
the client; Traefik and Caddy pass a non-2xx answer to the client as it is. So pdp answers:

- ALLOW: 200, no body, with the headers Check's allow sets on the upstream request
  (`x-pdp-decision: allow`, `x-pdp-request-id`, `x-pdp-session-max-age` when a sign-in
  frequency applies, `x-pdp-secondary-max-age` when one applies to the second factor only);
  the gateway copies them (`auth_request_set` + `proxy_set_header`,
  `authResponseHeaders`, `copy_headers`), replacing any copy the client sent.
- CHALLENGE: 401 with the RFC 9470 step-up challenge in one `WWW-Authenticate` header and
  the JSON body of requirements, exactly as Check (`pdp.gateway.check_out.challenge`).
- DENY: 403 with the JSON body of messages (`pdp.gateway.check_out.denial`).
- no bearer token: 401 `WWW-Authenticate: Bearer`; a refused token: 401 `Bearer
  error="invalid_token"` with a short description (RFC 6750), its reason as the body's
  `error` and in the audit record.
- anything else that stopped a decision (a malformed request, no policy set, a bug): 403
  with the body's `error` naming it, never 5xx, so NGINX logs no "unexpected status" and no
  gateway can mistake it for a pass. pdp being down is the gateway's own 500/502/503.

Every answer carries `x-pdp-request-id` and `Cache-Control: no-store`; a refusal also
`x-pdp-decision` and, when no decision was made, `x-pdp-error` (for the gateway's log).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from pdp.engine.decision import Decision, Verdict
from pdp.errors import UNAUTHENTICATED_CODES, ErrorCode, TokenRefused
from pdp.gateway.check_out import (
    DECISION_HEADER,
    REQUEST_ID_HEADER,
    SECONDARY_MAX_AGE_HEADER,
    SESSION_MAX_AGE_HEADER,
    challenge,
    denial,
    max_age,
    secondary_max_age,
)

ERROR_HEADER: Final = "x-pdp-error"
_JSON: Final = "application/json"
_MESSAGES: Final[Mapping[ErrorCode, str]] = {
    ErrorCode.INVALID_ARGUMENT: "The request could not be evaluated.",
    ErrorCode.NO_POLICY_SET: "Access policies are not loaded yet. Try again shortly.",
    ErrorCode.INTERNAL: "Access could not be evaluated. Contact your administrator.",
    ErrorCode.RESOURCE_EXHAUSTED: "Access cannot be evaluated right now. Try again shortly.",
}
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def decided(decision: Decision, request_id: str, acr_values: Mapping[str, str]) -> web.Response:
    """The answer to a sign-in pdp decided."""
    verdict = decision.verdict
    if verdict is Verdict.ALLOW:
        headers = {
            DECISION_HEADER: "allow",
            REQUEST_ID_HEADER: request_id,
            "Cache-Control": "no-store",
        }
        age = max_age(decision)
        if age is not None:
            headers[SESSION_MAX_AGE_HEADER] = str(age)
        secondary = secondary_max_age(decision)
        if secondary is not None:
            headers[SECONDARY_MAX_AGE_HEADER] = str(secondary)
        return web.Response(status=200, headers=headers)
    if verdict is Verdict.CHALLENGE:
        www_authenticate, body = challenge(decision, request_id, (), acr_values)
        return _refusal(401, "challenge", body, request_id, www_authenticate)
    return _refusal(403, "deny", denial(decision, request_id), request_id)


def rejected(code: ErrorCode, exc: BaseException, request_id: str) -> web.Response:
    """The fail-closed answer to a request pdp could not decide (always 401 or 403)."""
    body: dict[str, Any] = {"decision": "deny", "error": code.value, "request_id": request_id}
    if code is ErrorCode.UNAUTHENTICATED:
        body["messages"] = ["No bearer token."]
        return _refusal(401, "deny", body, request_id, "Bearer", error=code.value)
    if code in UNAUTHENTICATED_CODES:
        message = exc.message if isinstance(exc, TokenRefused) else "The access token is invalid."
        body["messages"] = [message]
        challenge_ = f'Bearer error="invalid_token", error_description="{message}"'
        return _refusal(401, "deny", body, request_id, challenge_, error=code.value)
    body["messages"] = [_MESSAGES.get(code, _MESSAGES[ErrorCode.INTERNAL])]
    return _refusal(403, "deny", body, request_id, error=code.value)


def _refusal(  # noqa: PLR0917 - the parts of one refusal
    status: int,
    verdict: str,
    body: Mapping[str, Any],
    request_id: str,
    www_authenticate: str = "",
    error: str = "",
) -> web.Response:
    headers = {
        DECISION_HEADER: verdict,
        REQUEST_ID_HEADER: request_id,
        "Cache-Control": "no-store",
    }
    if www_authenticate:
        headers["WWW-Authenticate"] = www_authenticate
    if error:
        headers[ERROR_HEADER] = error
    return web.Response(status=status, headers=headers, text=_dumps(body), content_type=_JSON)
