"""What a verified token says about a sign-in, worked out once per token.

Envoy's jwt_authn hands pdp the same token payload for every request of a session (an
Entra access token lives about an hour), and mapping its claims (`identity.read_token`) is
most of the work of translating a CheckRequest. `TokenMemo.read` keys the result on the
payload's serialized bytes: the draft fields the token sets (subject, groups, roles,
methods, satisfied controls, token contexts, sign-in time, unknown memberships), or the
refusal it gave, are remembered and applied again. The bytes are the key, so only the very
same claims give the same result; the gateway config is the memo owner's, fixed for its
life. Bounded: the oldest tokens are forgotten first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from pdp.bounded import batch_for, forget_oldest
from pdp.errors import InvalidRequest
from pdp.gateway.claims import StructClaims
from pdp.gateway.config import JwtConfig
from pdp.gateway.draft import SignInDraft

MAX_TOKENS: Final = 16_384
MAX_TOKEN_BYTES: Final = 64 * 1024
# The draft fields read_token sets (the lists it extends), and their values on a new draft.
_SET: Final = (
    "user_id",
    "group_ids",
    "role_ids",
    "guest",
    "home_tenant_id",
    "service_principal_id",
    "authenticated_at",
    "groups_unknown",
    "roles_unknown",
)
_EXTENDED: Final = ("authentication_contexts", "methods", "satisfied_controls")

Facts = tuple[tuple[object, ...], tuple[tuple[str, ...], ...]]
Reader = Callable[[SignInDraft, Mapping[str, object], JwtConfig, Mapping[str, str], str], None]


class TokenMemo:
    """Remembers, by payload bytes, what reading a token set on a draft (or why it refused)."""

    def __init__(self, read_token: Reader, *, max_tokens: int = MAX_TOKENS) -> None:
        self._read_token = read_token
        self._facts: dict[bytes, Facts | InvalidRequest] = {}
        self._max = max_tokens

    def read(
        self,
        draft: SignInDraft,
        payload: Any,
        cfg: JwtConfig,
        acr_values: Mapping[str, str],
        source: str,
    ) -> None:
        """Apply the token in `payload` (a protobuf Struct) to `draft`; raises its refusal."""
        key = payload.SerializeToString()
        found = self._facts.get(key)
        if found is None:
            found = self._read(payload, cfg, acr_values, source)
            if len(key) <= MAX_TOKEN_BYTES:
                if len(self._facts) >= self._max:
                    forget_oldest(self._facts, batch_for(self._max))
                self._facts[key] = found
        if isinstance(found, InvalidRequest):
            raise found
        values, extended = found
        for name, value in zip(_SET, values, strict=True):
            setattr(draft, name, value)
        for name, items in zip(_EXTENDED, extended, strict=True):
            getattr(draft, name).extend(items)

    def _read(
        self, payload: Any, cfg: JwtConfig, acr_values: Mapping[str, str], source: str
    ) -> Facts | InvalidRequest:
        scratch = SignInDraft("", 0.0)
        try:
            self._read_token(scratch, StructClaims(payload.fields), cfg, acr_values, source)
        except InvalidRequest as exc:
            return exc
        return (
            tuple(getattr(scratch, name) for name in _SET),
            tuple(tuple(getattr(scratch, name)) for name in _EXTENDED),
        )
