"""The shipped Envoy and Istio examples parse into Envoy's own messages, so they cannot rot."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401 - registers @type
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.jwt_authn.v3 import config_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 - registers @type
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.extensions.upstreams.http.v3 import (  # noqa: F401 - registers @type
    http_protocol_options_pb2,
)
from google.protobuf import any_pb2, json_format

from pdp.gateway.config import load_gateway_config

ROOT = Path(__file__).resolve().parents[2]
ENVOY = ROOT / "deploy" / "envoy" / "envoy.yaml"
ISTIO = ROOT / "deploy" / "istio"
AUTHZ = "envoy.filters.http.ext_authz"


def bootstrap() -> Any:
    """deploy/envoy/envoy.yaml as a Bootstrap; unknown fields or @types fail the parse."""
    data = yaml.safe_load(ENVOY.read_text(encoding="utf-8"))
    return json_format.ParseDict(data, bootstrap_pb2.Bootstrap())


def connection_manager() -> Any:
    """The listener's HttpConnectionManager, unpacked from its typed config."""
    [listener] = bootstrap().static_resources.listeners
    [chain] = listener.filter_chains
    [network_filter] = chain.filters
    hcm = http_connection_manager_pb2.HttpConnectionManager()
    assert network_filter.typed_config.Unpack(hcm)
    return hcm


def test_envoy_example_is_a_valid_bootstrap() -> None:
    """Every field of envoy.yaml exists and every typed config's @type resolves."""
    assert {c.name for c in bootstrap().static_resources.clusters} == {
        "pdp",
        "dev_workspace",
        "prod_workspace",
        "entra_jwks",
    }


def test_ext_authz_calls_pdp_over_grpc_and_fails_closed() -> None:
    """ext_authz: gRPC to the pdp cluster with a timeout, no fail-open, jwt metadata forwarded."""
    filters = {f.name: f for f in connection_manager().http_filters}
    assert list(filters) == ["envoy.filters.http.jwt_authn", AUTHZ, "envoy.filters.http.router"]
    authz = ext_authz_pb2.ExtAuthz()
    assert filters[AUTHZ].typed_config.Unpack(authz)
    assert authz.grpc_service.envoy_grpc.cluster_name == "pdp"
    assert authz.grpc_service.timeout.ToMilliseconds() == 250
    assert authz.failure_mode_allow is False
    assert list(authz.metadata_context_namespaces) == ["envoy.filters.http.jwt_authn"]
    assert authz.emit_filter_state_stats  # ext_authz latency in the access log on every answer
    jwt = config_pb2.JwtAuthentication()
    assert filters["envoy.filters.http.jwt_authn"].typed_config.Unpack(jwt)
    gateway = load_gateway_config(ROOT / "examples" / "gateway-config.yaml")
    assert set(jwt.providers) == {"entra_v1", "entra_v2"}
    for provider in jwt.providers.values():
        assert provider.payload_in_metadata == gateway.identity.jwt.payload_in_metadata
        assert provider.remote_jwks.http_uri.cluster == "entra_jwks"


def test_every_tls_cluster_verifies_its_server() -> None:
    """A TLS upstream (the JWKS) checks the chain against a CA bundle and the name by SAN."""
    checked = 0
    for cluster in bootstrap().static_resources.clusters:
        if not cluster.HasField("transport_socket"):
            continue
        tls = tls_pb2.UpstreamTlsContext()
        assert cluster.transport_socket.typed_config.Unpack(tls)
        validation = tls.common_tls_context.validation_context
        assert validation.trusted_ca.filename, cluster.name
        names = [m.matcher.exact for m in validation.match_typed_subject_alt_names]
        address = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address
        assert names == [tls.sni] == [address.socket_address.address], cluster.name
        checked += 1
    assert checked == 1


def test_every_checked_route_names_its_application() -> None:
    """Each route either disables ext_authz or sets the pdp_application_id context extension."""
    gateway = load_gateway_config(ROOT / "examples" / "gateway-config.yaml")
    for host in connection_manager().route_config.virtual_hosts:
        for route in host.routes:
            per_route = ext_authz_pb2.ExtAuthzPerRoute()
            assert route.typed_per_filter_config[AUTHZ].Unpack(per_route)
            extensions = per_route.check_settings.context_extensions
            assert per_route.disabled or extensions[gateway.application.context_extension]


def test_access_log_records_the_decision() -> None:
    """The access log format reads pdp's dynamic metadata."""
    [log] = connection_manager().access_log
    text = json_format.MessageToJson(log)
    assert "%DYNAMIC_METADATA(envoy.filters.http.ext_authz:pdp_decision)%" in text


def istio_documents() -> list[dict[str, Any]]:
    """Every YAML document under deploy/istio/ except pdp's own config."""
    documents: list[dict[str, Any]] = []
    for path in sorted(ISTIO.glob("*.yaml")):
        if path.name != "gateway-config.yaml":
            documents.extend(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    return documents


def test_istio_custom_policy_names_the_mesh_provider() -> None:
    """The CUSTOM AuthorizationPolicy's provider is the meshConfig extension provider."""
    kinds = {d["kind"]: d for d in istio_documents() if d["kind"] != "AuthorizationPolicy"}
    [provider] = kinds["IstioOperator"]["spec"]["meshConfig"]["extensionProviders"]
    assert provider["envoyExtAuthzGrpc"]["failOpen"] is False
    custom = [
        d
        for d in istio_documents()
        if d["kind"] == "AuthorizationPolicy" and d["spec"]["action"] == "CUSTOM"
    ]
    assert [c["spec"]["provider"]["name"] for c in custom] == [provider["name"]]


def test_istio_envoy_filter_patch_is_a_valid_ext_authz() -> None:
    """The EnvoyFilter's MERGE value parses as Envoy's ExtAuthz and adds jwt_authn metadata."""
    [envoy_filter] = [d for d in istio_documents() if d["kind"] == "EnvoyFilter"]
    [patch] = envoy_filter["spec"]["configPatches"]
    value = patch["patch"]["value"]
    assert value["name"] == AUTHZ
    typed = ext_authz_pb2.ExtAuthz()
    assert json_format.ParseDict(value["typed_config"], any_pb2.Any()).Unpack(typed)
    assert list(typed.metadata_context_namespaces) == ["envoy.filters.http.jwt_authn"]


@pytest.mark.parametrize(
    "path", [ROOT / "examples" / "gateway-config.yaml", ISTIO / "gateway-config.yaml"]
)
def test_shipped_gateway_configs_load(path: Path) -> None:
    """The example gateway configs are valid."""
    assert load_gateway_config(path).application.hosts


def _kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in istio_documents() if d["kind"] == kind]


def test_istio_provider_is_the_service_the_production_overlay_deploys() -> None:
    """mesh-config's service is Service `pdp` in the production overlay's namespace."""
    kubernetes = ROOT / "deploy" / "kubernetes"
    service = yaml.safe_load((kubernetes / "base" / "service.yaml").read_text("utf-8"))
    overlay = (kubernetes / "overlays" / "production" / "kustomization.yaml").read_text("utf-8")
    namespace = yaml.safe_load(overlay)["namespace"]
    [grpc] = [p for p in service["spec"]["ports"] if p["name"] == "grpc"]
    [provider] = _kind("IstioOperator")[0]["spec"]["meshConfig"]["extensionProviders"]
    target = provider["envoyExtAuthzGrpc"]
    name = service["metadata"]["name"]
    assert (target["service"], target["port"]) == (
        f"{name}.{namespace}.svc.cluster.local",
        grpc["port"],
    )


def test_istio_docs_name_the_label_pdps_network_policy_admits() -> None:
    """Workload pods call pdp through their sidecar: the CUSTOM policy's file says which label."""
    policy = (ROOT / "deploy" / "kubernetes" / "base" / "networkpolicy.yaml").read_text("utf-8")
    [rule, _] = yaml.safe_load(policy)["spec"]["ingress"]
    [(label, value)] = rule["from"][0]["podSelector"]["matchLabels"].items()
    for name in ("authorization-policy.yaml", "mesh-config.yaml"):
        assert f'{label}: "{value}"' in (ISTIO / name).read_text("utf-8"), name


def test_istio_and_envoy_accept_the_same_token_issuers_and_audiences() -> None:
    """RequestAuthentication's rules are the Envoy example's providers, version by version."""
    filters = {f.name: f for f in connection_manager().http_filters}
    jwt = config_pb2.JwtAuthentication()
    assert filters["envoy.filters.http.jwt_authn"].typed_config.Unpack(jwt)
    envoy = {
        (p.issuer, p.remote_jwks.http_uri.uri, tuple(p.audiences)) for p in jwt.providers.values()
    }
    [authentication] = _kind("RequestAuthentication")
    istio = {
        (r["issuer"], r["jwksUri"], tuple(r["audiences"]))
        for r in authentication["spec"]["jwtRules"]
    }
    assert istio == envoy


def test_istio_sidecars_that_fetch_the_keys_verify_the_key_server() -> None:
    """jwks-tls.yaml: SIMPLE TLS to the jwksUri host, CA bundle, SAN and SNI of that host."""
    [authentication] = _kind("RequestAuthentication")
    hosts = {urlsplit(r["jwksUri"]).hostname for r in authentication["spec"]["jwtRules"]}
    [entry] = _kind("ServiceEntry")
    [rule] = _kind("DestinationRule")
    tls = rule["spec"]["trafficPolicy"]["tls"]
    assert set(entry["spec"]["hosts"]) == hosts == {rule["spec"]["host"]}
    assert tls["mode"] == "SIMPLE"
    assert not tls.get("insecureSkipVerify", False)
    assert tls["caCertificates"]
    assert {tls["sni"], *tls["subjectAltNames"]} == hosts
