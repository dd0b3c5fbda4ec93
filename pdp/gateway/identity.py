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
guest with its home tenant from `idp`.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from pdp.gateway.config import MFA_CONTROL, HeaderIdentityConfig, IdentityConfig, JwtConfig
from pdp.gateway.signals import Headers, boolean, number, scalar
from pdp.server.errors import InvalidRequest
from pdp.v1 import pdp_pb2 as pb

_STS_ISSUER: Final = re.compile(r"https://sts\.windows\.net/([0-9a-fA-F-]{36})/?")
_MAX_EPOCH: Final = 253_402_300_799  # 9999-12-31T23:59:59Z, the Timestamp range


class Unauthenticated(InvalidRequest):
    """The request carries no identity pdp accepts (answered 401, not 403)."""

    def __init__(self) -> None:
        super().__init__("identity", "no verified token and no trusted identity headers")


def fill_identity(  # noqa: PLR0917 - one call site, every input is a different part of the request
    out: pb.EvaluateRequest,
    metadata: Any,
    headers: Headers,
    peer: ipaddress.IPv4Address | ipaddress.IPv6Address,
    config: IdentityConfig,
    acr_values: Mapping[str, str],
) -> None:
    """Set `out`'s subject and authentication (and token contexts) from the request."""
    jwt = config.jwt
    namespace = metadata.get(jwt.metadata_namespace)
    payload = None if namespace is None else namespace.fields.get(jwt.payload_in_metadata)
    if payload is not None:
        if payload.WhichOneof("kind") != "struct_value":
            raise InvalidRequest(_where(jwt, ""), "the JWT payload is not a struct")
        _from_jwt(out, payload.struct_value.fields, jwt, acr_values)
        return
    trusted = config.headers
    found = trusted.enabled and (
        not trusted.trusted_sources or any(peer in net for net in trusted.trusted_sources)
    )
    if found:
        found = _from_headers(out, headers, trusted, jwt.amr)
    if not found and config.require:
        raise Unauthenticated


def _from_jwt(
    out: pb.EvaluateRequest, claims: Any, cfg: JwtConfig, acr_values: Mapping[str, str]
) -> None:
    if cfg.tenant_id:
        tenant = (_string(claims, "tid", cfg) or "").lower()
        if tenant != cfg.tenant_id:
            raise InvalidRequest(_where(cfg, "tid"), f"token of tenant {tenant!r}, not ours")
    authn, subject = out.authentication, out.subject
    methods, controls = _modes(_strings(claims, cfg.amr_claim, cfg), cfg.amr)
    contexts = _strings(claims, cfg.acrs_claim, cfg)
    if contexts:
        out.target.authentication_contexts.extend(contexts)
        controls += [c for c, acr in acr_values.items() if acr in contexts and c not in controls]
    authn.methods.extend(methods)
    authn.satisfied_controls.extend(controls)
    auth_time = claims.get(cfg.auth_time_claim)
    if auth_time is not None:
        if auth_time.WhichOneof("kind") != "number_value":
            raise InvalidRequest(_where(cfg, cfg.auth_time_claim), "must be a number (epoch s)")
        _set_time(authn.authenticated_at, auth_time.number_value, cfg.auth_time_claim, cfg)
    if _string(claims, cfg.app_identity_claim, cfg) == cfg.app_identity_value:
        subject.service_principal_id = _first(claims, cfg.service_principal_claims, cfg)
        return
    subject.user_id = _first(claims, cfg.user_id_claims, cfg)
    groups = _strings(claims, cfg.groups_claim, cfg)
    if groups:
        subject.group_ids.extend(groups)
    elif cfg.groups_overage == "deny" and _overage(claims, cfg.groups_claim):
        raise InvalidRequest(
            _where(cfg, cfg.groups_claim),
            "group overage: the token lists no groups, only where to fetch them "
            "(_claim_names); pdp cannot evaluate group conditions without them",
        )
    if roles := _strings(claims, cfg.roles_claim, cfg):
        subject.role_ids.extend(roles)
    guest = claims.get(cfg.guest_claim)
    if guest is not None and _scalar(guest, cfg.guest_claim, cfg) == cfg.guest_value:
        subject.guest = True
        idp = _string(claims, cfg.home_tenant_claim, cfg) or ""
        if match := _STS_ISSUER.fullmatch(idp):
            subject.home_tenant_id = match.group(1)


def _from_headers(
    out: pb.EvaluateRequest,
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
        out.subject.service_principal_id = principal
        return True
    if not user:
        return False
    subject, authn = out.subject, out.authentication
    subject.user_id = user
    if cfg.group_ids:
        subject.group_ids.extend(headers.items(cfg.group_ids))
    if cfg.role_ids:
        subject.role_ids.extend(headers.items(cfg.role_ids))
    if cfg.methods:
        authn.methods.extend(headers.items(cfg.methods))
    if cfg.amr:
        methods, controls = _modes(headers.items(cfg.amr), amr)
        authn.methods.extend(m for m in methods if m not in authn.methods)
        authn.satisfied_controls.extend(controls)
    if cfg.authentication_contexts:
        out.target.authentication_contexts.extend(headers.items(cfg.authentication_contexts))
    if cfg.authenticated_at and (text := headers.single(cfg.authenticated_at)):
        where = f"header {cfg.authenticated_at}"
        _set_time(authn.authenticated_at, number(text, where), where)
    if cfg.guest and (text := headers.single(cfg.guest)):
        subject.guest = boolean(text, f"header {cfg.guest}")
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
    """The first of `names` the token has; refuses a token with none of them."""
    for name in names:
        if text := _string(claims, name, cfg):
            return text
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


def _set_time(ts: Timestamp, seconds: float, where: str, cfg: JwtConfig | None = None) -> None:
    """Set `ts` to epoch `seconds`; `where` is a claim of `cfg` or, without one, a header."""
    if not (math.isfinite(seconds) and 0 <= seconds <= _MAX_EPOCH):
        field = _where(cfg, where) if cfg is not None else where
        raise InvalidRequest(field, f"not a time in seconds since the epoch: {seconds}")
    whole = math.floor(seconds)
    ts.seconds = whole
    ts.nanos = min(round((seconds - whole) * 1e9), 999_999_999)
