"""Tests for the gRPC service: a real grpc.aio server on a free port, called over a channel."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from serving import grpc_server

from pdp.decide import Decider
from pdp.errors import STATUS_NUMBERS, ErrorCode, InvalidRequest, NoPolicySet, error_code
from pdp.observability.audit import AuditLog
from pdp.observability.decisions import DecisionObserver
from pdp.policy.diagnostics import PolicySetError
from pdp.policy_store import PolicyStore
from pdp.server.service import PolicyDecisionService
from pdp.server.status import GRPC_STATUS
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

Outcome = pb.EvaluateResponse | grpc.aio.AioRpcError


def call(store: PolicyStore, *requests: pb.EvaluateRequest) -> list[Outcome]:
    """Serve `store` on 127.0.0.1:0 and send each request; a failed call is its error."""

    async def scenario() -> list[Outcome]:
        server, port = grpc_server(PolicyDecisionService(Decider(store), DecisionObserver()))
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
                outcomes: list[Outcome] = []
                for request in requests:
                    try:
                        outcomes.append(await stub.Evaluate(request, timeout=10))
                    except grpc.aio.AioRpcError as error:
                        outcomes.append(error)
                return outcomes
        finally:
            await server.stop(grace=None)

    return asyncio.run(scenario())


def loaded(policy_dir: Path) -> PolicyStore:
    """A store holding the shared policy set."""
    store = PolicyStore()
    store.load(policy_dir)
    return store


def parse(data: dict[str, Any]) -> pb.EvaluateRequest:
    """An EvaluateRequest from proto3 JSON."""
    return json_format.ParseDict(data, pb.EvaluateRequest())


def minimal() -> pb.EvaluateRequest:
    """The least a valid request says: who signs in to what."""
    return parse({"subject": {"userId": "u-1"}, "target": {"applicationId": "app-1"}})


def test_allow_challenge_and_deny_over_grpc(
    policy_dir: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """Each shared sign-in gets the decision its name promises, over a real channel."""
    wanted = {
        "allow": pb.DECISION_ALLOW,
        "challenge": pb.DECISION_CHALLENGE,
        "deny": pb.DECISION_DENY,
    }
    outcomes = call(loaded(policy_dir), *(parse(r) for r in sign_ins.values()))
    for name, outcome in zip(sign_ins, outcomes, strict=True):
        assert isinstance(outcome, pb.EvaluateResponse), name
        assert outcome.decision == wanted[name.split("_")[0]], name
        assert outcome.request_id == sign_ins[name]["requestId"]


def test_a_challenge_names_the_policy_and_the_requirement(
    policy_dir: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """The MFA challenge says which control meets it and which policy demands it."""
    [response] = call(loaded(policy_dir), parse(sign_ins["challenge_mfa"]))
    assert isinstance(response, pb.EvaluateResponse)
    assert [(list(r.any_of), list(r.policy_ids)) for r in response.requirements] == [
        (["mfa"], ["0000000a-0000-0000-0000-000000000001"])
    ]
    assert response.policy_version == loaded(policy_dir).current.version
    assert response.time.ToJsonString() == sign_ins["challenge_mfa"]["time"]


def test_a_request_without_time_is_decided_at_server_time(policy_dir: Path) -> None:
    """No time in the request: the response carries the server clock it was decided at."""
    [response] = call(loaded(policy_dir), minimal())
    assert isinstance(response, pb.EvaluateResponse)
    assert response.time.seconds > 1_700_000_000
    assert len(response.request_id) == 32


def test_bad_ip_is_invalid_argument_naming_the_field(policy_dir: Path) -> None:
    """A malformed IP address is the caller's error: INVALID_ARGUMENT, field and value named."""
    [error] = call(loaded(policy_dir), parse({"network": {"ipAddress": "300.1.1.1"}}))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "network.ip_address: not an IPv4 or IPv6 address: '300.1.1.1'"


def test_unknown_enum_number_is_invalid_argument_naming_the_field(policy_dir: Path) -> None:
    """An enum number the proto does not define (possible on the wire) is refused."""
    request = pb.EvaluateRequest()
    request.device.platform = 42  # type: ignore[assignment]
    [error] = call(loaded(policy_dir), request)
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "device.platform: unknown enum number 42"


def test_no_policy_set_is_unavailable() -> None:
    """Before any policy set is loaded the service answers UNAVAILABLE, a retryable status."""
    [error] = call(PolicyStore(), minimal())
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_a_failed_reload_keeps_serving_the_old_set(policy_dir: Path, tmp_path: Path) -> None:
    """A refused policy set raises, and the set in force keeps deciding unchanged."""
    store = loaded(policy_dir)
    before = store.current
    broken = tmp_path / "broken.json"
    broken.write_text('{"displayName": "no id", "state": "sometimes"}', encoding="utf-8")
    with pytest.raises(PolicySetError):
        store.load(broken)
    assert store.current is before
    request = minimal()
    request.authentication.methods.append("fido2")
    [response] = call(store, request)
    assert isinstance(response, pb.EvaluateResponse)
    assert response.decision == pb.DECISION_ALLOW


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (InvalidRequest("f", "m"), ErrorCode.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT),
        (NoPolicySet(), ErrorCode.NO_POLICY_SET, grpc.StatusCode.UNAVAILABLE),
        (KeyError("bug"), ErrorCode.INTERNAL, grpc.StatusCode.INTERNAL),
    ],
)
def test_each_error_has_one_code_and_one_status(
    exc: Exception, code: ErrorCode, status: grpc.StatusCode
) -> None:
    """Exceptions classify into the closed ErrorCode set; the table covers every code."""
    assert error_code(exc) is code
    assert GRPC_STATUS[code] is status
    assert set(GRPC_STATUS) == set(ErrorCode)


def test_the_audit_status_numbers_are_the_grpc_status_codes() -> None:
    """The audit record's status number of each ErrorCode is what the gRPC caller sees."""
    assert {code: GRPC_STATUS[code].value[0] for code in ErrorCode} == dict(STATUS_NUMBERS)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "subject"),
        ({"target": {"applicationId": "app-1"}, "subject": {"groupIds": ["g-1"]}}, "subject"),
        ({"subject": {"userId": "u-1"}}, "target"),
        (
            {"subject": {"servicePrincipalId": "sp-1"}, "network": {"ipAddress": "1.2.3.4"}},
            "target",
        ),
    ],
)
def test_a_sign_in_without_subject_or_target_is_refused(
    policy_dir: Path, data: dict[str, Any], field: str
) -> None:
    """No one signing in, or nothing signed in to: INVALID_ARGUMENT naming it, never ALLOW."""
    [error] = call(loaded(policy_dir), parse(data))
    assert isinstance(error, grpc.aio.AioRpcError)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith(f"{field}: ")


def test_undecodable_bytes_are_invalid_argument_and_audited(
    policy_dir: Path, tmp_path: Path
) -> None:
    """Bytes that are no EvaluateRequest: INVALID_ARGUMENT (not UNKNOWN), one audit record."""
    audit_path = tmp_path / "audit.jsonl"

    async def scenario() -> grpc.aio.AioRpcError:
        audit = AuditLog(str(audit_path))
        service = PolicyDecisionService(Decider(loaded(policy_dir)), DecisionObserver(audit))
        server, port = grpc_server(service)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                raw = channel.unary_unary("/pdp.v1.PolicyDecisionService/Evaluate")
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await raw(b"\xff\xff\xff", timeout=10)
                return refused.value
        finally:
            await server.stop(grace=None)
            audit.close()

    error = asyncio.run(scenario())
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "request: not a valid pdp.v1.EvaluateRequest message"
    [record] = [json.loads(line) for line in audit_path.read_text("utf-8").splitlines()]
    assert record["status"] == {"errorCode": 3, "failureReason": "invalid_argument"}
    assert len(record["id"]) == 32  # a fresh id: the bytes gave none
