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
`idtyp: app` -> workload identity with `azp`/`appid` as its service principal, `acct: 1` ->
guest with its home tenant from `idp`. Values go into the `SignInDraft`, checked by the rules
every way in shares and named by the claim or header they came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from pdp import context_values as cv
from pdp.errors import InvalidRequest
from pdp.gateway.config import MFA_CONTROL, HeaderIdentityConfig, IdentityConfig, JwtConfig
from pdp.gateway.config_reader import within
from pdp.gateway.draft import SignInDraft
from pdp.gateway.signals import Headers, boolean, number, scalar

_STS_ISSUER: Final = re.compile(r"https://sts\.windows\.net/([0-9a-fA-F-]{36})/?")


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
) -> None:
    """Set the draft's subject and authentication (and token contexts) from the request."""
    jwt = config.jwt
    namespace = metadata.get(jwt.metadata_namespace)
    payload = None if namespace is None else namespace.fields.get(jwt.payload_in_metadata)
    if payload is not None:
        if payload.WhichOneof("kind") != "struct_value":
            raise InvalidRequest(_where(jwt, ""), "the JWT payload is not a struct")
        _from_jwt(draft, payload.struct_value.fields, jwt, acr_values)
        return
    trusted = config.headers
    found = trusted.enabled and (
        not trusted.trusted_sources or within(peer, trusted.trusted_sources)
    )
    if found:
        found = _from_headers(draft, headers, trusted, jwt.amr)
    if not found and config.require:
        raise Unauthenticated


def _from_jwt(
    draft: SignInDraft, claims: Any, cfg: JwtConfig, acr_values: Mapping[str, str]
) -> None:
    if cfg.tenant_id:
        tenant = (_string(claims, "tid", cfg) or "").lower()
        if tenant != cfg.tenant_id:
            raise InvalidRequest(_where(cfg, "tid"), f"token of tenant {tenant!r}, not ours")
    methods, controls = _modes(_strings(claims, cfg.amr_claim, cfg), cfg.amr)
    contexts = _strings(claims, cfg.acrs_claim, cfg)
    if contexts:
        draft.authentication_contexts.extend(contexts)
        controls += [c for c, acr in acr_values.items() if acr in contexts and c not in controls]
    draft.methods.extend(methods)
    draft.satisfied_controls.extend(controls)
    auth_time = claims.get(cfg.auth_time_claim)
    if auth_time is not None:
        if auth_time.WhichOneof("kind") != "number_value":
            raise InvalidRequest(_where(cfg, cfg.auth_time_claim), "must be a number (epoch s)")
        draft.authenticated_at = _epoch(auth_time.number_value, _where(cfg, cfg.auth_time_claim))
    if _string(claims, cfg.app_identity_claim, cfg) == cfg.app_identity_value:
        draft.service_principal_id = _first(claims, cfg.service_principal_claims, cfg)
        return
    draft.user_id = _first(claims, cfg.user_id_claims, cfg)
    groups = _strings(claims, cfg.groups_claim, cfg)
    if groups:
        draft.group_ids = cv.idset(groups, _where(cfg, cfg.groups_claim), cv.MAX_GROUP_IDS)
    elif cfg.groups_overage == "deny" and _overage(claims, cfg.groups_claim):
        raise InvalidRequest(
            _where(cfg, cfg.groups_claim),
            "group overage: the token lists no groups, only where to fetch them "
            "(_claim_names); pdp cannot evaluate group conditions without them",
        )
    if roles := _strings(claims, cfg.roles_claim, cfg):
        draft.role_ids = cv.idset(roles, _where(cfg, cfg.roles_claim), cv.MAX_ROLE_IDS)
    guest = claims.get(cfg.guest_claim)
    if guest is not None and _scalar(guest, cfg.guest_claim, cfg) == cfg.guest_value:
        draft.guest = True
        idp = _string(claims, cfg.home_tenant_claim, cfg) or ""
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


def _where(cfg: JwtConfig, claim: str) -> str:
    path = f'metadata_context.filter_metadata["{cfg.metadata_namespace}"].{cfg.payload_in_metadata}'
    return f"{path}.{claim}" if claim else path


def _string(claims: Any, name: str, cfg: JwtConfig) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if value.WhichOneof("kind") != "string_value":
        raise InvalidRequest(_where(cfg, name), "must be a string")
    text: str = value.string_value
    return text.strip() or None


def _first(claims: Any, names: tuple[str, ...], cfg: JwtConfig) -> str:
    """The first of `names` the token has, as an id; refuses a token with none of them."""
    for name in names:
        if text := _string(claims, name, cfg):
            return cv.ident(text, _where(cfg, name))
    raise InvalidRequest(_where(cfg, names[0]), f"the token has none of {', '.join(names)}")


def _strings(claims: Any, name: str, cfg: JwtConfig) -> list[str]:
    value = claims.get(name)
    if value is None:
        return []
    if value.WhichOneof("kind") != "list_value":
        raise InvalidRequest(_where(cfg, name), "must be a list of strings")
    out = []
    for i, item in enumerate(value.list_value.values):
        if item.WhichOneof("kind") != "string_value":
            raise InvalidRequest(f"{_where(cfg, name)}[{i}]", "must be a string")
        out.append(item.string_value)
    return out


def _overage(claims: Any, name: str) -> bool:
    """Whether `_claim_names` points `name` elsewhere (Entra's groups overage)."""
    names = claims.get("_claim_names")
    return bool(
        names is not None
        and names.WhichOneof("kind") == "struct_value"
        and name in names.struct_value.fields
    )


def _scalar(value: Any, name: str, cfg: JwtConfig) -> str | None:
    try:
        return scalar(value, name)
    except InvalidRequest as exc:
        raise InvalidRequest(_where(cfg, name), exc.message) from None


def _epoch(seconds: float, where: str) -> float:
    """A time in epoch seconds, from 1970 to the end of 9999."""
    if not seconds >= 0:
        raise InvalidRequest(where, f"not a time in seconds since the epoch: {seconds}")
    return cv.epoch(seconds, where)
