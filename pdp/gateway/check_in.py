"""CheckRequest -> SignInContext: an HTTP request as Envoy describes it, as a sign-in.

Owns the mapping README's "Envoy and Istio" section documents, under a `GatewayConfig`:

- client IP: `client_ip`, the rules README's "Client address" documents: the
  connection's peer, or, behind `trusted_hops` proxies (from `trusted_proxies`), the
  x-forwarded-for entry the outermost of them added, cross-checked with the address Envoy
  itself derived (`x-envoy-external-address`) when the request carries it.
- application: the route's context extension, else the host map, else the default;
- identity: `pdp.gateway.identity`; device, risk, geo: configured headers or metadata;
- client app type: browser for a browser user agent unless the request looks like an API
  call (a configured path, or a bearer token without cookies), else mobile/desktop.

Each value is checked where it is read, by the rules every way in shares
(`pdp.context_values`), and anything malformed raises `InvalidRequest` naming where it was
found. The result is a `SignInContext` directly: no EvaluateRequest in between.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from pdp import context_values as cv
from pdp.context import SignInContext
from pdp.errors import InvalidRequest
from pdp.gateway.config import ApplicationConfig, ClientAppConfig, GatewayConfig, NetworkConfig
from pdp.gateway.config_reader import within
from pdp.gateway.draft import SignInDraft
from pdp.gateway.identity import read_identity
from pdp.gateway.signals import Headers, boolean, choice, number, read
from pdp.gateway.token_memo import TokenMemo

_SOURCE: Final = "attributes.source.address.socket_address.address"
_XFF: Final = "header x-forwarded-for"
EXTERNAL_ADDRESS: Final = "x-envoy-external-address"
_PLATFORMS: Final[Mapping[str, str]] = {
    "android": "android",
    "ios": "iOS",
    "windows": "windows",
    "windowsphone": "windowsPhone",
    "macos": "macOS",
    "linux": "linux",
}
# User-agent tokens -> platform, in the order Entra's own detection needs (Android says Linux).
_UA_PLATFORMS: Final = (
    (re.compile(r"Windows Phone"), "windowsPhone"),
    (re.compile(r"Android"), "android"),
    (re.compile(r"iPhone|iPad|iPod"), "iOS"),
    (re.compile(r"Macintosh|Mac OS X"), "macOS"),
    (re.compile(r"Windows"), "windows"),
    (re.compile(r"Linux|X11"), "linux"),
)
_UA_CACHE_LIMIT: Final = 1024  # distinct user agents remembered; longer ones are not kept
_UA_CACHED_LENGTH: Final = 512
_TRUST_TYPES: Final[Mapping[str, str]] = {
    "azuread": "AzureAD",
    "serverad": "ServerAD",
    "workplace": "Workplace",
}
_RISK: Final[Mapping[str, str]] = {r: r for r in ("none", "low", "medium", "high")}
_INSIDER_RISK: Final[Mapping[str, str]] = {r: r for r in ("none", "minor", "moderate", "elevated")}


class Translation(NamedTuple):
    """The sign-in for one CheckRequest, and what the route demands for a step-up challenge."""

    context: SignInContext
    route_contexts: tuple[str, ...]  # authentication contexts the route requires


def request_id(check: Any) -> str:
    """Envoy's x-request-id when it is usable as a pdp request id, else a new one."""
    return usable_request_id(Headers(check.attributes.request.http).get("x-request-id") or "")


def usable_request_id(value: str) -> str:
    """A gateway's request id when it is printable ASCII of at most 128 characters, else new."""
    if value and len(value) <= cv.MAX_REQUEST_ID and value.isprintable() and value.isascii():
        return value
    return uuid.uuid4().hex


def to_context(
    check: Any, config: GatewayConfig, draft: SignInDraft, tokens: TokenMemo | None = None
) -> Translation:
    """Fill `draft` from `check` and build its SignInContext; raises InvalidRequest.

    The draft holds the call's time; its request id is set first (Envoy's x-request-id when
    usable), and what was read before a failure stays in it, for the audit record of the
    refusal. With `tokens`, token payloads read before are applied from memory.
    """
    attrs = check.attributes
    http = attrs.request.http
    headers = Headers(http)
    draft.request_id = usable_request_id(headers.get("x-request-id") or "")
    metadata = attrs.metadata_context.filter_metadata
    peer = _peer(attrs.source)
    draft.ip = client_ip(
        peer,
        headers.get("x-forwarded-for"),
        config.network,
        external_address=headers.single(EXTERNAL_ADDRESS),
        principal=attrs.source.principal,
    )
    extensions = attrs.context_extensions
    app = config.application
    draft.application_id = cv.ident(application_id(extensions, http.host, app), "application")
    if user_action := extensions.get(app.user_action_extension, ""):
        draft.user_action = cv.ident(user_action, f"context extension {app.user_action_extension}")
    required = extensions.get(app.authentication_contexts_extension, "")
    route_contexts = tuple(required.replace(",", " ").split()) if required else ()
    draft.authentication_contexts.extend(route_contexts)
    identity, acr_values = config.identity, config.step_up.acr_values
    read_identity(draft, metadata, headers, peer, identity, acr_values, tokens)
    read_signals(draft, headers, metadata, config)
    draft.client_app_type = client_app_type(http.path, headers, config.client_app)
    return Translation(draft.context(), route_contexts)


def _peer(source: Any) -> cv.Address:
    """The connection's peer address, parsed."""
    text: str = source.address.socket_address.address
    address = cv.ip_address(text, _SOURCE)
    if address[1] is None:
        raise InvalidRequest(_SOURCE, f"not an IPv4 or IPv6 address: {text!r}")
    return address


def client_ip(
    peer: cv.Address,
    forwarded_for: str | None,
    cfg: NetworkConfig,
    *,
    peer_listed: bool = True,
    external_address: str | None = None,
    principal: str = "",
) -> cv.Address:
    """The client's address, from the peer and the proxies' headers as `cfg` trusts them.

    - No `trusted_hops`, or a peer that is not a trusted proxy: the peer itself (a client
      that bypassed the proxies is judged by its own address, whatever it claims). With
      `trusted_proxies` or `trusted_proxy_principals` set, a trusted proxy is a peer in one
      of those ranges or with one of those mTLS identities (`principal`, the peer
      certificate's URI SAN as Envoy reports it); with neither set, every peer is.
    - Else x-forwarded-for: the entry the gateway appended for the peer is dropped when
      `gateway_appends_xff` (whatever it holds: Envoy appends its host's address, not the
      peer's, when the peer is 127.0.0.1 or ::1), and the client is the entry `trusted_hops`
      places from the right of what remains, the one the outermost trusted proxy added.
      Entries further left are whatever the client sent and are never read; a list too
      short is refused, not guessed. `peer_listed` False says the peer is the gateway
      itself (forward-auth), so no entry of XFF stands for it and none is dropped.
    - `external_address` (Envoy's x-envoy-external-address: the trusted client address an
      edge Envoy derived by its own `xff_num_trusted_hops`, overwriting any client copy)
      must then name the same address; when it does not, Envoy and pdp count the proxies
      differently, and the request is refused rather than decided for either address.
    """
    hops = cfg.trusted_hops
    if not hops or not _trusted_proxy(peer, principal, cfg):
        return peer
    entries = [e.strip() for e in forwarded_for.split(",")] if forwarded_for else []
    if peer_listed and cfg.gateway_appends_xff:
        if not entries:
            raise InvalidRequest(_XFF, "missing, though the gateway appends to it")
        entries.pop()
    if len(entries) < hops or not entries[-hops]:
        raise InvalidRequest(
            _XFF, f"{len(entries)} entries but {hops} trusted proxies should have added one each"
        )
    address = cv.ip_address(entries[-hops], _XFF)
    if address[1] is None:
        raise InvalidRequest(_XFF, "an empty entry where a proxy added one")
    if external_address is not None:
        derived = cv.ip_address(external_address, f"header {EXTERNAL_ADDRESS}")
        if derived[1:] != address[1:]:
            raise InvalidRequest(
                f"header {EXTERNAL_ADDRESS}",
                f"Envoy took {derived[0]} for the client, x-forwarded-for with "
                f"network.trusted_hops {hops} gives {address[0]}: Envoy's "
                "xff_num_trusted_hops and pdp's trusted_hops disagree",
            )
    return address


def _trusted_proxy(peer: cv.Address, principal: str, cfg: NetworkConfig) -> bool:
    """Whether the peer is a proxy whose forwarded headers count."""
    if not cfg.trusted_proxies and not cfg.trusted_proxy_principals:
        return True
    return within(peer, cfg.trusted_proxies) or (
        bool(principal) and principal in cfg.trusted_proxy_principals
    )


def application_id(extensions: Mapping[str, str], host: str, cfg: ApplicationConfig) -> str:
    """The route's application extension, else the host map's entry, else the default."""
    if app := extensions.get(cfg.context_extension, "").strip():
        return app
    name = _host_name(host)
    if cfg.hosts and name:
        if app := cfg.hosts.get(name, ""):
            return app
        parts = name.split(".")
        for i in range(1, len(parts)):
            if app := cfg.hosts.get("*." + ".".join(parts[i:]), ""):
                return app
    if cfg.default:
        return cfg.default
    raise InvalidRequest(
        "application",
        f"the route sets no context extension {cfg.context_extension} and host {name!r} "
        "is not in the gateway config's application.hosts",
    )


def _host_name(host: str) -> str:
    """The host of a Host/:authority value, lower-case, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def read_signals(draft: SignInDraft, headers: Headers, metadata: Any, cfg: GatewayConfig) -> None:
    """Device, risk and geo from the configured headers or metadata."""
    device, risk, net = cfg.device, cfg.risk, cfg.network
    if device.id and (text := read(device.id, headers, metadata)):
        draft.device_id = cv.ident(text, str(device.id))
    if device.compliant and (text := read(device.compliant, headers, metadata)):
        draft.compliant = boolean(text, str(device.compliant))
    if device.trust_type and (text := read(device.trust_type, headers, metadata)):
        draft.trust_type = choice(text, _TRUST_TYPES, str(device.trust_type))
    if device.platform and (text := read(device.platform, headers, metadata)):
        draft.platform = choice(text, _PLATFORMS, str(device.platform))
    elif device.platform_from_user_agent and (agent := headers.get("user-agent")):
        draft.platform = platform_of(agent)
    for name, source in device.attributes.items():
        if text := read(source, headers, metadata):
            draft.attributes[name] = text
    if risk.sign_in and (text := read(risk.sign_in, headers, metadata)):
        draft.sign_in_risk = choice(text, _RISK, str(risk.sign_in))
    if risk.user and (text := read(risk.user, headers, metadata)):
        draft.user_risk = choice(text, _RISK, str(risk.user))
    if risk.service_principal and (text := read(risk.service_principal, headers, metadata)):
        draft.service_principal_risk = choice(text, _RISK, str(risk.service_principal))
    if risk.insider and (text := read(risk.insider, headers, metadata)):
        draft.insider_risk = choice(text, _INSIDER_RISK, str(risk.insider))
    if net.compliant_network and (text := read(net.compliant_network, headers, metadata)):
        draft.compliant_network = boolean(text, str(net.compliant_network))
    if net.country and (text := read(net.country, headers, metadata)):
        draft.country = cv.country(text, str(net.country))
    if net.latitude and (text := read(net.latitude, headers, metadata)):
        draft.latitude = cv.bounded(number(text, str(net.latitude)), str(net.latitude), -90, 90)
    if net.longitude and (text := read(net.longitude, headers, metadata)):
        where = str(net.longitude)
        draft.longitude = cv.bounded(number(text, where), where, -180, 180)
    if net.accuracy_radius_km and (text := read(net.accuracy_radius_km, headers, metadata)):
        where = str(net.accuracy_radius_km)
        draft.accuracy_radius_km = cv.bounded(number(text, where), where, 0, float("inf"))


def platform_of(agent: str) -> str:
    """The platform a user agent names ("" for none); short, common agents are remembered."""
    if len(agent) > _UA_CACHED_LENGTH:
        return _detect_platform(agent)
    found = _agents.get(agent)
    if found is None:
        if len(_agents) >= _UA_CACHE_LIMIT:
            _agents.clear()
        found = _agents[agent] = _detect_platform(agent)
    return found


_agents: dict[str, str] = {}  # user agent -> platform; a fleet sends few distinct ones


def _detect_platform(agent: str) -> str:
    return next((p for r, p in _UA_PLATFORMS if r.search(agent)), "")


def client_app_type(path: str, headers: Headers, cfg: ClientAppConfig) -> str:
    """Browser or mobileAppsAndDesktopClients, from the user agent, path and credentials."""
    agent = headers.get("user-agent") or ""
    if not cfg.browser_user_agent.search(agent):
        return "mobileAppsAndDesktopClients"
    if any(p.search(path) for p in cfg.api_paths):
        return "mobileAppsAndDesktopClients"
    bearer = (headers.get("authorization") or "")[:7].lower() == "bearer "
    if cfg.bearer_only_is_api and bearer and not headers.get("cookie"):
        return "mobileAppsAndDesktopClients"
    return "browser"
