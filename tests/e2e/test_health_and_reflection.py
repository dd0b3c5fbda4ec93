"""grpc.health.v1 through a server's life (start, reload, shutdown), and server reflection."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from pdp_process import PdpProcess, Watcher, channel

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
API = "pdp.v1.PolicyDecisionService"
BIG_SET = 12_000  # policies: compiling them takes about a second, long enough to watch


def big_policy_set(folder: Path) -> Path:
    """A valid set large enough that its compilation can be observed from outside."""
    folder.mkdir()
    policies = [
        {
            "id": f"00000000-0000-0000-0000-{i:012d}",
            "displayName": f"Workspace {i} MFA",
            "state": "enabled",
            "conditions": {
                "clientAppTypes": ["all"],
                "users": {"includeGroups": [f"00000000-0000-0000-0001-{i:012d}"]},
                "applications": {"includeApplications": [f"00000000-0000-0000-0002-{i:012d}"]},
            },
            "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
        }
        for i in range(BIG_SET)
    ]
    (folder / "policies.json").write_text(json.dumps(policies), encoding="utf-8")
    return folder


def test_health_serves_after_compile_stays_through_reload_and_drops_on_sigterm(
    tmp_path: Path,
) -> None:
    """NOT_SERVING while compiling, SERVING after, steady on reload, NOT_SERVING on SIGTERM."""
    with PdpProcess(big_policy_set(tmp_path / "big"), "--reload-interval", "0") as pdp:
        overall, api = Watcher(pdp.address, ""), Watcher(pdp.address, API)
        try:
            assert overall.wait_for(2) == [NOT_SERVING, SERVING]
            assert api.wait_for(2) == [NOT_SERVING, SERVING]
            pdp.wait_ready()
            with channel(pdp.address) as ch:
                stub = health_pb2_grpc.HealthStub(ch)
                assert stub.Check(health_pb2.HealthCheckRequest(service=API)).status == SERVING
                with pytest.raises(grpc.RpcError) as unknown:
                    stub.Check(health_pb2.HealthCheckRequest(service="pdp.v1.Nothing"))
                assert unknown.value.code() is grpc.StatusCode.NOT_FOUND

            pdp.signal(signal.SIGHUP)
            pdp.wait_for("policy_set_loaded", reason="sighup")
            assert overall.statuses == [NOT_SERVING, SERVING]  # no flap during the reload

            pdp.signal(signal.SIGTERM)
            assert overall.wait_for(3) == [NOT_SERVING, SERVING, NOT_SERVING]
            assert overall.ended.wait(10)
            assert api.ended.wait(10)
            assert pdp.process.wait(timeout=20) == 0
        finally:
            overall.close()
            api.close()


def reflect(address: str, request: reflection_pb2.ServerReflectionRequest) -> Any:
    """One reflection request's response."""
    with channel(address) as ch:
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        [response] = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        return response


def test_reflection_lists_the_services_and_describes_the_api(pdp: PdpProcess) -> None:
    """Grpcurl and ghz need no proto file: reflection lists and describes every service."""
    listed = reflect(pdp.address, reflection_pb2.ServerReflectionRequest(list_services=""))
    assert {s.name for s in listed.list_services_response.service} == {
        API,
        "envoy.service.auth.v3.Authorization",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
    described = reflect(
        pdp.address, reflection_pb2.ServerReflectionRequest(file_containing_symbol=API)
    )
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    services = {(f.package, s.name): [m.name for m in s.method] for f in files for s in f.service}
    assert services[("pdp.v1", "PolicyDecisionService")] == ["Evaluate"]
