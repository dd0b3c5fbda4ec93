"""Cerbos, a policy decision point in Go, as pdp's peer: install, API, request mapping, server.

- Install: the npm package @cerbos/cerbos-linux-x64 (the release binary, Apache-2.0) into
  the benchmark cache ($XDG_CACHE_HOME/pdp-bench/cerbos/VERSION), only when asked
  (`install()`, the peer script's --install); nothing is fetched on import.
- API: `cerbos_api.proto`, a subset of Cerbos's own definitions, compiled when first
  needed with grpcio-tools' protoc into message classes (no generated code is committed).
- Mapping: one EvaluateRequest becomes one CheckResources call on the policy in
  `cerbos_policies/`: the principal is the user or service principal with the sign-in's
  context as attributes, the resource the target application, three actions: the
  effects of `signIn` and `signInWithoutChallenge` give allow, challenge or deny, and the
  outputs of `report` (one per Conditional Access policy that applies) give the
  requirements, the session controls and the per-policy results. `Answer` holds what is
  compared with pdp's EvaluateResponse.
- Server: `cerbos server` on 127.0.0.1 with the disk store on that folder, audit and
  telemetry off.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from pdp.v1 import pdp_pb2 as pb

VERSION = "0.55.0"
PACKAGE = "@cerbos/cerbos-linux-x64"
HERE = Path(__file__).resolve().parent
POLICIES = HERE / "cerbos_policies"
PROTO = HERE / "cerbos_api.proto"
METHOD = "/cerbos.svc.v1.CerbosService/CheckResources"
ACTIONS = ("signIn", "signInWithoutChallenge", "report")
KIND = "application"
ALLOW, DENY = 1, 2  # cerbos.effect.v1.Effect


def enum_word(enum: EnumTypeWrapper, value: int) -> str:
    """An enum value as one camelCase word, e.g. exchangeActiveSync.

    The Graph names for client app types and risk levels; "" for UNSPECIFIED. (Platforms
    and trust types come out close to, not exactly as, Graph spells them, e.g. macos and
    azureAd; the example's policies do not read them.)
    """
    name = enum.Name(value)
    prefix = enum.DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")
    first, *rest = name.removeprefix(prefix).lower().split("_")
    return "" if first == "unspecified" else first + "".join(w.capitalize() for w in rest)


def install_dir(cache: Path) -> Path:
    """Where this version of Cerbos is (or would be) installed under the benchmark cache."""
    return cache / "cerbos" / VERSION


def binary(cache: Path) -> Path | None:
    """The installed Cerbos binary, or None."""
    path = install_dir(cache) / "node_modules" / PACKAGE / PACKAGE.rsplit("/", 1)[1]
    return path if path.is_file() and os.access(path, os.X_OK) else None


def install(cache: Path) -> Path:
    """Install Cerbos from npm into the cache (once); its binary."""
    found = binary(cache)
    if found is not None:
        return found
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("installing Cerbos needs npm (apt-get install npm)")
    folder = install_dir(cache)
    folder.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(folder)]
    done = subprocess.run(
        [*command, f"{PACKAGE}@{VERSION}"], capture_output=True, text=True, check=False
    )
    found = binary(cache)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"npm install {PACKAGE}@{VERSION} failed:\n{done.stderr[-2000:]}")
    return found


@functools.cache
def messages() -> tuple[type[Message], type[Message]]:
    """CheckResourcesRequest and CheckResourcesResponse, built from `cerbos_api.proto`."""
    try:
        from grpc_tools import protoc  # noqa: PLC0415 - dev extra, only needed here
    except ImportError as exc:
        raise SystemExit("the Cerbos client needs grpcio-tools: pip install -e '.[dev]'") from exc
    include = importlib.resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory(prefix="pdp-cerbos-proto-") as folder:
        out = Path(folder) / "cerbos.pb"
        code = protoc.main(
            [
                "protoc",
                f"-I{PROTO.parent}",
                f"-I{include}",
                f"--descriptor_set_out={out}",
                "--include_imports",
                str(PROTO),
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc could not compile {PROTO}")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    request, response = (
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"cerbos.svc.v1.{name}"))
        for name in ("CheckResourcesRequest", "CheckResourcesResponse")
    )
    return request, response


def principal_of(request: pb.EvaluateRequest) -> dict[str, Any]:
    """The sign-in as a Cerbos principal (proto3 JSON): who, with the context as attributes."""
    subject, device = request.subject, request.device
    attr: dict[str, Any] = {
        "groups": list(subject.group_ids),
        "roles": list(subject.role_ids),
        "guest": subject.guest,
        "ip": request.network.ip_address,
        "time": json_format.MessageToJson(request.time).strip('"'),
        "clientAppType": enum_word(pb.ClientAppType, request.client_app_type),
        "methods": list(request.authentication.methods),
        "compliant": device.compliant,
        "platform": enum_word(pb.Platform, device.platform),
        "trustType": enum_word(pb.TrustType, device.trust_type),
        "signInRisk": enum_word(pb.RiskLevel, request.risk.sign_in) or "none",
        "userRisk": enum_word(pb.RiskLevel, request.risk.user) or "none",
    }
    if request.authentication.HasField("authenticated_at"):
        stamp = json_format.MessageToJson(request.authentication.authenticated_at)
        attr["authenticatedAt"] = stamp.strip('"')
    if subject.service_principal_id:
        return {"id": subject.service_principal_id, "roles": ["servicePrincipal"], "attr": attr}
    return {"id": subject.user_id, "roles": ["user"], "attr": attr}


def check_request(request: pb.EvaluateRequest) -> Message:
    """The CheckResources request that asks Cerbos what pdp is asked by `request`."""
    request_class, _ = messages()
    data = {
        "requestId": request.request_id,
        "principal": principal_of(request),
        "resources": [
            {
                "actions": list(ACTIONS),
                "resource": {"kind": KIND, "id": request.target.application_id},
            }
        ],
    }
    return json_format.ParseDict(data, request_class())


def decision_of(effects: Mapping[str, int]) -> str:
    """Map to pdp's decision name the effects of the two deciding actions."""
    if effects.get("signIn") != ALLOW:
        return "DECISION_DENY"
    if effects.get("signInWithoutChallenge") != ALLOW:
        return "DECISION_CHALLENGE"
    return "DECISION_ALLOW"


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """What pdp and Cerbos must agree on for one sign-in."""

    decision: str  # DECISION_ALLOW, DECISION_CHALLENGE, DECISION_DENY
    requirements: frozenset[tuple[str, frozenset[str]]]  # (control, policy ids), unmet
    session: tuple[int | None, str]  # sign-in frequency (s), persistent browser
    policies: frozenset[tuple[str, bool]]  # enforced policies that applied: (id, satisfied)

    def differences(self, other: Answer) -> list[str]:
        """The fields in which `other` differs, each as `name: mine != other's`."""
        return [
            f"{field.name}: {getattr(self, field.name)} != {getattr(other, field.name)}"
            for field in dataclasses.fields(self)
            if getattr(self, field.name) != getattr(other, field.name)
        ]


REPORT_ONLY = pb.POLICY_STATE_ENABLED_FOR_REPORTING_BUT_NOT_ENFORCED


def pdp_answer(response: pb.EvaluateResponse) -> Answer:
    """Turn pdp's EvaluateResponse into an Answer (report-only policies left out, as in Cerbos)."""
    session = response.session
    frequency = None
    if session.sign_in_frequency.HasField("period"):
        frequency = session.sign_in_frequency.period.seconds
    browser = pb.PersistentBrowser.Name(session.persistent_browser)
    return Answer(
        pb.Decision.Name(response.decision),
        frozenset(
            (control, frozenset(r.policy_ids))
            for r in response.requirements
            for control in r.any_of
        ),
        (frequency, browser.removeprefix("PERSISTENT_BROWSER_").lower().replace("unspecified", "")),
        frozenset(
            (p.id, p.result == pb.POLICY_RESULT_SUCCESS)
            for p in response.policies
            if p.state != REPORT_ONLY
        ),
    )


def cerbos_answer(result: Message) -> Answer:
    """One CheckResources result entry as an Answer: effects, then the `report` outputs.

    The outputs are merged the way pdp merges per-policy outcomes: a block leaves no
    requirements; otherwise each unmet control (a lapsed sign-in frequency is
    `reauthentication`) is one requirement with the policies that ask for it; the session
    gets the shortest frequency, and `never` beats `always` for the persistent browser.
    """
    reports = [
        json_format.MessageToDict(entry.val) for entry in result.outputs if entry.action == "report"
    ]
    blocked = any(report.get("grant") == "block" for report in reports)
    unmet: dict[str, set[str]] = {}
    for report in reports:
        if report["met"] or blocked:
            continue
        control = report.get("grant", "reauthentication")
        unmet.setdefault(control, set()).add(report["policy"])
    frequencies = [int(r["signInFrequencyS"]) for r in reports if "signInFrequencyS" in r]
    browsers = {r["persistentBrowser"] for r in reports if "persistentBrowser" in r}
    browser = "never" if "never" in browsers else "always" if browsers else ""
    return Answer(
        decision_of(dict(result.actions)),
        frozenset((control, frozenset(ids)) for control, ids in unmet.items()),
        (min(frequencies, default=None), browser),
        frozenset((report["policy"], bool(report["met"])) for report in reports),
    )


def server_command(cerbos: Path, grpc_port: int, http_port: int) -> list[str]:
    """`cerbos server` on 127.0.0.1:grpc_port with the policies, no audit, no telemetry."""
    settings = {
        "server.grpcListenAddr": f"127.0.0.1:{grpc_port}",
        "server.httpListenAddr": f"127.0.0.1:{http_port}",
        "storage.driver": "disk",
        "storage.disk.directory": str(POLICIES),
        "storage.disk.watchForChanges": "false",
        "audit.enabled": "false",
        "telemetry.disabled": "true",
    }
    command = [str(cerbos), "server", "--log-level=warn", "--debug-listen-addr=127.0.0.1:0"]
    return command + [f"--set={name}={value}" for name, value in settings.items()]


SERVER_ENV = {**os.environ, "CERBOS_NO_TELEMETRY": "1"}


def compile_policies(cerbos: Path) -> str:
    """`cerbos compile` on the policies: its output; exits naming the problem when invalid."""
    done = subprocess.run(
        [str(cerbos), "compile", str(POLICIES)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"cerbos compile {POLICIES} failed:\n{done.stdout}{done.stderr}")
    return done.stdout
