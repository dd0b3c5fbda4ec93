"""The real server the fuzzers call, and the properties every answer must have.

`FuzzServer` runs `pdp serve` as a subprocess on the ai-workspace example with its
gateway config (so Evaluate and Envoy's Check are both served) and an audit log, and
sends raw bytes to either method. The properties:

- Evaluate answers OK, INVALID_ARGUMENT or (past the message size limit) RESOURCE_EXHAUSTED:
  never UNKNOWN or INTERNAL; an OK answer is only for bytes that are an EvaluateRequest,
  and it never allows a sign-in that names no subject (a user or service principal, after
  trimming) or no target (an application, a user action or an authentication context).
- Check never answers an RPC error to bytes that reach pdp's handler (any up to grpc's
  own message cap: pdp decodes them itself), never allows bytes that are no CheckRequest,
  and never allows a request drawn without a subject or a target.
- `pdp evaluate --request -` (in-process) exits 0 with JSON or 2 with one message, never a
  traceback, and never allows a request without subject or target (`check_cli`).
- The server survives: `assert_healthy` (after a run) finds it alive, SERVING, deciding a
  known request, with no bug logged (`evaluate_failed`, `check_failed`) and an audit log
  of strict JSON lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import threading
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from e2e.pdp_process import stop_process
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pdp.cli import main as pdp_main
from pdp.gateway.envoy import auth
from pdp.limits import message_cap
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "examples" / "ai-workspace"
GATEWAY_CONFIG = ROOT / "examples" / "gateway-config.yaml"
KNOWN_REQUEST = ROOT / "examples" / "requests" / "engineer-prod-from-office.json"
EVALUATE = "/pdp.v1.PolicyDecisionService/Evaluate"
CHECK = "/envoy.service.auth.v3.Authorization/Check"
MAX_MESSAGE = 1024 * 1024  # pdp serve's default --max-message-bytes
GRPC_MESSAGE_CAP = message_cap(MAX_MESSAGE)  # grpc's own limit, above pdp's
NEVER = frozenset({grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
EVALUATE_CODES = frozenset(
    {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
BUG_EVENTS = ("evaluate_failed", "check_failed", "audit_record_failed", "audit_writer_failed")


class Defect(AssertionError):  # noqa: N818 - the fuzzers' word for what they find
    """An answer that breaks one of the properties."""


class FuzzServer:
    """`pdp serve` on the example policies and gateway config, called with raw bytes."""

    def __init__(self, folder: Path) -> None:
        self.audit = folder / "audit.jsonl"
        command = [sys.executable, "-m", "pdp", "serve", "--policies", str(POLICIES)]
        command += ["--gateway-config", str(GATEWAY_CONFIG), "--audit-log", str(self.audit)]
        command += ["--listen", "127.0.0.1:0", "--metrics-port", "0", "--reload-interval", "0"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.stderr: list[str] = []
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr.start()
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("listening on "):
            self.close()
            raise RuntimeError(f"pdp serve did not start: {line!r} {''.join(self.stderr)}")
        self.address = line.split()[-1]
        self.channel = grpc.insecure_channel(self.address)
        self._evaluate = self.channel.unary_unary(EVALUATE)
        self._check = self.channel.unary_unary(CHECK)
        self.calls = 0

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def call(self, method: str, data: bytes) -> tuple[grpc.StatusCode, bytes]:
        """Send `data` to `method`; the status code and the response bytes (b"" on error)."""
        self.calls += 1
        stub = self._evaluate if method == EVALUATE else self._check
        try:
            response: bytes = stub(data, timeout=30)
        except grpc.RpcError as error:
            return error.code(), b""
        return grpc.StatusCode.OK, response

    def assert_healthy(self) -> None:
        """Alive, SERVING, deciding a known request; no bug logged; a strict JSON audit log."""
        if self.process.poll() is not None:
            raise Defect(f"pdp serve exited ({self.process.returncode}): {self.tail()}")
        health = health_pb2_grpc.HealthStub(self.channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        if status != health_pb2.HealthCheckResponse.SERVING:
            raise Defect(f"health is {status} after the run")
        known = json_format.Parse(KNOWN_REQUEST.read_text("utf-8"), pb.EvaluateRequest())
        code, _ = self.call(EVALUATE, known.SerializeToString())
        if code is not grpc.StatusCode.OK:
            raise Defect(f"a known request got {code} after the run")
        bugs = [line for line in self.stderr if any(event in line for event in BUG_EVENTS)]
        if bugs:
            raise Defect(f"bugs logged: {bugs[:3]}")
        time.sleep(0.1)  # the audit writer wakes every few milliseconds
        for number, line in enumerate(self.audit.read_text("utf-8").splitlines(), 1):
            try:
                json.loads(line, parse_constant=_not_json)
            except ValueError as exc:
                raise Defect(f"audit line {number} is not JSON ({exc}): {line[:200]}") from None

    def tail(self) -> str:
        """The last lines pdp logged."""
        return "".join(self.stderr[-20:])

    def close(self) -> None:
        """Stop the server (SIGTERM, then kill)."""
        with contextlib.suppress(AttributeError):
            self.channel.close()
        stop_process(self.process, grace_s=20)
        self._stderr.join(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> FuzzServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _not_json(name: str) -> Any:
    raise ValueError(f"bare {name}")


def names_subject(request: pb.EvaluateRequest) -> bool:
    """Whether the request names a user or a service principal (after trimming)."""
    subject = request.subject
    return bool(subject.user_id.strip() or subject.service_principal_id.strip())


def names_target(request: pb.EvaluateRequest) -> bool:
    """Whether it names an application, a user action or an authentication context."""
    target = request.target
    return bool(
        target.application_id.strip()
        or target.user_action.strip()
        or any(c.strip() for c in target.authentication_contexts)
    )


def check_evaluate(server: FuzzServer, data: bytes) -> None:
    """Send EvaluateRequest bytes; raise Defect when the answer breaks a property."""
    code, body = server.call(EVALUATE, data)
    if code in NEVER or code not in EVALUATE_CODES:
        raise Defect(f"Evaluate answered {code} to {len(data)} bytes: {data[:120]!r}")
    if code is not grpc.StatusCode.OK:
        return
    try:
        request = pb.EvaluateRequest.FromString(data)
    except Exception as exc:  # noqa: BLE001 - the point: pdp answered what does not parse
        raise Defect(f"Evaluate answered OK to bytes that do not parse: {exc}") from None
    answer = pb.EvaluateResponse.FromString(body)
    if answer.decision == pb.DECISION_ALLOW and not (
        names_subject(request) and names_target(request)
    ):
        raise Defect(f"Evaluate allowed a request without subject or target: {request}")


def check_check(server: FuzzServer, data: bytes, complete: bool | None) -> None:
    """Send CheckRequest bytes (`complete`: drawn with a subject and a target, if known)."""
    code, body = server.call(CHECK, data)
    if code is not grpc.StatusCode.OK:
        if len(data) <= GRPC_MESSAGE_CAP:  # it reached pdp's handler: a denial, never this
            raise Defect(f"Check answered an RPC error ({code}) to {len(data)} bytes: {data!r}")
        if code in NEVER:
            raise Defect(f"Check answered {code} to {len(data)} bytes")
        return
    answer = auth.CheckResponse.FromString(body)
    if answer.status.code != 0:
        return
    if not is_check_request(data):
        raise Defect(f"Check allowed bytes that are no CheckRequest: {data!r}")
    if complete is False:
        request = auth.CheckRequest.FromString(data)
        raise Defect(f"Check allowed a request without subject or target: {request}")


def is_check_request(data: bytes) -> bool:
    """Whether `data` decodes as a CheckRequest."""
    try:
        auth.CheckRequest.FromString(data)
    except Exception:  # noqa: BLE001 - any decode failure
        return False
    return True


def check_cli(text: str) -> None:
    """Run `pdp evaluate --request -` on `text` in-process; raise Defect when it misbehaves.

    Exit 0 with a JSON answer (never an allow without subject and target) or 2 with one
    message on stderr and nothing on stdout; never a traceback, never another exit code.
    """
    out, err = io.StringIO(), io.StringIO()
    stdin, sys.stdin = sys.stdin, io.StringIO(text)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = pdp_main(["evaluate", "--policies", str(POLICIES), "--request", "-"])
    finally:
        sys.stdin = stdin
    if code not in (0, 2) or "Traceback" in err.getvalue():
        raise Defect(f"pdp evaluate exited {code}: {err.getvalue()}")
    if code == 2:
        if out.getvalue() or not err.getvalue().startswith("pdp evaluate: "):
            raise Defect(f"a refusal wrote stdout {out.getvalue()!r}, stderr {err.getvalue()!r}")
        return
    answer = json.loads(out.getvalue())
    if answer["decision"] == "DECISION_ALLOW":
        request = json_format.Parse(text, pb.EvaluateRequest())
        if not (names_subject(request) and names_target(request)):
            raise Defect(f"pdp evaluate allowed a request without subject or target: {text}")
