"""CheckRequest -> EvaluateRequest: an HTTP request as Envoy describes it, as a sign-in.

Owns the mapping README's "Envoy and Istio" section documents, under a `GatewayConfig`:

- client IP: the connection's peer (`attributes.source.address`). With `trusted_hops: N`
  the address list is the x-forwarded-for entries followed by the peer (an entry Envoy
  appended for the peer itself is not counted twice), and the client is the entry N places
  left of the peer: the address the outermost trusted proxy saw. Entries further left are
  whatever the client sent and are never read; a list too short for N is refused.
- application: the route's context extension, else the host map, else the default;
- identity: `pdp.gateway.identity`; device, risk, geo: configured headers or metadata;
- client app type: browser for a browser user agent unless the request looks like an API
  call (a configured path, or a bearer token without cookies), else mobile/desktop.

Anything malformed raises `InvalidRequest` naming where it was found; the validation of the
resulting EvaluateRequest is `pdp.server.convert_in`'s, on the shared decision path.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from pdp.gateway.config import ApplicationConfig, ClientAppConfig, GatewayConfig, NetworkConfig
from pdp.gateway.identity import fill_identity
from pdp.gateway.signals import Headers, boolean, choice, number, read
from pdp.server.errors import InvalidRequest
from pdp.v1 import pdp_pb2 as pb

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_SOURCE: Final = "attributes.source.address.socket_address.address"
_MAX_REQUEST_ID: Final = 128
_PLATFORMS: Final[Mapping[str, pb.Platform.ValueType]] = {
    "android": pb.PLATFORM_ANDROID,
    "ios": pb.PLATFORM_IOS,
    "windows": pb.PLATFORM_WINDOWS,
    "windowsphone": pb.PLATFORM_WINDOWS_PHONE,
    "macos": pb.PLATFORM_MACOS,
    "linux": pb.PLATFORM_LINUX,
}
# User-agent tokens -> platform, in the order Entra's own detection needs (Android says Linux).
_UA_PLATFORMS: Final = (
    (re.compile(r"Windows Phone"), pb.PLATFORM_WINDOWS_PHONE),
    (re.compile(r"Android"), pb.PLATFORM_ANDROID),
    (re.compile(r"iPhone|iPad|iPod"), pb.PLATFORM_IOS),
    (re.compile(r"Macintosh|Mac OS X"), pb.PLATFORM_MACOS),
    (re.compile(r"Windows"), pb.PLATFORM_WINDOWS),
    (re.compile(r"Linux|X11"), pb.PLATFORM_LINUX),
)
_TRUST_TYPES: Final[Mapping[str, pb.TrustType.ValueType]] = {
    "azuread": pb.TRUST_TYPE_AZURE_AD,
    "serverad": pb.TRUST_TYPE_SERVER_AD,
    "workplace": pb.TRUST_TYPE_WORKPLACE,
}
_RISK: Final[Mapping[str, pb.RiskLevel.ValueType]] = {
    "none": pb.RISK_LEVEL_NONE,
    "low": pb.RISK_LEVEL_LOW,
    "medium": pb.RISK_LEVEL_MEDIUM,
    "high": pb.RISK_LEVEL_HIGH,
}
_INSIDER_RISK: Final[Mapping[str, pb.InsiderRiskLevel.ValueType]] = {
    "none": pb.INSIDER_RISK_LEVEL_NONE,
    "minor": pb.INSIDER_RISK_LEVEL_MINOR,
    "moderate": pb.INSIDER_RISK_LEVEL_MODERATE,
    "elevated": pb.INSIDER_RISK_LEVEL_ELEVATED,
}


class Translation(NamedTuple):
    """The sign-in for one CheckRequest, and what the route demands for a step-up challenge."""

    request: pb.EvaluateRequest
    route_contexts: tuple[str, ...]  # authentication contexts the route requires


def request_id(check: Any) -> str:
    """Envoy's x-request-id when it is usable as a pdp request id, else a new one."""
    value = Headers(check.attributes.request.http).get("x-request-id") or ""
    if value and len(value) <= _MAX_REQUEST_ID and value.isprintable() and value.isascii():
        return value
    return uuid.uuid4().hex


def to_evaluate_request(check: Any, config: GatewayConfig, rid: str) -> Translation:
    """The EvaluateRequest for `check`; raises InvalidRequest (or Unauthenticated)."""
    attrs = check.attributes
    http = attrs.request.http
    headers = Headers(http)
    metadata = attrs.metadata_context.filter_metadata
    peer_text, peer = _peer(attrs.source)
    out = pb.EvaluateRequest(request_id=rid)
    out.network.ip_address = _client_ip(peer_text, peer, headers, config.network)
    extensions = attrs.context_extensions
    app = config.application
    out.target.application_id = _application(extensions, http.host, app)
    out.target.user_action = extensions.get(app.user_action_extension, "")
    required = extensions.get(app.authentication_contexts_extension, "")
    route_contexts = tuple(required.replace(",", " ").split()) if required else ()
    if route_contexts:
        out.target.authentication_contexts.extend(route_contexts)
    fill_identity(out, metadata, headers, peer, config.identity, config.step_up.acr_values)
    _signals(out, headers, metadata, config)
    out.client_app_type = _client_app_type(http, headers, config.client_app)
    return Translation(out, route_contexts)


def _peer(source: Any) -> tuple[str, IP]:
    """The connection's peer address as Envoy wrote it, and parsed."""
    text: str = source.address.socket_address.address
    address = _address(text)
    if address is None:
        raise InvalidRequest(_SOURCE, f"not an IPv4 or IPv6 address: {text!r}")
    return text, address


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> IP | None:
    """`text` as an address (IPv4-mapped IPv6 unwrapped), or None; cached: peers repeat."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _client_ip(peer_text: str, peer: IP, headers: Headers, cfg: NetworkConfig) -> str:
    """The client's address as text; convert_in validates and normalises it."""
    hops = cfg.trusted_hops
    if not hops or (cfg.trusted_proxies and not any(peer in n for n in cfg.trusted_proxies)):
        return peer_text
    forwarded = [e.strip() for e in (headers.get("x-forwarded-for") or "").split(",")]
    if forwarded[-1] == peer_text:
        forwarded.pop()  # Envoy (use_remote_address) appended the peer itself
    if len(forwarded) < hops or not forwarded[-hops]:
        raise InvalidRequest(
            "header x-forwarded-for",
            f"{len(forwarded)} entries but {hops} trusted proxies should have added one each",
        )
    return forwarded[-hops]  # validated as network.ip_address on the decision path


def _application(extensions: Mapping[str, str], host: str, cfg: ApplicationConfig) -> str:
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


def _signals(out: pb.EvaluateRequest, headers: Headers, metadata: Any, cfg: GatewayConfig) -> None:
    """Device, risk and geo from the configured headers or metadata."""
    device, risk, net = cfg.device, cfg.risk, cfg.network
    if device.id and (text := read(device.id, headers, metadata)):
        out.device.device_id = text
    if device.compliant and (text := read(device.compliant, headers, metadata)):
        out.device.compliant = boolean(text, str(device.compliant))
    if device.trust_type and (text := read(device.trust_type, headers, metadata)):
        out.device.trust_type = choice(text, _TRUST_TYPES, str(device.trust_type))
    if device.platform and (text := read(device.platform, headers, metadata)):
        out.device.platform = choice(text, _PLATFORMS, str(device.platform))
    elif device.platform_from_user_agent and (agent := headers.get("user-agent")):
        out.device.platform = _platform(agent)
    for name, source in device.attributes.items():
        if text := read(source, headers, metadata):
            out.device.attributes[name] = text
    if risk.sign_in and (text := read(risk.sign_in, headers, metadata)):
        out.risk.sign_in = choice(text, _RISK, str(risk.sign_in))
    if risk.user and (text := read(risk.user, headers, metadata)):
        out.risk.user = choice(text, _RISK, str(risk.user))
    if risk.service_principal and (text := read(risk.service_principal, headers, metadata)):
        out.risk.service_principal = choice(text, _RISK, str(risk.service_principal))
    if risk.insider and (text := read(risk.insider, headers, metadata)):
        out.risk.insider = choice(text, _INSIDER_RISK, str(risk.insider))
    if net.compliant_network and (text := read(net.compliant_network, headers, metadata)):
        out.network.compliant_network = boolean(text, str(net.compliant_network))
    geo = out.network.geo
    if net.country and (text := read(net.country, headers, metadata)):
        geo.country = text
    if net.latitude and (text := read(net.latitude, headers, metadata)):
        geo.latitude = number(text, str(net.latitude))
    if net.longitude and (text := read(net.longitude, headers, metadata)):
        geo.longitude = number(text, str(net.longitude))
    if net.accuracy_radius_km and (text := read(net.accuracy_radius_km, headers, metadata)):
        geo.accuracy_radius_km = number(text, str(net.accuracy_radius_km))


@functools.lru_cache(maxsize=1024)
def _platform(agent: str) -> pb.Platform.ValueType:
    """The platform a user agent names; cached: a fleet sends few distinct user agents."""
    return next((p for r, p in _UA_PLATFORMS if r.search(agent)), pb.PLATFORM_UNSPECIFIED)


def _client_app_type(
    http: Any, headers: Headers, cfg: ClientAppConfig
) -> pb.ClientAppType.ValueType:
    agent = headers.get("user-agent") or ""
    if not cfg.browser_user_agent.search(agent):
        return pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS
    path: str = http.path
    if any(p.search(path) for p in cfg.api_paths):
        return pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS
    bearer = (headers.get("authorization") or "")[:7].lower() == "bearer "
    if cfg.bearer_only_is_api and bearer and not headers.get("cookie"):
        return pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS
    return pb.CLIENT_APP_TYPE_BROWSER
