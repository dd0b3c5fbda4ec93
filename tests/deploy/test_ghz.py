"""deploy/ghz: the ghz config names pdp's RPC, and every request in its data file decides.

benchmarks/load.py sends the same requests, so this also pins the local load test's mix.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from pdp.decide import Decider
from pdp.policy_store import PolicyStore
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
GHZ = ROOT / "deploy" / "ghz"
# ghz's run configuration keys (its runner.Config JSON names) that this config may use.
GHZ_KEYS = {
    "name", "call", "host", "insecure", "data-file", "connections", "concurrency", "duration",
    "timeout", "skip-first", "count-errors", "rps", "total", "cacert", "cert", "key", "cname",
    "proto", "protoset", "import-paths", "metadata", "format", "output", "load-schedule",
}  # fmt: skip


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The ghz config."""
    loaded: dict[str, Any] = json.loads((GHZ / "pdp-evaluate.json").read_text("utf-8"))
    return loaded


def test_config_calls_evaluate_through_reflection(config: dict[str, Any]) -> None:
    """The config calls pdp.v1.PolicyDecisionService.Evaluate, found by server reflection."""
    assert set(config) <= GHZ_KEYS, sorted(set(config) - GHZ_KEYS)
    package_service, method = config["call"].rsplit(".", 1)
    service = pb.DESCRIPTOR.services_by_name[package_service.rsplit(".", 1)[1]]
    assert service.full_name == package_service
    assert service.methods_by_name[method].input_type.full_name == "pdp.v1.EvaluateRequest"
    assert "proto" not in config
    assert "protoset" not in config
    assert (GHZ / config["data-file"]).is_file()  # run from deploy/ghz: see README
    assert config["host"].endswith(":50051")
    assert config["concurrency"] >= config["connections"]


def test_every_request_decides() -> None:
    """Each request is a valid EvaluateRequest, and the mix has all three decisions."""
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    decider = Decider(store)
    decisions: Counter[str] = Counter()
    requests = json.loads((GHZ / "requests.json").read_text("utf-8"))
    assert len(requests) >= 8
    for data in requests:
        assert data["requestId"] == "ghz-{{.RequestNumber}}"  # a ghz template, per call
        request = json_format.ParseDict(data, pb.EvaluateRequest())  # unknown fields fail
        decision = decider.decide_without_risk(to_context(request, time.time()))
        decisions[decision.verdict.value] += 1
    assert set(decisions) == {"allow", "challenge", "deny"}
