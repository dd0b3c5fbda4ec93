"""/metrics counts what was decided, and the audit log holds one Entra-shaped line per call."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import pytest
from pdp_process import PdpProcess, channel, requests_of

from pdp.observability.audit_record import NOT_APPLIED_RESULTS
from pdp.server.convert_out import RESULTS as RESULT_NUMBERS
from pdp.server.convert_out import VERDICTS
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROUNDS = 4
DECISIONS = {number: verdict.value for verdict, number in VERDICTS.items()}
RESULTS = {number: result for result, number in RESULT_NUMBERS.items()}
EVALUATE = {"grpc_service": "pdp.v1.PolicyDecisionService", "grpc_method": "Evaluate"}


def audit_records(path: Path) -> list[dict[str, Any]]:
    """The audit log's lines, parsed."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_metrics_count_decisions_and_policy_results_after_n_calls(
    pdp: PdpProcess, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """After N calls (and 2 invalid ones) every counter says exactly what the answers said."""
    decisions: Counter[str] = Counter()
    results: Counter[tuple[str, str]] = Counter()
    with channel(pdp.address) as ch:
        stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
        for _ in range(ROUNDS):
            for request in requests_of(sign_ins).values():
                response = stub.Evaluate(request, timeout=10)
                decisions[DECISIONS[response.decision]] += 1
                for p in response.policies:
                    if RESULTS[p.result] not in NOT_APPLIED_RESULTS:
                        results[p.id, RESULTS[p.result].value] += 1
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as invalid:
                stub.Evaluate(pb.EvaluateRequest(network=pb.Network(ip_address="10.0.0.300")))
            assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    calls = ROUNDS * len(sign_ins)
    deadline = time.monotonic() + 5  # a refused call's status reaches the client first
    while (m := pdp.metrics()).value("grpc_server_handling_seconds_count", **EVALUATE) < calls + 2:
        assert time.monotonic() < deadline, "the refused calls were never counted"
        time.sleep(0.05)
    assert {d: m.value("pdp_decisions_total", decision=d) for d in decisions} == decisions
    assert m.value("pdp_decisions_total") == calls
    assert m.value("grpc_server_started_total", **EVALUATE, grpc_type="unary") == calls + 2
    assert m.value("grpc_server_handled_total", **EVALUATE, grpc_code="OK") == calls
    assert m.value("grpc_server_handled_total", **EVALUATE, grpc_code="InvalidArgument") == 2
    assert m.value("grpc_server_handling_seconds_count", **EVALUATE) == calls + 2
    assert m.value("grpc_server_handling_seconds_bucket", **EVALUATE, le="1.0") == calls + 2
    for (policy_id, result), count in results.items():
        assert m.value("pdp_policy_results_total", policy_id=policy_id, result=result) == count
    assert m.value("pdp_policy_results_total") == sum(results.values())
    assert m.value("pdp_policies_loaded") == 4
    [info] = m.labels("pdp_policy_set_info")
    assert info["version"] == response.policy_version
    assert m.value("pdp_policy_reloads_total") == 0
    assert m.value("pdp_audit_records_dropped_total") == 0
    labels = {k for name, have, _ in m.samples if name.startswith("pdp_") for k in have}
    assert not labels & {"user_id", "ip", "ip_address", "application_id", "app_id"}


def test_audit_log_has_one_entra_shaped_record_per_call(
    policy_dir: Path, tmp_path: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """Each call (failed too) is one sign-in-log-shaped line; IPs truncated to /24 and /48."""
    audit = tmp_path / "audit.jsonl"
    args = ("--audit-log", str(audit), "--audit-truncate-ip")
    with PdpProcess(policy_dir, *args) as pdp, channel(pdp.wait_ready().address) as ch:
        stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
        answers = {name: stub.Evaluate(r, timeout=10) for name, r in requests_of(sign_ins).items()}
        with pytest.raises(grpc.RpcError):
            stub.Evaluate(pb.EvaluateRequest(request_id="bad-1", client_app_type=99))
        assert pdp.stop() == 0
    records = {r["id"]: r for r in audit_records(audit)}
    assert len(records) == len(sign_ins) + 1

    challenge = records["challenge-1"]
    assert challenge["ipAddress"] == "198.51.100.0"
    assert challenge["userId"] == "u-1"  # as pdp evaluated it: ids lower-cased
    assert challenge["clientAppUsed"] == "Browser"
    assert challenge["decision"] == "challenge"
    assert challenge["conditionalAccessStatus"] == "failure"
    assert challenge["status"] == {"errorCode": 0}
    assert challenge["requirements"] == [
        {"anyOf": ["mfa"], "policyIds": ["0000000a-0000-0000-0000-000000000001"]}
    ]
    assert challenge["appliedConditionalAccessPolicies"] == [
        {
            "id": "0000000a-0000-0000-0000-000000000001",
            "displayName": "Require MFA for all users",
            "result": "failure",
            "enforcedGrantControls": ["mfa"],
            "enforcedSessionControls": [],
        }
    ]
    assert challenge["policyVersion"] == answers["challenge_mfa"].policy_version
    assert challenge["riskLevelDuringSignIn"] == "none"
    assert challenge["latencyMs"] > 0
    assert challenge["createdDateTime"].endswith("Z")
    assert records["allow-1"]["ipAddress"] == "2001:db8::"
    assert records["allow-1"]["conditionalAccessStatus"] == "success"
    assert records["allow-2"]["ipAddress"] == "203.0.113.0"
    payroll = records["deny-2"]
    assert payroll["deviceDetail"] == {
        "deviceId": "d-1",
        "operatingSystem": "Windows",
        "isCompliant": False,
        "trustType": "",
    }
    assert records["deny-1"]["decision"] == "deny"
    failed = records["bad-1"]
    assert failed["status"] == {"errorCode": 3, "failureReason": "invalid_argument"}
    assert failed["decision"] == ""
    assert "appliedConditionalAccessPolicies" not in failed
