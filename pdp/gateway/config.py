"""GatewayConfig: how a CheckRequest maps to a sign-in, read from `--gateway-config` YAML.

Every setting has a default (a config file may be empty or absent) and the defaults are the
ones README's "Envoy and Istio" section documents: client IP from the connection, identity
from the JWT that Envoy's jwt_authn filter verified (Entra ID claim names), application from
the route's `pdp_application_id` context extension, no device, risk or geo signals, browser
detection by user agent. Unknown keys are errors, like every bad value, and the message
names the key path (`identity.jwt.amr.pwd: ...`), so a typo cannot pass silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import yaml

from pdp.gateway.config_reader import GatewayConfigError, Network, Reader, Source
from pdp.tokens.settings import (
    ALGORITHMS,
    MAX_CLOCK_SKEW_S,
    REQUIRED_CLAIMS,
    TokenSettings,
    entra_issuers,
    entra_jwks_uri,
)
from pdp.vocabulary import AUTHENTICATION_METHOD_MODES

__all__ = ["GatewayConfig", "GatewayConfigError", "Source", "load_gateway_config"]

# Entra ID `amr` values (RFC 8176 plus Microsoft's) -> Graph authenticationMethodModes; "mfa"
# is not a method but the satisfied `mfa` control (Entra vouches that MFA happened). An amr
# value says less than a method mode does (`rsa` covers Authenticator, Windows Hello and
# certificates), so each maps to the weakest mode it proves; values missing here add nothing.
DEFAULT_AMR: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "pwd": ("password",),
        "mfa": ("mfa",),
        "ngcmfa": ("mfa",),  # "equivalent to mfa", for provisioning Windows Hello / passkeys
        "fido": ("fido2",),
        "hwk": ("hardwareOath",),  # proof of a hardware-secured key
        "swk": ("softwareOath",),  # proof of a software-secured key
        "otp": ("softwareOath",),
        "sms": ("sms",),
        "tel": ("voice",),
        "rsa": ("x509CertificateSingleFactor",),  # proof of an RSA key: a possession factor
        "sc": ("x509CertificateMultiFactor",),  # smart card
        "fed": ("federatedSingleFactor",),
        "wia": (),  # Windows integrated authentication (Kerberos): no method it proves
    }
)
MFA_CONTROL: Final = "mfa"


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Client IP and network signals."""

    trusted_hops: int = 0  # proxies in front of Envoy whose x-forwarded-for entries count
    trusted_proxies: tuple[Network, ...] = ()  # when set, XFF counts only from these peers
    # ...or from peers with one of these mTLS identities (Envoy's source.principal, e.g.
    # Istio's ingress gateway: spiffe://cluster.local/ns/istio-system/sa/...).
    trusted_proxy_principals: tuple[str, ...] = ()
    # Whether the gateway calling pdp appends its own entry to XFF (Envoy: use_remote_address
    # true, as at an edge Envoy or Istio's ingress gateway; false for sidecars). Required
    # with trusted_hops: guessing it wrong takes a proxy's address for the client's.
    gateway_appends_xff: bool = False
    compliant_network: Source | None = None
    country: Source | None = None
    latitude: Source | None = None
    longitude: Source | None = None
    accuracy_radius_km: Source | None = None


@dataclass(frozen=True, slots=True)
class ApplicationConfig:
    """What is being reached: per-route context extensions, then the host map."""

    context_extension: str = "pdp_application_id"
    hosts: Mapping[str, str] = field(default_factory=dict)  # host or *.suffix -> app id
    default: str = ""  # used when neither names an application; "" denies such requests
    user_action_extension: str = "pdp_user_action"
    authentication_contexts_extension: str = "pdp_authentication_contexts"


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """Claims of the JWT that jwt_authn verified and wrote with `payload_in_metadata`."""

    metadata_namespace: str = "envoy.filters.http.jwt_authn"
    payload_in_metadata: str = "jwt_payload"
    tenant_id: str = ""  # when set, the token's `tid` must be this tenant
    user_id_claims: tuple[str, ...] = ("oid", "sub")
    groups_claim: str = "groups"
    roles_claim: str = "wids"
    amr_claim: str = "amr"
    auth_time_claim: str = "auth_time"
    acrs_claim: str = "acrs"
    app_identity_claim: str = "idtyp"
    app_identity_value: str = "app"
    service_principal_claims: tuple[str, ...] = ("azp", "appid")
    guest_claim: str = "acct"
    guest_value: str = "1"
    home_tenant_claim: str = "idp"
    scope_claim: str = "scp"  # delegated scopes: a token without it (and idtyp) is app-only
    # A token whose groups overflowed (Entra's `_claim_names`, or `hasgroups`): evaluate with
    # membership unknown (group includes apply, group excludes do not exclude), or deny.
    groups_overage: Literal["unknown", "deny"] = "unknown"
    # Whether the app registration emits the membership claim (groupMembershipClaims): Entra
    # leaves an empty claim out, so only then does "no claim" mean "no memberships".
    groups_emitted: bool = False
    roles_emitted: bool = False
    required_user_claims: tuple[str, ...] = ()  # a user token without one of them is refused
    amr: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_AMR)


@dataclass(frozen=True, slots=True)
class HeaderIdentityConfig:
    """Identity headers a trusted gateway sets; none named (the default) means none is read."""

    user_id: str = ""
    service_principal_id: str = ""
    group_ids: str = ""  # comma-separated
    role_ids: str = ""
    methods: str = ""  # Graph authenticationMethodModes, comma-separated
    amr: str = ""  # amr values, mapped like the JWT claim
    authenticated_at: str = ""  # epoch seconds
    authentication_contexts: str = ""
    guest: str = ""  # true / false
    trusted_sources: tuple[Network, ...] = ()  # when set, read only from these peers

    @property
    def enabled(self) -> bool:
        """Whether any identity header is configured."""
        return bool(self.user_id or self.service_principal_id)


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """Who signs in: the verified JWT first, else trusted gateway headers."""

    jwt: JwtConfig = JwtConfig()
    headers: HeaderIdentityConfig = HeaderIdentityConfig()
    require: bool = True  # a request with no identity is denied with 401


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Device signals, typically set by a device-posture service in front."""

    id: Source | None = None
    compliant: Source | None = None
    trust_type: Source | None = None
    platform: Source | None = None
    platform_from_user_agent: bool = True  # as Entra does when no platform is given
    attributes: Mapping[str, Source] = field(default_factory=dict)  # device-filter properties


@dataclass(frozen=True, slots=True)
class RiskConfig:
    """Upstream risk levels."""

    sign_in: Source | None = None
    user: Source | None = None
    service_principal: Source | None = None
    insider: Source | None = None


@dataclass(frozen=True, slots=True)
class ClientAppConfig:
    """Browser or mobileAppsAndDesktopClients."""

    browser_user_agent: re.Pattern[str] = re.compile(r"^Mozilla/")
    api_paths: tuple[re.Pattern[str], ...] = ()  # path patterns that are API calls
    bearer_only_is_api: bool = True  # Authorization: Bearer and no cookie -> not a browser


@dataclass(frozen=True, slots=True)
class StepUpConfig:
    """RFC 9470 step-up: control (as in Requirement.any_of) -> acr value, both directions."""

    acr_values: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole mapping from a CheckRequest to an EvaluateRequest and back."""

    network: NetworkConfig = NetworkConfig()
    application: ApplicationConfig = ApplicationConfig()
    identity: IdentityConfig = IdentityConfig()
    device: DeviceConfig = DeviceConfig()
    risk: RiskConfig = RiskConfig()
    client_app: ClientAppConfig = ClientAppConfig()
    step_up: StepUpConfig = StepUpConfig()
    tokens: TokenSettings | None = None  # pdp verifies bearer tokens itself (forward-auth)


def load_gateway_config(path: Path) -> GatewayConfig:
    """Read and check a gateway config file; raises GatewayConfigError (or OSError)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise GatewayConfigError(f"{path}: not YAML: {exc}") from None
    try:
        return parse_gateway_config(data)
    except GatewayConfigError as exc:
        raise GatewayConfigError(f"{path}: {exc}") from None


def parse_gateway_config(data: object) -> GatewayConfig:
    """A GatewayConfig from parsed YAML (None is the all-defaults config)."""
    root = Reader({} if data is None else data, "")
    if (version := root.take("version")) not in (None, 1):
        raise GatewayConfigError(f"version: only version 1 is known, not {version!r}")
    identity = _identity(root.section("identity"))
    tokens = root.take("tokens")
    config = GatewayConfig(
        network=_network(root.section("network")),
        application=_application(root.section("application")),
        identity=identity,
        device=_device(root.section("device")),
        risk=_risk(root.section("risk")),
        client_app=_client_app(root.section("client_app")),
        step_up=StepUpConfig(root.section("step_up").mapping("acr_values")),
        tokens=None if tokens is None else _tokens(Reader(tokens, "tokens"), identity.jwt),
    )
    root.done()
    return config


def _network(r: Reader) -> NetworkConfig:
    hops = r.integer("trusted_hops", 0)
    appends = r.take("gateway_appends_xff")
    if appends is not None and not isinstance(appends, bool):
        raise GatewayConfigError(
            f"network.gateway_appends_xff: must be true or false, not {appends!r}"
        )
    if hops and appends is None:
        raise GatewayConfigError(
            "network.gateway_appends_xff: required with trusted_hops: true when the gateway "
            "appends its own x-forwarded-for entry (Envoy's use_remote_address: true), "
            "false when it does not (a sidecar)"
        )
    cfg = NetworkConfig(
        trusted_hops=hops,
        trusted_proxies=r.networks("trusted_proxies"),
        trusted_proxy_principals=r.texts("trusted_proxy_principals", ()),
        gateway_appends_xff=bool(appends),
        compliant_network=r.source("compliant_network"),
        country=r.source("country"),
        latitude=r.source("latitude"),
        longitude=r.source("longitude"),
        accuracy_radius_km=r.source("accuracy_radius_km"),
    )
    r.done()
    return cfg


def _application(r: Reader) -> ApplicationConfig:
    d = ApplicationConfig()
    hosts = {host.lower(): app.lower() for host, app in r.mapping("hosts").items()}
    cfg = ApplicationConfig(
        context_extension=r.text("context_extension", d.context_extension),
        hosts=MappingProxyType(hosts),
        default=r.text("default", "").lower(),
        user_action_extension=r.text("user_action_extension", d.user_action_extension),
        authentication_contexts_extension=r.text(
            "authentication_contexts_extension", d.authentication_contexts_extension
        ),
    )
    r.done()
    return cfg


def _identity(r: Reader) -> IdentityConfig:
    j, d = r.section("jwt"), JwtConfig()
    overage = j.text("groups_overage", d.groups_overage)
    if overage not in ("unknown", "deny"):
        was = " (ignore is gone: it read an overage token as a member of no group)"
        raise GatewayConfigError(
            f"identity.jwt.groups_overage: unknown or deny, not {overage!r}"
            + (was if overage == "ignore" else "")
        )
    jwt = JwtConfig(
        metadata_namespace=j.text("metadata_namespace", d.metadata_namespace),
        payload_in_metadata=j.text("payload_in_metadata", d.payload_in_metadata),
        tenant_id=j.text("tenant_id", "").lower(),
        user_id_claims=j.texts("user_id_claims", d.user_id_claims),
        groups_claim=j.text("groups_claim", d.groups_claim),
        roles_claim=j.text("roles_claim", d.roles_claim),
        amr_claim=j.text("amr_claim", d.amr_claim),
        auth_time_claim=j.text("auth_time_claim", d.auth_time_claim),
        acrs_claim=j.text("acrs_claim", d.acrs_claim),
        app_identity_claim=j.text("app_identity_claim", d.app_identity_claim),
        app_identity_value=j.text("app_identity_value", d.app_identity_value),
        service_principal_claims=j.texts("service_principal_claims", d.service_principal_claims),
        guest_claim=j.text("guest_claim", d.guest_claim),
        guest_value=j.text("guest_value", d.guest_value),
        home_tenant_claim=j.text("home_tenant_claim", d.home_tenant_claim),
        scope_claim=j.text("scope_claim", d.scope_claim),
        groups_overage="deny" if overage == "deny" else "unknown",
        groups_emitted=j.boolean("groups_emitted", False),
        roles_emitted=j.boolean("roles_emitted", False),
        required_user_claims=j.texts("required_user_claims", ()),
        amr=_amr(j),
    )
    j.done()
    h = r.section("headers")
    headers = HeaderIdentityConfig(
        **{name: h.header(name) for name in _HEADER_FIELDS},
        trusted_sources=h.networks("trusted_sources"),
    )
    h.done()
    cfg = IdentityConfig(jwt=jwt, headers=headers, require=r.boolean("require", True))
    r.done()
    return cfg


_HEADER_FIELDS: Final = (
    "user_id",
    "service_principal_id",
    "group_ids",
    "role_ids",
    "methods",
    "amr",
    "authenticated_at",
    "authentication_contexts",
    "guest",
)


def _amr(j: Reader) -> Mapping[str, tuple[str, ...]]:
    """The default amr table with the config's entries replacing (or adding) single values."""
    table = dict(DEFAULT_AMR)
    section = j.section("amr")
    for value in list(section.keys()):
        modes = []
        for mode in section.texts(value, ()):
            canonical = (
                MFA_CONTROL
                if mode == MFA_CONTROL
                else AUTHENTICATION_METHOD_MODES.get(mode.lower())
            )
            if canonical is None:
                raise GatewayConfigError(
                    f"identity.jwt.amr.{value}: {mode!r} is neither mfa nor a Graph "
                    "authenticationMethodMode"
                )
            modes.append(canonical)
        table[value] = tuple(modes)
    section.done()
    return MappingProxyType(table)


def _device(r: Reader) -> DeviceConfig:
    attributes = r.section("attributes")
    sources = {name: attributes.source(name) for name in list(attributes.keys())}
    attributes.done()
    cfg = DeviceConfig(
        id=r.source("id"),
        compliant=r.source("compliant"),
        trust_type=r.source("trust_type"),
        platform=r.source("platform"),
        platform_from_user_agent=r.boolean("platform_from_user_agent", True),
        attributes=MappingProxyType({k: s for k, s in sources.items() if s is not None}),
    )
    r.done()
    return cfg


def _risk(r: Reader) -> RiskConfig:
    cfg = RiskConfig(
        sign_in=r.source("sign_in"),
        user=r.source("user"),
        service_principal=r.source("service_principal"),
        insider=r.source("insider"),
    )
    r.done()
    return cfg


def _client_app(r: Reader) -> ClientAppConfig:
    d = ClientAppConfig()
    cfg = ClientAppConfig(
        browser_user_agent=r.pattern("browser_user_agent", d.browser_user_agent.pattern),
        api_paths=tuple(r.pattern_of(p, "api_paths") for p in r.texts("api_paths", ())),
        bearer_only_is_api=r.boolean("bearer_only_is_api", True),
    )
    r.done()
    return cfg


def _tokens(r: Reader, jwt: JwtConfig) -> TokenSettings:
    """The `tokens` section; for Entra, the tenant (identity.jwt.tenant_id) gives the defaults."""
    d = TokenSettings(issuers=(), audiences=(), jwks_uri="")
    tenant = jwt.tenant_id
    audiences = r.texts("audiences", ())
    if not audiences:
        raise GatewayConfigError(
            "tokens.audiences: name the API's audience (client id or App ID URI)"
        )
    issuers = r.texts("issuers", ()) or (entra_issuers(tenant) if tenant else ())
    jwks_uri = r.text("jwks_uri", "") or (entra_jwks_uri(tenant) if tenant else "")
    if not issuers or not jwks_uri:
        raise GatewayConfigError(
            "tokens: set issuers and jwks_uri, or identity.jwt.tenant_id for Entra's defaults"
        )
    if not jwks_uri.startswith("https://"):
        raise GatewayConfigError(f"tokens.jwks_uri: must be an https URL, not {jwks_uri!r}")
    algorithms = r.texts("algorithms", d.algorithms)
    for algorithm in algorithms:
        if algorithm not in ALGORITHMS:
            known = ", ".join(sorted(ALGORITHMS))
            raise GatewayConfigError(f"tokens.algorithms: {algorithm!r} is not one of {known}")
    ca_file = r.text("jwks_ca_file", "")
    if ca_file and not Path(ca_file).is_file():
        raise GatewayConfigError(f"tokens.jwks_ca_file: no such file: {ca_file}")
    skew = r.integer("clock_skew_s", int(d.clock_skew_s))
    if skew > MAX_CLOCK_SKEW_S:
        raise GatewayConfigError(f"tokens.clock_skew_s: at most {MAX_CLOCK_SKEW_S:g}, not {skew}")
    settings = TokenSettings(
        issuers=issuers,
        audiences=audiences,
        jwks_uri=jwks_uri,
        tenant_id=tenant,
        jwks_ca_file=Path(ca_file) if ca_file else None,
        algorithms=algorithms,
        clock_skew_s=skew,
        required_claims=tuple(dict.fromkeys(REQUIRED_CLAIMS + r.texts("required_claims", ()))),
        jwks_refresh_s=_positive(r, "jwks_refresh_s", d.jwks_refresh_s),
        jwks_min_refresh_s=_positive(r, "jwks_min_refresh_s", d.jwks_min_refresh_s),
        jwks_max_age_s=_positive(r, "jwks_max_age_s", d.jwks_max_age_s),
        jwks_timeout_s=_positive(r, "jwks_timeout_s", d.jwks_timeout_s),
        jwks_max_bytes=int(_positive(r, "jwks_max_bytes", d.jwks_max_bytes)),
        jwks_max_keys=int(_positive(r, "jwks_max_keys", d.jwks_max_keys)),
    )
    r.done()
    if settings.jwks_max_age_s <= settings.jwks_refresh_s:
        raise GatewayConfigError("tokens.jwks_max_age_s: must be longer than jwks_refresh_s")
    return settings


def _positive(r: Reader, key: str, default: float) -> float:
    value = r.integer(key, int(default))
    if value < 1:
        raise GatewayConfigError(f"tokens.{key}: must be at least 1, not {value}")
    return value
