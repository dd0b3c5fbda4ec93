"""pdp's own limits: over the budget of decisions at once, Evaluate and Check refuse at once.

A slow risk store holds two decisions in flight against a budget of two; the next call is
refused immediately (RESOURCE_EXHAUSTED for Evaluate, a 503 denial for Check: never an RPC
error Envoy could let through), counted in the gRPC metrics and audited, and once the slow
calls finish a new call is decided again. The servers are real grpc.aio servers.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import grpc
from envoy_requests import DEV_HOST, HOME, engineer_claims, envoy_check
from prometheus_client import REGISTRY
from serving import grpc_server

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.gateway.config import load_gateway_config
from pdp.gateway.envoy import auth, auth_grpc
from pdp.gateway.service import EXT_AUTHZ_SERVICE, add_ext_authz
from pdp.limits import Limits
from pdp.observability.audit import AuditLog
from pdp.observability.decisions import DecisionObserver
from pdp.observability.metrics import PUBLISHER
from pdp.policy.compile import CompiledPolicySet
from pdp.policy_store import PolicyStore
from pdp.risk.assessment import NO_RISK, Assessment
from pdp.server.service import PolicyDecisionService
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


class SlowAssessor:
    """A risk assessor that takes `delay` seconds for sign-ins of user `slow`."""

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """No geo-IP here."""
        return ctx

    async def assess(self, ctx: SignInContext, compiled: CompiledPolicySet) -> Assessment:
        """No risk; late for the slow user."""
        if ctx.user_id == "slow":
            await asyncio.sleep(self.delay)
        return NO_RISK

    async def record_allowed(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        """Nothing to record."""


def handled(method: str, code: str) -> float:
    """grpc_server_handled_total for one method and code, in this process."""
    PUBLISHER.publish()
    labels = {"grpc_method": method, "grpc_code": code, "grpc_type": "unary"}
    service = "pdp.v1.PolicyDecisionService" if method == "Evaluate" else EXT_AUTHZ_SERVICE
    return (
        REGISTRY.get_sample_value("grpc_server_handled_total", {**labels, "grpc_service": service})
        or 0.0
    )


def test_calls_over_the_decision_budget_are_refused_counted_and_audited(tmp_path: Path) -> None:
    """Two slow decisions fill a budget of two: Evaluate and Check refuse the next at once."""
    audit_path = tmp_path / "audit.jsonl"
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    config = load_gateway_config(ROOT / "examples" / "gateway-config.yaml")
    slow = pb.EvaluateRequest(
        request_id="slow",
        subject=pb.Subject(user_id="slow"),
        target=pb.Target(application_id="app-1"),
    )
    fast = pb.EvaluateRequest(
        request_id="over",
        subject=pb.Subject(user_id="fast"),
        target=pb.Target(application_id="app-1"),
    )
    before = (handled("Evaluate", "ResourceExhausted"), handled("Check", "OK"))

    async def scenario() -> tuple[grpc.StatusCode, int, int]:
        audit = AuditLog(str(audit_path))
        observer = DecisionObserver(audit)
        decider = Decider(store, SlowAssessor(2.0))
        limits = Limits(max_concurrent=2)
        more = {EXT_AUTHZ_SERVICE: lambda s: add_ext_authz(s, decider, config, observer, limits)}
        service = PolicyDecisionService(decider, observer, limits)
        server, port = grpc_server(service, more_services=more)
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                evaluate = pdp_pb2_grpc.PolicyDecisionServiceStub(ch).Evaluate
                check = auth_grpc.AuthorizationStub(ch).Check
                held = [asyncio.ensure_future(evaluate(slow, timeout=10)) for _ in range(2)]
                await asyncio.sleep(0.3)  # both are in the slow assessor now
                loop = asyncio.get_running_loop()
                started = loop.time()
                try:
                    await evaluate(fast, timeout=10)
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                else:
                    code = grpc.StatusCode.OK
                refused: auth.CheckResponse = await check(
                    envoy_check(host=DEV_HOST, client=HOME, claims=engineer_claims()), timeout=10
                )
                assert loop.time() - started < 1.0  # refused at once, not queued
                await asyncio.gather(*held)
                after = await evaluate(fast, timeout=10)  # the budget is free again
                return code, refused.denied_response.status.code, after.decision
        finally:
            await server.stop(grace=None)
            audit.close()

    code, check_status, decided = asyncio.run(scenario())
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert check_status == 503  # a denial Envoy forwards, not an RPC error
    assert decided == pb.DECISION_ALLOW
    assert handled("Evaluate", "ResourceExhausted") == before[0] + 1
    assert handled("Check", "OK") == before[1] + 1  # Check answered, with a denial
    records = [json.loads(line) for line in audit_path.read_text("utf-8").splitlines()]
    refusals = [r for r in records if r["status"].get("failureReason") == "resource_exhausted"]
    assert len(refusals) == 2
    assert {r["id"] for r in refusals} >= {"over"}
