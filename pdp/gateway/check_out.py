"""Decision -> CheckResponse: pdp's decision in Envoy's words, mapped once.

- ALLOW: OK. The upstream request gets `x-pdp-decision`, `x-pdp-request-id` and, when a
  sign-in frequency applies, `x-pdp-session-max-age` (seconds; 0 for every time), and
  `x-pdp-secondary-max-age` when one applies to the second factor only
  (`authenticationType: secondaryAuthentication`). Each is set with
  OVERWRITE_IF_EXISTS_OR_ADD, which replaces every copy a client sent; a client's copy of
  either max-age header is removed when pdp sets none (`headers_to_remove`, which Envoy
  applies after the set headers, so it never names a header pdp sets).
- CHALLENGE: 401 with RFC 9470's step-up challenge, `WWW-Authenticate: Bearer
  error="insufficient_user_authentication", error_description="...", acr_values="..."`
  (the acr value configured for an unmet control, and the authentication contexts the route
  requires) and `max_age="N"` when re-authentication is due; a JSON body lists the
  requirements and messages, and `secondary_max_age` when only the second factor is due
  (the acr value configured for `secondaryReauthentication`, if any, is asked for).
- DENY: 403 with a JSON body of messages and the request id.
- A request pdp could not evaluate is denied, never allowed (fail closed): 401 without
  identity, 403 for a malformed request, 503 with no policy set loaded, 500 for a bug.

Every answer carries the decision in `dynamic_metadata` (namespace
`envoy.filters.http.ext_authz` in Envoy) so access logs can record it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pdp.engine.decision import Decision, Verdict
from pdp.errors import ErrorCode
from pdp.gateway.envoy import OVERWRITE, auth
from pdp.gateway.identity import Unauthenticated
from pdp.policy.model import EVERY_TIME

DECISION_HEADER: Final = "x-pdp-decision"
REQUEST_ID_HEADER: Final = "x-pdp-request-id"
SESSION_MAX_AGE_HEADER: Final = "x-pdp-session-max-age"
SECONDARY_MAX_AGE_HEADER: Final = "x-pdp-secondary-max-age"
INSUFFICIENT: Final = "insufficient_user_authentication"
REAUTHENTICATION: Final = "reauthentication"
SECONDARY_REAUTHENTICATION: Final = "secondaryReauthentication"
_OK: Final = 0  # google.rpc.Code OK
_PERMISSION_DENIED: Final = 7
_UNAUTHENTICATED: Final = 16
_REJECTED: Final[Mapping[ErrorCode, tuple[int, str]]] = {
    ErrorCode.INVALID_ARGUMENT: (403, "The request could not be evaluated."),
    ErrorCode.NO_POLICY_SET: (503, "Access policies are not loaded yet. Try again shortly."),
    ErrorCode.INTERNAL: (500, "Access could not be evaluated. Contact your administrator."),
    ErrorCode.RESOURCE_EXHAUSTED: (503, "Access cannot be evaluated right now. Try again shortly."),
    ErrorCode.DEADLINE_EXCEEDED: (503, "Access cannot be evaluated right now. Try again shortly."),
}


class CheckWriter:
    """Decision -> serialized CheckResponse, from a template per outcome and id length.

    Outcomes repeat (the engine hands out the same requirement, message and session objects
    for the same outcome) and only the request id differs between their answers. So the
    answer is serialized once with a placeholder id of the same length, and each call
    replaces the placeholder with its id. A template is kept only when a second placeholder
    put in its place gives exactly the answer serialized with that placeholder as the id (so
    every place it replaces is an id's place); an id that JSON or a header would write
    otherwise takes the plain path. The result is exactly `to_check_response`'s answer.
    """

    LIMIT: Final = 4096

    def __init__(self, acr_values: Mapping[str, str]) -> None:
        self._acr_values = acr_values
        self._templates: dict[tuple[object, ...], tuple[Decision, bytes] | None] = {}

    def write(self, decision: Decision, request_id: str, route_contexts: tuple[str, ...]) -> bytes:
        """The serialized CheckResponse for `decision` on the request `request_id`."""
        key = (
            id(decision.requirements),
            id(decision.messages),
            id(decision.session),
            decision.verdict,
            decision.policy_version,
            route_contexts,
            len(request_id),
        )
        found = self._templates.get(key)
        if found is not None:
            kept, template = found
            if (
                kept.requirements is decision.requirements
                and kept.messages is decision.messages
                and kept.session is decision.session
                and _PLAIN_ID.fullmatch(request_id)
            ):
                return template.replace(_placeholder(len(request_id)), request_id.encode())
        elif key not in self._templates and _PLAIN_ID.fullmatch(request_id):
            self._remember(key, decision, len(request_id), route_contexts)
            return self.write(decision, request_id, route_contexts)
        answer = to_check_response(decision, request_id, route_contexts, self._acr_values)
        data: bytes = answer.SerializeToString()
        return data

    def _remember(
        self, key: tuple[object, ...], decision: Decision, size: int, route: tuple[str, ...]
    ) -> None:
        def serialized(request_id: str) -> bytes:
            answer = to_check_response(decision, request_id, route, self._acr_values)
            data: bytes = answer.SerializeToString()
            return data

        placeholder, probe = _placeholder(size), b"-" * size
        template = serialized(placeholder.decode())
        if len(self._templates) >= self.LIMIT:
            self._templates.clear()
        exact = template.replace(placeholder, probe) == serialized(probe.decode())
        self._templates[key] = (decision, template) if exact else None


_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9._~:/+=-]+")  # written as is in JSON and headers


def _placeholder(size: int) -> bytes:
    """The placeholder id of `size` characters."""
    return b"~" * size


def to_check_response(
    decision: Decision,
    request_id: str,
    route_contexts: Iterable[str],
    acr_values: Mapping[str, str],
) -> Any:
    """The CheckResponse for pdp's decision on one request."""
    verdict = decision.verdict
    if verdict is Verdict.ALLOW:
        return _allow(decision, request_id)
    if verdict is Verdict.CHALLENGE:
        return _challenge(decision, request_id, route_contexts, acr_values)
    body = denial(decision, request_id)
    return _denied(403, _PERMISSION_DENIED, body, _metadata(decision, request_id), request_id)


def denial(decision: Decision, request_id: str) -> dict[str, Any]:
    """The JSON body of a 403 for a denied sign-in."""
    return {"decision": "deny", "request_id": request_id, "messages": [*decision.messages]}


def rejected(code: ErrorCode, exc: BaseException, request_id: str) -> Any:
    """The fail-closed answer to a request pdp could not evaluate."""
    meta = {"pdp_decision": "deny", "pdp_request_id": request_id, "pdp_error": code.value}
    if isinstance(exc, Unauthenticated):
        meta["pdp_error"] = "unauthenticated"
        body: dict[str, Any] = {
            "decision": "deny",
            "error": "unauthenticated",
            "request_id": request_id,
        }
        headers = {"www-authenticate": "Bearer"}
        return _denied(401, _UNAUTHENTICATED, body, meta, request_id, headers)
    status, message = _REJECTED.get(code, _REJECTED[ErrorCode.INTERNAL])
    body = {
        "decision": "deny",
        "error": code.value,
        "request_id": request_id,
        "messages": [message],
    }
    return _denied(status, _PERMISSION_DENIED, body, meta, request_id)


def max_age(decision: Decision) -> int | None:
    """The sign-in frequency in seconds (0 for every time); None when no policy sets one."""
    return _seconds(decision.session.sign_in_frequency)


def secondary_max_age(decision: Decision) -> int | None:
    """The second factor's sign-in frequency in seconds (0 for every time), or None."""
    return _seconds(decision.session.secondary_sign_in_frequency)


def _seconds(frequency: int | None) -> int | None:
    return 0 if frequency == EVERY_TIME else frequency


def _allow(decision: Decision, request_id: str) -> Any:
    check = auth.CheckResponse()
    check.status.code = _OK
    ok = check.ok_response
    _header(ok.headers, DECISION_HEADER, "allow")
    _header(ok.headers, REQUEST_ID_HEADER, request_id)
    for name, age in (
        (SESSION_MAX_AGE_HEADER, max_age(decision)),
        (SECONDARY_MAX_AGE_HEADER, secondary_max_age(decision)),
    ):
        if age is None:
            ok.headers_to_remove.append(name)
        else:
            _header(ok.headers, name, str(age))
    _set_metadata(check.dynamic_metadata, _metadata(decision, request_id))
    return check


def _challenge(
    decision: Decision,
    request_id: str,
    route_contexts: Iterable[str],
    acr_values: Mapping[str, str],
) -> Any:
    www_authenticate, body = challenge(decision, request_id, route_contexts, acr_values)
    headers = {"www-authenticate": www_authenticate}
    meta = _metadata(decision, request_id)
    return _denied(401, _UNAUTHENTICATED, body, meta, request_id, headers)


def challenge(
    decision: Decision,
    request_id: str,
    route_contexts: Iterable[str],
    acr_values: Mapping[str, str],
) -> tuple[str, dict[str, Any]]:
    """The RFC 9470 `WWW-Authenticate` value and the JSON body of a 401 step-up challenge."""
    requirements = decision.requirements
    acrs = dict.fromkeys(
        acr_values[control] for r in requirements for control in r.any_of if control in acr_values
    )
    acrs.update(dict.fromkeys(route_contexts))
    age = (
        max_age(decision) or 0 if any(REAUTHENTICATION in r.any_of for r in requirements) else None
    )
    secondary = (
        secondary_max_age(decision) or 0
        if any(SECONDARY_REAUTHENTICATION in r.any_of for r in requirements)
        else None
    )
    if acrs:
        description = "A different authentication level is required"
    elif age is not None or secondary is not None:
        description = "More recent authentication is required"
    else:
        description = "Additional authentication is required"
    params = [f'error="{INSUFFICIENT}"', f'error_description="{description}"']
    if acrs:
        params.append(f'acr_values="{_quoted(" ".join(acrs))}"')
    if age is not None:
        params.append(f'max_age="{age}"')
    body: dict[str, Any] = {
        "decision": "challenge",
        "request_id": request_id,
        "requirements": [{"any_of": [*r.any_of]} for r in requirements],
        "messages": [*decision.messages],
    }
    if acrs:
        body["acr_values"] = " ".join(acrs)
    if age is not None:
        body["max_age"] = age
    if secondary is not None:
        body["secondary_max_age"] = secondary
    return "Bearer " + ", ".join(params), body


def _denied(  # noqa: PLR0917 - the parts of one denied answer
    status: int,
    grpc_code: int,
    body: Mapping[str, Any],
    metadata: Mapping[str, Any],
    request_id: str,
    headers: Mapping[str, str] | None = None,
) -> Any:
    check = auth.CheckResponse()
    check.status.code = grpc_code
    denied = check.denied_response
    denied.body = json.dumps(body, separators=(",", ":"))
    denied.status.code = status  # envoy.type.v3.StatusCode numbers are the HTTP codes
    _header(denied.headers, "content-type", "application/json")
    _header(denied.headers, REQUEST_ID_HEADER, request_id)
    for name, value in (headers or {}).items():
        _header(denied.headers, name, value)
    _set_metadata(check.dynamic_metadata, metadata)
    return check


def _header(headers: Any, name: str, value: str) -> None:
    headers.add(header={"key": name, "value": value}, append_action=OVERWRITE)


def _metadata(decision: Decision, request_id: str) -> dict[str, Any]:
    """The decision as dynamic metadata, for access logs and later filters."""
    meta: dict[str, Any] = {
        "pdp_decision": decision.verdict.value,
        "pdp_request_id": request_id,
        "pdp_policy_version": decision.policy_version,
    }
    if decision.requirements:
        meta["pdp_requirements"] = [" or ".join(r.any_of) for r in decision.requirements]
    age = max_age(decision)
    if age is not None:
        meta["pdp_session_max_age"] = age
    secondary = secondary_max_age(decision)
    if secondary is not None:
        meta["pdp_secondary_max_age"] = secondary
    return meta


def _set_metadata(struct: Any, meta: Mapping[str, Any]) -> None:
    """Write `meta` (text, numbers, lists of text) into a Struct; faster than Struct.update."""
    fields = struct.fields
    for key, value in meta.items():
        if isinstance(value, str):
            fields[key].string_value = value
        elif isinstance(value, list):
            values = fields[key].list_value.values
            for item in value:
                values.add().string_value = item
        else:
            fields[key].number_value = value


def _quoted(text: str) -> str:
    """`text` safe inside an HTTP quoted-string: printable ASCII, quotes escaped."""
    clean = "".join(c if " " <= c <= "~" else "?" for c in text)
    return clean.replace("\\", "\\\\").replace('"', '\\"')
