"""An Envoy standing in for an Istio ingress gateway and sidecar, built from deploy/istio.

It serves the client-address tests of the Istio topology.

Istio generates Envoy's config; no Istio runs here. This bootstrap has the parts of that
config pdp depends on, as Istio sets them:

- listener `ingress` (the ingress gateway): `use_remote_address: true`,
  `xff_num_trusted_hops` = numTrustedProxies (0, Istio's default); it forwards to the
  sidecar over mutual TLS with the gateway's SPIFFE identity;
- listener `sidecar` (the workspace's inbound): mutual TLS required, `use_remote_address:
  false` (a sidecar appends nothing to x-forwarded-for), jwt_authn with one provider per
  rule of `request-authentication.yaml` (payload under `payload`, as Istio writes it),
  ext_authz to the `pdp` provider of `mesh-config.yaml` (its timeout and failOpen) with
  the metadata namespaces `ext-authz-metadata.yaml` adds; pdp runs with
  `deploy/istio/gateway-config.yaml` as shipped.

Other mesh workloads reach the sidecar directly with their own identity. Addresses are
local (envoy_e2e.py); the JWKS host resolves to the test JWKS server, verified by the
test CA as `jwks-tls.yaml` has it verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
ISTIO = ROOT / "deploy" / "istio"
ISTIO_GATEWAY_CONFIG = ISTIO / "gateway-config.yaml"
INGRESS_IDENTITY = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
WORKSPACE_IDENTITY = "spiffe://cluster.local/ns/workspace/sa/workspace"
OTHER_IDENTITY = "spiffe://cluster.local/ns/tools/sa/debug-shell"
ENVOY = "type.googleapis.com/envoy.extensions"
HCM = f"{ENVOY}.filters.network.http_connection_manager.v3.HttpConnectionManager"
TLS = f"{ENVOY}.transport_sockets.tls.v3"


@dataclass(frozen=True)
class MeshFiles:
    """Paths of the PEM files the mesh's listeners and clusters use."""

    ca: Path
    ingress_cert: Path
    ingress_key: Path
    workspace_cert: Path
    workspace_key: Path


@dataclass(frozen=True)
class MeshPorts:
    """Local ports of the mesh stand-in and what it talks to."""

    ingress: int
    sidecar: int
    admin: int
    pdp: int
    app: int
    jwks: int


def _documents(name: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((ISTIO / name).read_text(encoding="utf-8")))


def _cluster(name: str, port: int, **extra: Any) -> dict[str, Any]:
    endpoint = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
        },
        **extra,
    }


def _upstream_tls(files: MeshFiles, *, sni: str = "", cert: bool = False) -> dict[str, Any]:
    context: dict[str, Any] = {"validation_context": {"trusted_ca": {"filename": str(files.ca)}}}
    if sni:
        context["validation_context"]["match_typed_subject_alt_names"] = [
            {"san_type": "DNS", "matcher": {"exact": sni}}
        ]
    if cert:
        context["tls_certificates"] = [
            {
                "certificate_chain": {"filename": str(files.ingress_cert)},
                "private_key": {"filename": str(files.ingress_key)},
            }
        ]
    config: dict[str, Any] = {"@type": f"{TLS}.UpstreamTlsContext", "common_tls_context": context}
    if sni:
        config["sni"] = sni
    return {"name": "envoy.transport_sockets.tls", "typed_config": config}


def _listener(name: str, port: int, hcm: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {"@type": HCM, **hcm},
                    }
                ],
                **extra,
            }
        ],
    }


def _route_all(cluster: str) -> dict[str, Any]:
    return {
        "virtual_hosts": [
            {
                "name": "all",
                "domains": ["*"],
                "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}],
            }
        ]
    }


ROUTER = {
    "name": "envoy.filters.http.router",
    "typed_config": {"@type": f"{ENVOY}.filters.http.router.v3.Router"},
}
ACCESS_LOG = [
    {
        "name": "envoy.access_loggers.stdout",
        "typed_config": {
            "@type": f"{ENVOY}.access_loggers.stream.v3.StdoutAccessLog",
            "log_format": {
                "json_format": {
                    "request_id": "%REQ(X-REQUEST-ID)%",
                    "status": "%RESPONSE_CODE%",
                    "details": "%RESPONSE_CODE_DETAILS%",
                    "pdp_decision": "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:pdp_decision)%",
                }
            },
        },
    }
]


def _jwt_authn(jwks_cluster: str) -> dict[str, Any]:
    """jwt_authn as Istio builds it from the RequestAuthentication's rules."""
    [authentication] = [
        d for d in _documents("request-authentication.yaml") if d["kind"] == "RequestAuthentication"
    ]
    providers = {}
    for i, rule in enumerate(authentication["spec"]["jwtRules"]):
        providers[f"rule{i}"] = {
            "issuer": rule["issuer"],
            "audiences": rule["audiences"],
            "remote_jwks": {
                "http_uri": {"uri": rule["jwksUri"], "cluster": jwks_cluster, "timeout": "5s"},
                "async_fetch": {},
            },
            "forward": rule.get("forwardOriginalToken", False),
            "payload_in_metadata": "payload",
        }
    requirements = [{"provider_name": name} for name in providers]
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": f"{ENVOY}.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": providers,
            "rules": [
                {
                    "match": {"prefix": "/"},
                    "requires": {"requires_any": {"requirements": requirements}},
                }
            ],
        },
    }


def _seconds(duration: str) -> str:
    """An Istio duration ("250ms", "1s") as a protobuf Duration in JSON ("0.25s")."""
    if duration.endswith("ms"):
        return f"{int(duration[:-2]) / 1000}s"
    return duration


def _ext_authz() -> dict[str, Any]:
    """ext_authz as Istio builds it for the CUSTOM provider, with the EnvoyFilter's merge."""
    [operator] = [d for d in _documents("mesh-config.yaml") if d["kind"] == "IstioOperator"]
    [provider] = operator["spec"]["meshConfig"]["extensionProviders"]
    grpc = provider["envoyExtAuthzGrpc"]
    [patch] = [d for d in _documents("ext-authz-metadata.yaml") if d["kind"] == "EnvoyFilter"]
    merged = patch["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]
    return {
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": f"{ENVOY}.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "grpc_service": {
                "envoy_grpc": {"cluster_name": "pdp"},
                "timeout": _seconds(grpc["timeout"]),
            },
            "failure_mode_allow": grpc["failOpen"],
            "metadata_context_namespaces": merged["metadata_context_namespaces"],
        },
    }


def mesh_bootstrap(ports: MeshPorts, files: MeshFiles) -> str:
    """The stand-in's Envoy bootstrap, as YAML."""
    jwks_host = urlsplit(
        _jwt_authn("jwks")["typed_config"]["providers"]["rule0"]["remote_jwks"]["http_uri"]["uri"]
    ).hostname
    ingress = _listener(
        "ingress",
        ports.ingress,
        {
            "stat_prefix": "ingress",
            "use_remote_address": True,
            "xff_num_trusted_hops": 0,  # the gateway's numTrustedProxies
            "access_log": ACCESS_LOG,
            "http_filters": [ROUTER],
            "route_config": _route_all("workspace_sidecar"),
        },
    )
    sidecar = _listener(
        "sidecar",
        ports.sidecar,
        {
            "stat_prefix": "sidecar",
            "use_remote_address": False,
            "access_log": ACCESS_LOG,
            "http_filters": [_jwt_authn("jwks"), _ext_authz(), ROUTER],
            "route_config": _route_all("app"),
        },
        transport_socket={
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": f"{TLS}.DownstreamTlsContext",
                "require_client_certificate": True,
                "common_tls_context": {
                    "tls_certificates": [
                        {
                            "certificate_chain": {"filename": str(files.workspace_cert)},
                            "private_key": {"filename": str(files.workspace_key)},
                        }
                    ],
                    "validation_context": {"trusted_ca": {"filename": str(files.ca)}},
                },
            },
        },
    )
    http2 = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": f"{ENVOY}.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }
    bootstrap = {
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": ports.admin}}
        },
        "static_resources": {
            "listeners": [ingress, sidecar],
            "clusters": [
                _cluster(
                    "workspace_sidecar",
                    ports.sidecar,
                    transport_socket=_upstream_tls(files, cert=True),
                ),
                _cluster("app", ports.app),
                _cluster("pdp", ports.pdp, typed_extension_protocol_options=http2),
                _cluster(
                    "jwks", ports.jwks, transport_socket=_upstream_tls(files, sni=jwks_host or "")
                ),
            ],
        },
    }
    return yaml.safe_dump(bootstrap, sort_keys=False)
