"""Hot reload of a ConfigMap-style folder under load, and SIGTERM under load."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from pdp_process import PdpProcess, requests_of

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc


class ConfigMapVolume:
    """A folder laid out as the kubelet writes a ConfigMap volume, updated the same way.

    Each key is a link `name -> ..data/name`; `..data` links to a timestamped folder, and an
    update writes a new folder and renames a new `..data` link over the old one (atomic).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        self._generation = 0

    def publish(self, files: dict[str, str]) -> None:
        """Make `files` the volume's content in one atomic swap."""
        self._generation += 1
        folder = f"..2026_01_01_00_00_{self._generation:02d}.000000001"
        (self.root / folder).mkdir()
        for name, text in files.items():
            (self.root / folder / name).write_text(text, encoding="utf-8")
        (self.root / "..data_tmp").symlink_to(folder)
        (self.root / "..data_tmp").replace(self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")


async def drive(
    address: str, requests: list[pb.EvaluateRequest], until: Callable[[], bool]
) -> tuple[Counter[str], list[grpc.StatusCode]]:
    """Call Evaluate from 4 concurrent loops until `until()` or a loop's first error.

    Returns the policy versions answered (with counts) and the errors.
    """
    versions: Counter[str] = Counter()
    errors: list[grpc.StatusCode] = []

    async def loop(stub: pdp_pb2_grpc.PolicyDecisionServiceStub, offset: int) -> None:
        i = offset
        while not until():
            try:
                response = await stub.Evaluate(requests[i % len(requests)], timeout=10)
                versions[response.policy_version] += 1
            except grpc.aio.AioRpcError as error:
                errors.append(error.code())
                return
            i += 1

    async with grpc.aio.insecure_channel(address) as ch:
        stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
        await asyncio.gather(*(loop(stub, n) for n in range(4)))
    return versions, errors


def test_configmap_update_reloads_and_a_bad_one_keeps_the_old_set_with_no_failed_call(
    tmp_path: Path, policy_dir: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """Under load: a good update reloads, a bad one keeps the old version; no call fails."""
    volume = ConfigMapVolume(tmp_path / "volume")
    files = {p.name: p.read_text("utf-8") for p in policy_dir.iterdir()}
    volume.publish(files)
    changed = json.loads(files["policies.json"])
    changed[0]["displayName"] = "Require MFA for everyone"
    good = {**files, "policies.json": json.dumps(changed)}
    bad = {**good, "broken.json": '{"id": "x", "displayName": "X", "state": "sometimes"}'}
    requests = list(requests_of(sign_ins).values())

    with PdpProcess(volume.root, "--reload-interval", "0.1") as pdp:
        pdp.wait_ready()
        first = pdp.wait_for("policy_set_loaded", reason="start")["policy_version"]
        steps: list[str] = []

        def script() -> bool:  # runs between calls; True once the scenario is over
            metrics_ready = bool(steps) and steps[-1] == "bad"
            if not steps:
                steps.append("good")
                volume.publish(good)
            elif steps[-1] == "good" and any(pdp.matching("policy_set_loaded", reason="changed")):
                steps.append("bad")
                volume.publish(bad)
            elif metrics_ready and any(pdp.matching("policy_reload_failed")):
                steps.append("done")
                deadline.append(time.monotonic() + 0.3)  # keep calling a little after
            return bool(deadline) and time.monotonic() > deadline[0]

        deadline: list[float] = []
        started = time.monotonic()
        versions, errors = asyncio.run(
            drive(pdp.address, requests, lambda: script() or time.monotonic() - started > 30)
        )
        assert steps == ["good", "bad", "done"]
        second = pdp.wait_for("policy_set_loaded", reason="changed")["policy_version"]
        assert errors == []
        assert set(versions) == {first, second}
        failure = pdp.wait_for("policy_reload_failed")
        assert failure["policy_version"] == second
        diagnostics = list(pdp.matching("policy_diagnostic", file="broken.json"))
        assert "$.state" in [d["path"] for d in diagnostics]
        errors_logged = [d for d in pdp.matching("policy_diagnostic") if d["level"] == "error"]
        assert len(errors_logged) == failure["errors"] > 0  # one record per diagnostic
        m = pdp.metrics()
        assert m.value("pdp_policy_reloads_total", outcome="success") == 1
        assert m.value("pdp_policy_reloads_total", outcome="failure") == 1
        assert m.labels("pdp_policy_set_info") == [{"version": second}]
        with grpc.insecure_channel(pdp.address) as ch:
            stub = pdp_pb2_grpc.PolicyDecisionServiceStub(ch)
            assert stub.Evaluate(requests[0], timeout=10).policy_version == second
        assert pdp.stop() == 0


def test_sigterm_under_load_finishes_calls_in_flight_and_writes_every_audit_record(
    policy_dir: Path, tmp_path: Path, sign_ins: dict[str, dict[str, Any]]
) -> None:
    """SIGTERM under load: taken calls finish, exit 0, one audit line per answered call."""
    audit = tmp_path / "audit.jsonl"
    requests = list(requests_of(sign_ins).values())
    with PdpProcess(policy_dir, "--audit-log", str(audit), "--grace", "5") as pdp:
        pdp.wait_ready()
        started = time.monotonic()
        signalled: list[bool] = []

        def until() -> bool:
            if not signalled and time.monotonic() - started > 0.7:
                signalled.append(True)
                pdp.signal(signal.SIGTERM)
            return False

        versions, errors = asyncio.run(drive(pdp.address, requests, until))
        assert pdp.process.wait(timeout=20) == 0
        answered = sum(versions.values())
        assert answered > 100
        # Refused, never started: UNAVAILABLE, or CANCELLED when it raced the stop in gRPC.
        assert set(errors) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}
        lines = audit.read_text("utf-8").splitlines()
        assert len(lines) == answered
        assert all(json.loads(line)["status"] == {"errorCode": 0} for line in lines)
        pdp.stop()
        stopped = pdp.wait_for("stopped")
        assert stopped["decisions"] == answered
