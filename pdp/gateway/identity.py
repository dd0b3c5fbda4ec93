"""Who signs in and how they authenticated: verified JWT claims, or trusted gateway headers.

The JWT comes first: Envoy's jwt_authn filter verified it and wrote its payload into the
request's dynamic metadata (`filter_metadata[<namespace>][<payload_in_metadata>]`), which the
ext_authz filter forwards when `metadata_context_namespaces` names that namespace. A client
cannot write there. Only when no verified payload is present are identity headers read, and
only those the config names (from the peers it names): identity headers are ignored unless
the config trusts them. A claim of the wrong type refuses the request (`InvalidRequest`);
no identity at all is `Unauthenticated` when the config requires one.

Claim mapping (Entra ID names by default): `oid`/`sub` user, `groups`, `wids` directory
roles, `amr` -> authentication methods through the config's amr table (`mfa` -> the
satisfied `mfa` control), `auth_time` -> authenticated_at, `acrs` -> authentication contexts
(and, through `step_up.acr_values`, the controls the identity provider enforced for them),
`idtyp: app` (or, without `idtyp`, no `scp`) -> workload identity with `azp`/`appid` as its
service principal, `acct: 1` -> guest with its home tenant from `idp`. Values go into the
`SignInDraft`, checked by the rules every way in shares and named by the claim or header
they came from.

Both Entra token versions map alike, and a claim a token does not carry is unknown, never
a satisfied control and never "not a member": no `amr` (v2.0 tokens have none) proves no
method; no `auth_time` (an optional claim) makes the sign-in as old as can be, so every
sign-in frequency is due; a group overage (`_claim_names`, `hasgroups`) or a membership
claim the app registration is not said to emit (`groups_emitted`, `roles_emitted`) leaves
membership unknown (`SignInContext.groups_unknown` / `roles_unknown`), so group-scoped
policies apply and group exclusions need a listed group.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Final

from pdp import context_values as cv
from pdp.errors import InvalidRequest
from pdp.gateway.claims import StructClaims
from pdp.gateway.config import MFA_CONTROL, HeaderIdentityConfig, IdentityConfig, JwtConfig
from pdp.gateway.config_reader import within
from pdp.gateway.draft import SignInDraft
from pdp.gateway.signals import Headers, boolean, number
from pdp.gateway.token_memo import TokenMemo

_STS_ISSUER: Final = re.compile(r"https://sts\.windows\.net/([0-9a-fA-F-]{36})/?")
# authenticated_at of a user token without auth_time: the epoch, so that every sign-in
# frequency counts as due (the sign-in time is unknown, not recent).
UNKNOWN_SIGN_IN_TIME: Final = 0.0


class Unauthenticated(InvalidRequest):
    """The request carries no identity pdp accepts (answered 401, not 403)."""

    def __init__(self) -> None:
        super().__init__("identity", "no verified token and no trusted identity headers")


def read_identity(  # noqa: PLR0917 - one call site, every input is a different part of the request
    draft: SignInDraft,
    metadata: Any,
    headers: Headers,
    peer: cv.Address,
    config: IdentityConfig,
    acr_values: Mapping[str, str],
    tokens: TokenMemo | None = None,
) -> None:
    """Set the draft's subject and authentication (and token contexts) from the request.

    With `tokens`, a token payload read before is applied from memory.
    """
    jwt = config.jwt
    namespace = metadata.get(jwt.metadata_namespace)
    payload = None if namespace is None else namespace.fields.get(jwt.payload_in_metadata)
    if payload is not None:
        where = _metadata_path(jwt)
        if payload.WhichOneof("kind") != "struct_value":
            raise InvalidRequest(where, "the JWT payload is not a struct")
        if tokens is not None:
            tokens.read(draft, payload.struct_value, jwt, acr_values, where)
        else:
            read_token(draft, StructClaims(payload.struct_value.fields), jwt, acr_values, where)
        return
    trusted = config.headers
    found = trusted.enabled and (
        not trusted.trusted_sources or within(peer, trusted.trusted_sources)
    )
    if found:
        found = _from_headers(draft, headers, trusted, jwt.amr)
    if not found and config.require:
        raise Unauthenticated


def read_token(
    draft: SignInDraft,
    claims: Mapping[str, object],
    cfg: JwtConfig,
    acr_values: Mapping[str, str],
    source: str,
) -> None:
    """Set the draft's subject and authentication from a verified token's claims.

    `claims` are JSON values (`pdp.gateway.claims`); `source` names where the token came
    from, for errors (e.g. the dynamic metadata path of Envoy's jwt_authn payload).
    """
    at = _At(source)
    if cfg.tenant_id:
        tenant = (_string(claims, "tid", at) or "").lower()
        if tenant != cfg.tenant_id:
            raise InvalidRequest(at("tid"), f"token of tenant {tenant!r}, not ours")
    methods, controls = _modes(_strings(claims, cfg.amr_claim, at), cfg.amr)
    contexts = _strings(claims, cfg.acrs_claim, at)
    if contexts:
        draft.authentication_contexts.extend(contexts)
        controls += [c for c, acr in acr_values.items() if acr in contexts and c not in controls]
    draft.methods.extend(methods)
    draft.satisfied_controls.extend(controls)
    auth_time = claims.get(cfg.auth_time_claim)
    if auth_time is not None:
        if not isinstance(auth_time, int | float) or isinstance(auth_time, bool):
            raise InvalidRequest(at(cfg.auth_time_claim), "must be a number (epoch s)")
        draft.authenticated_at = _epoch(float(auth_time), at(cfg.auth_time_claim))
    if _app_only(claims, cfg, at):
        draft.service_principal_id = _first(claims, cfg.service_principal_claims, at)
        return
    for name in cfg.required_user_claims:
        if claims.get(name) is None:
            raise InvalidRequest(
                at(name),
                "the user token lacks this claim, which identity.jwt.required_user_claims "
                "requires (configure it on the app registration)",
            )
    if auth_time is None:
        draft.authenticated_at = UNKNOWN_SIGN_IN_TIME
    draft.user_id = _first(claims, cfg.user_id_claims, at)
    groups = _strings(claims, cfg.groups_claim, at)
    if groups:
        draft.group_ids = cv.idset(groups, at(cfg.groups_claim), cv.MAX_GROUP_IDS)
    if _overage(claims, cfg.groups_claim):
        if cfg.groups_overage == "deny":
            raise InvalidRequest(
                at(cfg.groups_claim),
                "group overage: the token lists no groups, only where to fetch them "
                "(_claim_names); identity.jwt.groups_overage is deny",
            )
        draft.groups_unknown = True
    elif cfg.groups_claim not in claims and not cfg.groups_emitted:
        draft.groups_unknown = True
    if roles := _strings(claims, cfg.roles_claim, at):
        draft.role_ids = cv.idset(roles, at(cfg.roles_claim), cv.MAX_ROLE_IDS)
    elif cfg.roles_claim not in claims and not cfg.roles_emitted:
        draft.roles_unknown = True
    guest = claims.get(cfg.guest_claim)
    if guest is not None and _scalar(guest, at(cfg.guest_claim)) == cfg.guest_value:
        draft.guest = True
        idp = _string(claims, cfg.home_tenant_claim, at) or ""
        if match := _STS_ISSUER.fullmatch(idp):
            draft.home_tenant_id = match.group(1).lower()


def _from_headers(
    draft: SignInDraft,
    headers: Headers,
    cfg: HeaderIdentityConfig,
    amr: Mapping[str, tuple[str, ...]],
) -> bool:
    """Identity from trusted headers; False when they name nobody."""
    user = headers.single(cfg.user_id) if cfg.user_id else None
    principal = headers.single(cfg.service_principal_id) if cfg.service_principal_id else None
    if user and principal:
        raise InvalidRequest(
            f"header {cfg.service_principal_id}", "names a service principal beside a user"
        )
    if principal:
        draft.service_principal_id = cv.ident(principal, f"header {cfg.service_principal_id}")
        return True
    if not user:
        return False
    draft.user_id = cv.ident(user, f"header {cfg.user_id}")
    if cfg.group_ids:
        where = f"header {cfg.group_ids}"
        draft.group_ids = cv.idset(headers.items(cfg.group_ids), where, cv.MAX_GROUP_IDS)
    if cfg.role_ids:
        where = f"header {cfg.role_ids}"
        draft.role_ids = cv.idset(headers.items(cfg.role_ids), where, cv.MAX_ROLE_IDS)
    methods = draft.methods
    if cfg.methods:
        methods.extend(headers.items(cfg.methods))
    if cfg.amr:
        from_amr, controls = _modes(headers.items(cfg.amr), amr)
        methods.extend(m for m in from_amr if m not in methods)
        draft.satisfied_controls.extend(controls)
    if cfg.authentication_contexts:
        draft.authentication_contexts.extend(headers.items(cfg.authentication_contexts))
    if cfg.authenticated_at and (text := headers.single(cfg.authenticated_at)):
        where = f"header {cfg.authenticated_at}"
        draft.authenticated_at = _epoch(number(text, where), where)
    if cfg.guest and (text := headers.single(cfg.guest)):
        draft.guest = boolean(text, f"header {cfg.guest}")
    return True


def _modes(values: list[str], table: Mapping[str, tuple[str, ...]]) -> tuple[list[str], list[str]]:
    """Graph methods and satisfied controls for amr values (`mfa` is the mfa control)."""
    methods: list[str] = []
    controls: list[str] = []
    for value in values:
        for mode in table.get(value.lower(), ()):
            bucket = controls if mode == MFA_CONTROL else methods
            if mode not in bucket:
                bucket.append(mode)
    return methods, controls


def _metadata_path(cfg: JwtConfig) -> str:
    """Where Envoy's jwt_authn writes the verified payload, for errors."""
    return f'metadata_context.filter_metadata["{cfg.metadata_namespace}"].{cfg.payload_in_metadata}'


class _At:
    """Names a claim of the token: `source.claim`."""

    __slots__ = ("_source",)

    def __init__(self, source: str) -> None:
        self._source = source

    def __call__(self, claim: str) -> str:
        return f"{self._source}.{claim}"


def _string(claims: Mapping[str, object], name: str, at: _At) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(at(name), "must be a string")
    return value.strip() or None


def _first(claims: Mapping[str, object], names: tuple[str, ...], at: _At) -> str:
    """The first of `names` the token has, as an id; refuses a token with none of them."""
    for name in names:
        if text := _string(claims, name, at):
            return cv.ident(text, at(name))
    raise InvalidRequest(at(names[0]), f"the token has none of {', '.join(names)}")


def _strings(claims: Mapping[str, object], name: str, at: _At) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidRequest(at(name), "must be a list of strings")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise InvalidRequest(f"{at(name)}[{i}]", "must be a string")
    return value


def _overage(claims: Mapping[str, object], name: str) -> bool:
    """Whether the token's groups overflowed (Entra's overage).

    `_claim_names` points `name` elsewhere, or `hasgroups: true` (implicit flow) stands in.
    """
    names = claims.get("_claim_names")
    return (isinstance(names, dict) and name in names) or claims.get("hasgroups") is True


def _app_only(claims: Mapping[str, object], cfg: JwtConfig, at: _At) -> bool:
    """Whether the token is app-only: a workload identity's, not a user's.

    `idtyp: app` says so; a token without `idtyp` (an optional claim) is app-only when it
    carries no delegated scopes (`scp`), which every user token has.
    """
    kind = _string(claims, cfg.app_identity_claim, at)
    if kind is not None:
        return kind == cfg.app_identity_value
    return bool(cfg.scope_claim) and claims.get(cfg.scope_claim) is None


def _scalar(value: object, where: str) -> str | None:
    """A string, number or bool claim as text; None for null; anything else is refused."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InvalidRequest(where, f"not a finite number: {value}")
        return str(int(value)) if float(value).is_integer() else repr(value)
    if value is None:
        return None
    raise InvalidRequest(where, f"must be a string, number or bool, not a {type(value).__name__}")


def _epoch(seconds: float, where: str) -> float:
    """A time in epoch seconds, from 1970 to the end of 9999."""
    if not seconds >= 0:
        raise InvalidRequest(where, f"not a time in seconds since the epoch: {seconds}")
    return cv.epoch(seconds, where)
