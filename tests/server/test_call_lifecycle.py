"""Calls that end early, in process: cancelled mid-decision, or past their deadline when handled."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
from serving import grpc_server

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.observability.audit import AuditLog
from pdp.observability.decisions import DecisionObserver
from pdp.policy.compile import CompiledPolicySet
from pdp.policy_store import PolicyStore
from pdp.risk.assessment import NO_RISK, Assessment
from pdp.server.service import PolicyDecisionService
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc


class SlowRiskStore:
    """A RiskAssessor whose risk store takes `delay` seconds (blocking the loop if asked)."""

    def __init__(self, delay: float, *, blocking: bool = False) -> None:
        self.delay = delay
        self.blocking = blocking
        self.calls = 0

    def enrich(self, ctx: SignInContext) -> SignInContext:
        """No geo-IP here."""
        return ctx

    async def record_allowed(self, ctx: SignInContext, compiled: CompiledPolicySet) -> None:
        """Nothing to record."""

    async def assess(self, ctx: SignInContext, compiled: CompiledPolicySet) -> Assessment:
        """No risk, late."""
        self.calls += 1
        if self.blocking:
            time.sleep(self.delay)
        else:
            await asyncio.sleep(self.delay)
        return NO_RISK


async def serve_and_call(
    policy_dir: Path, audit_path: Path, assessor: SlowRiskStore, timeouts: list[float]
) -> list[grpc.StatusCode]:
    """Serve with `assessor`, send one call per timeout (50 ms apart), return their codes.

    The calls come from gRPC's synchronous client on threads, so a blocked server loop
    does not hold them back.
    """
    store = PolicyStore()
    store.load(policy_dir)
    audit = AuditLog(str(audit_path))
    service = PolicyDecisionService(Decider(store, assessor), DecisionObserver(audit))
    server, port = grpc_server(service)
    await server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
            grpc.channel_ready_future(channel).result(timeout=10)

            def call(n: int, timeout: float) -> grpc.StatusCode:
                time.sleep(0.05 * n)
                request = pb.EvaluateRequest(
                    request_id=f"call-{n}",
                    subject=pb.Subject(user_id="u-1"),
                    target=pb.Target(application_id="app-1"),
                )
                try:
                    stub.Evaluate(request, timeout=timeout)
                except grpc.RpcError as error:
                    return error.code()  # type: ignore[no-any-return]
                return grpc.StatusCode.OK

            calls = (asyncio.to_thread(call, n, t) for n, t in enumerate(timeouts))
            codes = await asyncio.gather(*calls)
            await asyncio.sleep(0.3)  # let the server notice the cancellations
            return list(codes)
    finally:
        await server.stop(grace=1)
        audit.close()


def records(path: Path) -> dict[str, dict[str, object]]:
    """The audit records by request id."""
    return {r["id"]: r for r in map(json.loads, path.read_text("utf-8").splitlines())}


def test_a_call_cancelled_mid_decision_leaves_one_cancelled_audit_record(
    policy_dir: Path, tmp_path: Path
) -> None:
    """The caller's deadline expires while the risk store is slow: one record says cancelled."""
    audit = tmp_path / "audit.jsonl"
    codes = asyncio.run(serve_and_call(policy_dir, audit, SlowRiskStore(1.0), [0.1]))
    assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED]
    [record] = records(audit).values()
    assert record["id"] == "call-0"
    assert record["status"] == {"errorCode": 1, "failureReason": "cancelled"}
    assert record["decision"] == ""


def test_a_call_whose_deadline_passed_before_it_was_handled_is_not_evaluated(
    policy_dir: Path, tmp_path: Path
) -> None:
    """A call stuck behind a loop-blocking one past its deadline is never decided."""
    audit = tmp_path / "audit.jsonl"
    assessor = SlowRiskStore(0.4, blocking=True)
    codes = asyncio.run(serve_and_call(policy_dir, audit, assessor, [5.0, 0.1]))
    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.DEADLINE_EXCEEDED]
    assert assessor.calls == 1
    late = records(audit).get("call-1")
    assert late is None or late["status"] == {
        "errorCode": 4,
        "failureReason": "deadline_exceeded",
    }
