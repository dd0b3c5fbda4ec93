"""`pdp serve` against hostile policy folders: link loops, alias bombs, a slow first load."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path
from typing import Any

from grpc_health.v1 import health_pb2, health_pb2_grpc
from pdp_process import PdpProcess, channel, requests_of

from pdp.v1 import pdp_pb2_grpc


def _bomb() -> str:
    """YAML whose @odata.type expands through nested aliases to 9**9 strings."""
    lines = ["'@odata.type': &t", "  a0: &a0 [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    lines += [f"  a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return "\n".join([*lines, "displayName: bomb", ""])


def test_links_to_the_folder_itself_neither_hang_the_start_nor_the_reloads(
    policy_dir: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """Two links to `.`: pdp starts, serves, and notices a change like any other folder."""
    (policy_dir / "a").symlink_to(".")
    (policy_dir / "b").symlink_to(".")
    with PdpProcess(policy_dir, "--reload-interval", "0.1") as pdp:
        pdp.wait_ready()
        policies = json.loads((policy_dir / "policies.json").read_text("utf-8"))
        policies[0]["displayName"] = "Require MFA for everyone"
        (policy_dir / "policies.json").write_text(json.dumps(policies), encoding="utf-8")
        changed = pdp.wait_for("policy_set_loaded", reason="changed")
        request = requests_of(sign_ins)["challenge_mfa"]
        with channel(pdp.address) as ch:
            answer = pdp_pb2_grpc.PolicyDecisionServiceStub(ch).Evaluate(request, timeout=10)
        assert answer.policy_version == changed["policy_version"]
        assert pdp.stop() == 0


def test_an_alias_bomb_on_hot_reload_is_refused_and_reloading_goes_on(
    policy_dir: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """The bomb is one counted failure; the old set serves and the next change still loads.

    Health stays SERVING throughout: the last good set is in force.
    """
    request = requests_of(sign_ins)["challenge_mfa"]
    with PdpProcess(policy_dir, "--reload-interval", "0.1") as pdp:
        pdp.wait_ready()
        first = pdp.wait_for("policy_set_loaded", reason="start")["policy_version"]
        (policy_dir / "bomb.yaml").write_text(_bomb(), encoding="utf-8")
        failure = pdp.wait_for("policy_reload_failed", timeout=10)
        assert failure["policy_version"] == first
        with channel(pdp.address) as ch:
            stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
            assert stub.Evaluate(request, timeout=10).policy_version == first
            health = health_pb2_grpc.HealthStub(ch)
            status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
            assert status == health_pb2.HealthCheckResponse.SERVING
        (policy_dir / "bomb.yaml").unlink()
        policies = json.loads((policy_dir / "policies.json").read_text("utf-8"))
        policies[0]["displayName"] = "Require MFA for everyone"
        (policy_dir / "policies.json").write_text(json.dumps(policies), encoding="utf-8")
        pdp.wait_for("policy_set_loaded", reason="changed")
        m = pdp.metrics()
        assert m.value("pdp_policy_reloads_total", outcome="failure") == 1
        assert m.value("pdp_policy_reloads_total", outcome="success") == 1
        assert pdp.stop() == 0


def test_sigterm_during_a_slow_first_load_exits_at_once(tmp_path: Path) -> None:
    """A set that takes many seconds to read (YAML, 60,000 ranges) does not hold up SIGTERM."""
    rng = random.Random(7)
    lines = [
        "'@odata.type': '#microsoft.graph.ipNamedLocation'",
        "id: b0c1d2e3-0000-4000-8000-00000000c0a1",
        "displayName: Egress ranges",
        "ipRanges:",
    ]
    lines += [
        f"  - cidrAddress: {rng.randrange(1, 224)}.{rng.randrange(256)}."
        f"{rng.randrange(256)}.{rng.randrange(256)}/32"
        for _ in range(60_000)
    ]
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "ranges.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with PdpProcess(folder) as pdp:
        pdp.wait_for("policy_load_started", reason="start")
        time.sleep(0.5)
        pdp.signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = pdp.process.wait(timeout=30)
        took = time.monotonic() - signalled
        assert code == 0
        assert not any(pdp.matching("policy_set_loaded")), "the load finished first: too fast"
        assert took < 5.0, f"exit took {took:.1f}s after SIGTERM"
