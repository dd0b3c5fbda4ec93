"""deploy/ghz: the ghz config names pdp's RPC, and every request in its data file decides.

benchmarks/load.py sends the same requests, so this also pins the local load test's mix.
"""

from __future__ import annotations

import json
import re
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
# Every key ghz reads from a config file, with its type: the JSON tags of ghz's own config
# struct, `Config` in runner/config.go of github.com/bojand/ghz (Apache-2.0), copied from
# commit d6acd43d95c09d70fc6234a25b3adcfcf47a5314 (v0.121.0 + 5). ghz decodes the file with
# configor, which ignores a key it does not know: a misspelt key (`skip-first` for
# `skipFirst`) silently does nothing, so the test refuses it here.
GHZ_CONFIG_KEYS = {
    "proto": "str",
    "protoset": "str",
    "call": "str",
    "cacert": "str",
    "cert": "str",
    "key": "str",
    "count-errors": "bool",
    "skipTLS": "bool",
    "skipFirst": "uint",
    "cname": "str",
    "authority": "str",
    "insecure": "bool",
    "total": "uint",
    "async": "bool",
    "concurrency": "uint",
    "concurrency-schedule": "str",
    "concurrency-start": "uint",
    "concurrency-end": "uint",
    "concurrency-step": "int",
    "concurrency-step-duration": "duration",
    "concurrency-max-duration": "duration",
    "connections": "uint",
    "rps": "uint",
    "duration": "duration",
    "duration-stop": "str",
    "max-duration": "duration",
    "timeout": "duration",
    "data": "any",
    "data-file": "str",
    "binary-file": "str",
    "metadata": "map",
    "metadata-file": "str",
    "stream-interval": "duration",
    "stream-call-duration": "duration",
    "stream-call-count": "uint",
    "stream-dynamic-messages": "bool",
    "output": "str",
    "format": "str",
    "connect-timeout": "duration",
    "keepalive": "duration",
    "cpus": "uint",
    "import-paths": "list",
    "name": "str",
    "tags": "map",
    "reflect-metadata": "map",
    "debug": "str",
    "host": "str",
    "enable-compression": "bool",
    "load-schedule": "str",
    "load-start": "uint",
    "load-end": "uint",
    "load-step": "int",
    "load-step-duration": "duration",
    "load-max-duration": "duration",
    "lb-strategy": "str",
    "max-recv-message-size": "str",
    "max-send-message-size": "str",
    "disable-template-functions": "bool",
    "disable-template-data": "bool",
}
DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")  # Go's time.ParseDuration


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The ghz config."""
    loaded: dict[str, Any] = json.loads((GHZ / "pdp-evaluate.json").read_text("utf-8"))
    return loaded


def test_every_key_is_one_ghz_reads_with_the_type_it_reads(config: dict[str, Any]) -> None:
    """Each key is in ghz's config struct, and its value has the type ghz decodes."""
    assert set(config) <= set(GHZ_CONFIG_KEYS), sorted(set(config) - set(GHZ_CONFIG_KEYS))
    for key, value in config.items():
        kind = GHZ_CONFIG_KEYS[key]
        if kind == "bool":
            assert isinstance(value, bool), key
        elif kind in ("uint", "int"):
            assert isinstance(value, int), key
            assert not isinstance(value, bool), key
            assert kind == "int" or value >= 0, key
        elif kind == "duration":
            assert isinstance(value, str), key
            assert DURATION.fullmatch(value), key
        elif kind == "str":
            assert isinstance(value, str), key


def test_config_skips_the_warm_up_calls(config: dict[str, Any]) -> None:
    """The first calls (connection set-up, caches) are left out of the figures."""
    assert config["skipFirst"] >= config["concurrency"]


def test_config_calls_evaluate_through_reflection(config: dict[str, Any]) -> None:
    """The config calls pdp.v1.PolicyDecisionService.Evaluate, found by server reflection."""
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
