"""Application attributes and the second-factor frequency over a real gRPC server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from serving import grpc_server

from pdp.decide import Decider
from pdp.observability.decisions import DecisionObserver
from pdp.policy_store import PolicyStore
from pdp.server.service import PolicyDecisionService
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

POLICIES: list[dict[str, Any]] = [
    {
        "id": "11111111-0000-4000-8000-000000000001",
        "displayName": "Apps tagged requireMFA need MFA",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {
                "includeApplications": [],
                "applicationFilter": {
                    "mode": "include",
                    "rule": 'CustomSecurityAttribute.CA_policyRequirement -contains "requireMFA"',
                },
            },
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    },
    {
        "id": "11111111-0000-4000-8000-000000000002",
        "displayName": "Second factor every hour",
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "sessionControls": {
            "signInFrequency": {
                "isEnabled": True,
                "value": 1,
                "type": "hours",
                "frequencyInterval": "timeBased",
                "authenticationType": "secondaryAuthentication",
            }
        },
    },
]
Outcome = pb.EvaluateResponse | grpc.aio.AioRpcError


def _call(folder: Path, *requests: dict[str, Any]) -> list[Outcome]:
    (folder / "policies.json").write_text(json.dumps(POLICIES), encoding="utf-8")
    store = PolicyStore()
    store.load(folder)

    async def scenario() -> list[Outcome]:
        server, port = grpc_server(PolicyDecisionService(Decider(store), DecisionObserver()))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
                out: list[Outcome] = []
                for request in requests:
                    message = json_format.ParseDict(request, pb.EvaluateRequest())
                    try:
                        out.append(await stub.Evaluate(message, timeout=10))
                    except grpc.aio.AioRpcError as error:
                        out.append(error)
                return out
        finally:
            await server.stop(grace=None)

    return asyncio.run(scenario())


def _request(target: dict[str, Any], **authentication: Any) -> dict[str, Any]:
    return {
        "time": "2026-05-01T12:00:00Z",
        "subject": {"userId": "u-1"},
        "target": target,
        "clientAppType": "CLIENT_APP_TYPE_BROWSER",
        "authentication": {"methods": ["password"], **authentication},
    }


def test_application_attributes_decide_over_grpc(tmp_path: Path) -> None:
    """A tagged app is challenged for MFA, an untagged one is not, a bad value is refused."""
    tagged, untagged, bad = _call(
        tmp_path,
        _request(
            {
                "applicationId": "app-1",
                "customSecurityAttributes": {"CA": {"policyRequirement": ["requireMFA"]}},
            }
        ),
        _request(
            {
                "applicationId": "app-2",
                "customSecurityAttributes": {"CA_policyRequirement": ["none"]},
            }
        ),
        _request(
            {"applicationId": "app-3", "customSecurityAttributes": {"CA_policyRequirement": True}}
        ),
    )
    assert isinstance(tagged, pb.EvaluateResponse)
    assert tagged.decision == pb.DECISION_CHALLENGE
    assert [list(r.any_of) for r in tagged.requirements] == [["mfa"]]
    assert isinstance(untagged, pb.EvaluateResponse)
    assert untagged.decision == pb.DECISION_ALLOW
    assert isinstance(bad, grpc.aio.AioRpcError)
    assert bad.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "target.custom_security_attributes['CA_policyRequirement']" in (bad.details() or "")


def test_second_factor_frequency_over_grpc(tmp_path: Path) -> None:
    """Over an hour since the second factor: secondaryReauthentication, in its own session field."""
    (response,) = _call(
        tmp_path,
        _request(
            {"applicationId": "app-2"},
            authenticatedAt="2026-05-01T11:50:00Z",
            secondaryAuthenticatedAt="2026-05-01T10:30:00Z",
        ),
    )
    assert isinstance(response, pb.EvaluateResponse)
    assert response.decision == pb.DECISION_CHALLENGE
    assert [list(r.any_of) for r in response.requirements] == [["secondaryReauthentication"]]
    assert response.session.secondary_sign_in_frequency.period.seconds == 3600
    assert not response.session.HasField("sign_in_frequency")
