"""The audit record and decision metrics built from domain values equal the proto-built ones.

The record used to be built from the EvaluateRequest and EvaluateResponse messages; it is now
built from the SignInContext and the Decision, off the request path. A frozen copy of the
old builders (`legacy/`) runs on the same calls, and every field and metric must agree,
except where the new record deliberately says what pdp evaluated rather than how the
request spelled it: ids lower-cased and trimmed, IP addresses normalised.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import json_format
from prometheus_client import REGISTRY

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode
from pdp.observability.audit_record import AuditLine
from pdp.observability.decisions import DecisionMetrics
from pdp.observability.metrics import PUBLISHER
from pdp.policy_store import PolicyStore
from pdp.risk.assessor import build_assessor
from pdp.risk.settings import RiskSettings
from pdp.server.convert_in import describe, to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
LEGACY = Path(__file__).resolve().parent / "legacy"
REQUESTS = [
    *sorted((ROOT / "examples" / "requests").glob("*.json")),
    *sorted((ROOT / "examples" / "requests" / "travel").glob("*.json")),
]


def _legacy(name: str) -> ModuleType:
    """A frozen legacy module, loaded by path under its own name."""
    spec = importlib.util.spec_from_file_location(name, LEGACY / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


legacy_record = _legacy("proto_audit_record")
legacy_decisions = _legacy("proto_decisions")


def _requests() -> list[pb.EvaluateRequest]:
    ghz = json.loads((ROOT / "deploy" / "ghz" / "requests.json").read_text("utf-8"))
    files = [json.loads(p.read_text("utf-8")) for p in REQUESTS]
    out = []
    for source in [*files, *ghz]:
        data = dict(source)
        if "{{" in data.get("requestId", ""):
            data["requestId"] = f"ghz-{len(out)}"
        out.append(json_format.ParseDict(data, pb.EvaluateRequest()))
    explained = [pb.EvaluateRequest() for _ in out]
    for request, copy in zip(out, explained, strict=True):
        copy.CopyFrom(request)
        copy.explain = True  # every policy reported, with What-If reasons
    return [*out, *explained]


def _decided() -> list[tuple[pb.EvaluateRequest, SignInContext, Decision]]:
    """Every example request decided in order, with pdp's risk history (travel detections)."""
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")

    async def run() -> list[tuple[pb.EvaluateRequest, SignInContext, Decision]]:
        assessor = build_assessor(RiskSettings())
        decider = Decider(store, assessor)
        out = []
        for request in _requests():
            ctx = to_context(request, 1_795_251_600.0)
            out.append((request, ctx, await decider.decide(ctx)))
        await assessor.close()
        return out

    return asyncio.run(run())


def _normalised(record: dict[str, Any]) -> dict[str, Any]:
    """The record with ids and addresses in the form pdp evaluates them."""
    out = json.loads(json.dumps(record))
    for key in ("userId", "servicePrincipalId", "appId"):
        out[key] = out[key].strip().lower()
    out["deviceDetail"]["deviceId"] = out["deviceDetail"]["deviceId"].strip().lower()
    if out["ipAddress"].startswith("::ffff:"):
        out["ipAddress"] = out["ipAddress"][len("::ffff:") :]
    return out


@pytest.mark.parametrize("hide_ip", [False, True])
def test_every_decided_call_gives_the_same_record(hide_ip: bool) -> None:
    """For each example call (travel detections included), old and new records agree."""
    line = AuditLine(hide_ip=hide_ip)
    decided = _decided()
    assert any(d.risk.detections for _, _, d in decided)  # the travel sequence detects
    for request, ctx, decision in decided:
        response = to_response(decision, ctx)
        old = legacy_record.audit_line(
            request, response, created=1.5, latency_s=0.002, hide_ip=hide_ip
        )
        new = line(ctx, decision, created=1.5, latency_s=0.002)
        assert json.loads(new) == _normalised(json.loads(old)), request.request_id
        assert list(json.loads(new)) == list(json.loads(old))  # the same field order


def test_a_refused_call_gives_the_same_record() -> None:
    """A request refused as invalid: the same status, reason and request fields."""
    request = pb.EvaluateRequest(
        request_id="r-1",
        subject=pb.Subject(user_id="U-1"),
        target=pb.Target(application_id="App-1"),
        network=pb.Network(ip_address="198.51.100.300", geo=pb.Geo(country="FR")),
        device=pb.Device(device_id="D-1", platform=pb.PLATFORM_IOS, compliant=True),
        client_app_type=pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS,
    )
    old = legacy_record.audit_line(
        request, None, created=0.25, latency_s=0.0015, failure=(3, "invalid_argument")
    )
    new = AuditLine()(
        describe(request, 0.25),
        None,
        created=0.25,
        latency_s=0.0015,
        failure=ErrorCode.INVALID_ARGUMENT,
    )
    assert json.loads(new) == json.loads(old)


def _samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The decision metrics' samples in this process."""
    PUBLISHER.publish()
    names = {
        "pdp_decisions_total",
        "pdp_policy_results_total",
        "pdp_risk_degraded_decisions_total",
    }
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name in names
    }


def _delta(
    before: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    after: dict[tuple[str, tuple[tuple[str, str], ...]], float],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v != before.get(k, 0.0)}


def test_the_decision_metrics_count_the_same() -> None:
    """The same calls counted by the old observer and by the tallies give the same deltas."""
    decided = _decided() * 3  # repeated: the tallies count repeats by identity
    start = _samples()
    old = legacy_decisions.DecisionObserver(None)
    for request, ctx, decision in decided:
        old.observe(request, to_response(decision, ctx), created=time.time(), started=0.0)
    middle = _samples()
    new = DecisionMetrics()
    PUBLISHER.add(new.publish)
    try:
        for _, ctx, decision in decided:
            new.count(decision, explain=ctx.explain)
    finally:
        PUBLISHER.remove(new.publish)
    end = _samples()
    assert _delta(start, middle) == _delta(middle, end)
    assert _delta(middle, end)  # something was counted
