"""Check beside Evaluate: what the Envoy mapping adds to a decision, per call.

Run from the repository root:

    python benchmarks/bench_gateway.py [--iterations N] [--concurrency C]

One in-process grpc.aio server on 127.0.0.1 serves both services over the ai-workspace
example (`examples/ai-workspace`, `examples/gateway-config.yaml`). Three scenarios (allow,
challenge, deny) are sent as Envoy CheckRequests (jwt_authn metadata, XFF, posture headers)
and as the equivalent EvaluateRequests, interleaved in blocks so both see the same machine.
Reported: per-call latency over one channel (sequential), throughput with C calls in
flight, and the same split without gRPC: `Decider.decide` alone versus CheckRequest ->
translate -> decide -> CheckResponse. Goal: the mapping adds at most 15 % per call.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from pdp.decide import Decider
from pdp.gateway import check_in
from pdp.gateway.check_out import CheckWriter
from pdp.gateway.config import GatewayConfig, load_gateway_config
from pdp.gateway.draft import SignInDraft
from pdp.gateway.envoy import auth, auth_grpc
from pdp.gateway.identity import read_token
from pdp.gateway.service import add_ext_authz
from pdp.gateway.token_memo import TokenMemo
from pdp.observability.decisions import DecisionObserver
from pdp.policy_store import PolicyStore
from pdp.server.convert_in import to_context
from pdp.server.service import PolicyDecisionService
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.15
BLOCK = 50  # calls of one kind before switching to the other
TENANT = "7c0e5a1b-1111-4a2b-8c3d-000000000001"
ADA = "0a0da000-0000-4000-8000-00000000ada1"
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
APPS = {
    "dev.workspace.contoso.example": "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01",
    "workspace.contoso.example": "8a4f0c1e-2d3b-4c5a-9e7f-00000000f001",
}
# (host, client IP, amr): allow (prod from the office), challenge (dev from home, password
# only), deny (prod from home).
SCENARIOS = (
    ("workspace.contoso.example", "203.0.113.25", ["pwd", "mfa"]),
    ("dev.workspace.contoso.example", "192.0.2.200", ["pwd"]),
    ("workspace.contoso.example", "192.0.2.200", ["pwd", "mfa"]),
)
AMR = {"pwd": "password", "mfa": None}


def check_request(host: str, client: str, amr: list[str]) -> Any:
    """A CheckRequest as Envoy sends it for Ada behind the example's load balancer."""
    now = int(time.time())
    claims = {
        "aud": "api://contoso-workspace",
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "iat": now - 60,
        "exp": now + 3540,
        "tid": TENANT,
        "oid": ADA,
        "sub": "m7bR2n-ada-pairwise-subject",
        "groups": [ENGINEERS],
        "amr": amr,
        "auth_time": now - 1800,
        "scp": "Workspace.ReadWrite",
    }
    headers = {
        ":authority": host,
        ":method": "GET",
        ":path": "/notebooks/42",
        ":scheme": "https",
        "user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
        "cookie": "workspace_session=7b1d",
        "authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln",
        "accept": "text/html,application/xhtml+xml",
        "x-forwarded-for": f"{client},10.0.0.5",  # the LB's entry, then Envoy's for the LB
        "x-envoy-external-address": client,
        "x-forwarded-proto": "https",
        "x-request-id": str(uuid.uuid4()),
        "x-device-id": "laptop-0042",
        "x-device-compliant": "true",
        "x-device-trust-type": "AzureAD",
    }
    data = {
        "attributes": {
            "source": {"address": {"socketAddress": {"address": "10.0.0.5", "portValue": 51234}}},
            "destination": {
                "address": {"socketAddress": {"address": "10.0.1.7", "portValue": 8080}}
            },
            "request": {
                "http": {
                    "id": "11702375419208421390",
                    "method": "GET",
                    "headers": headers,
                    "path": "/notebooks/42",
                    "host": host,
                    "scheme": "https",
                    "protocol": "HTTP/1.1",
                }
            },
            "metadataContext": {
                "filterMetadata": {"envoy.filters.http.jwt_authn": {"jwt_payload": claims}}
            },
        }
    }
    return json_format.ParseDict(data, auth.CheckRequest())


def evaluate_request(host: str, client: str, amr: list[str]) -> pb.EvaluateRequest:
    """The EvaluateRequest a gateway calling pdp directly would send for the same request."""
    return json_format.ParseDict(
        {
            "requestId": str(uuid.uuid4()),
            "subject": {"userId": ADA, "groupIds": [ENGINEERS]},
            "target": {"applicationId": APPS[host]},
            "network": {"ipAddress": client},
            "device": {
                "deviceId": "laptop-0042",
                "platform": "PLATFORM_MACOS",
                "compliant": True,
                "trustType": "TRUST_TYPE_AZURE_AD",
            },
            "clientAppType": "CLIENT_APP_TYPE_BROWSER",
            "authentication": {
                "methods": [AMR[a] for a in amr if AMR[a]],
                "satisfiedControls": ["mfa"] if "mfa" in amr else [],
                "authenticatedAt": time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800)
                ),
            },
        },
        pb.EvaluateRequest(),
    )


def summary(samples_ns: Sequence[int]) -> tuple[float, float, float, float]:
    """p50, p90, p99 and mean in µs."""
    ordered = sorted(samples_ns)
    n = len(ordered)
    pick = [ordered[min(n - 1, int(q * n))] / 1e3 for q in (0.5, 0.9, 0.99)]
    return pick[0], pick[1], pick[2], statistics.fmean(ordered) / 1e3


async def timed(calls: Sequence[Callable[[], Awaitable[Any]]], iterations: int) -> list[int]:
    """Per-call latencies of `iterations` sequential calls, cycling through `calls`."""
    out = []
    for i in range(iterations):
        call = calls[i % len(calls)]
        start = time.perf_counter_ns()
        await call()
        out.append(time.perf_counter_ns() - start)
    return out


async def throughput(
    calls: Sequence[Callable[[], Awaitable[Any]]], total: int, width: int
) -> float:
    """Calls per second with `width` calls in flight."""
    start = time.perf_counter()
    for first in range(0, total, width):
        await asyncio.gather(*(calls[(first + i) % len(calls)]() for i in range(width)))
    return total / (time.perf_counter() - start)


async def interleaved(
    check: Sequence[Callable[[], Awaitable[Any]]],
    evaluate: Sequence[Callable[[], Awaitable[Any]]],
    iterations: int,
) -> tuple[list[int], list[int]]:
    """Latencies of both kinds, alternating in blocks of BLOCK calls."""
    check_ns: list[int] = []
    evaluate_ns: list[int] = []
    while len(check_ns) < iterations:
        evaluate_ns += await timed(evaluate, BLOCK)
        check_ns += await timed(check, BLOCK)
    return check_ns, evaluate_ns


async def over_grpc(
    config: GatewayConfig, decider: Decider, args: argparse.Namespace
) -> dict[str, Any]:
    """Sequential latency and concurrent throughput of both RPCs on one server."""
    server = grpc.aio.server()
    observer = DecisionObserver()
    PolicyDecisionService(decider, observer).add_to_server(server)
    add_ext_authz(server, decider, config, observer)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            check_stub = auth_grpc.AuthorizationStub(channel)
            evaluate_stub = pdp_pb2_grpc.PolicyDecisionServiceStub(channel)
            checks = [check_request(*s) for s in SCENARIOS]
            evaluates = [evaluate_request(*s) for s in SCENARIOS]
            check_calls = [lambda r=r: check_stub.Check(r) for r in checks]
            evaluate_calls = [lambda r=r: evaluate_stub.Evaluate(r) for r in evaluates]
            for r, e in zip(checks, evaluates, strict=True):  # same decisions, or the race is moot
                verdict = (await check_stub.Check(r)).dynamic_metadata["pdp_decision"]
                assert (
                    verdict
                    == pb.Decision.Name((await evaluate_stub.Evaluate(e)).decision)[9:].lower()
                )
            await interleaved(check_calls, evaluate_calls, min(1000, args.iterations))  # warm-up
            gc.disable()
            check_ns, evaluate_ns = await interleaved(check_calls, evaluate_calls, args.iterations)
            gc.enable()
            total = max(args.iterations, args.concurrency * 20)
            rates = {}
            for name, calls in (("Evaluate", evaluate_calls), ("Check", check_calls)):
                rates[name] = await throughput(calls, total, args.concurrency)
            return {"Evaluate": evaluate_ns, "Check": check_ns, "rates": rates}
    finally:
        await server.stop(grace=None)


async def in_process(
    config: GatewayConfig, decider: Decider, iterations: int
) -> dict[str, list[int]]:
    """The same split without gRPC: decide alone, and translate + decide + respond."""
    checks = [check_request(*s) for s in SCENARIOS]
    contexts = [to_context(evaluate_request(*s), time.time()) for s in SCENARIOS]
    acr = config.step_up.acr_values

    async def decide_only(i: int) -> None:
        await decider.decide(contexts[i % len(contexts)])

    tokens, writer = TokenMemo(read_token), CheckWriter(acr)  # as the servicer keeps them

    async def check_path(i: int) -> None:
        check = checks[i % len(checks)]
        draft = SignInDraft("", time.time())
        ctx, route_contexts = check_in.to_context(check, config, draft, tokens)
        decision = await decider.decide(ctx)
        writer.write(decision, draft.request_id, route_contexts)

    out: dict[str, list[int]] = {"decide": [], "translate+decide+respond": []}
    for fn in (decide_only, check_path):  # warm-up
        for i in range(min(500, iterations)):
            await fn(i)
    gc.disable()
    for start in range(0, iterations, BLOCK):
        for name, fn in (("decide", decide_only), ("translate+decide+respond", check_path)):
            for i in range(start, start + BLOCK):
                t0 = time.perf_counter_ns()
                await fn(i)
                out[name].append(time.perf_counter_ns() - t0)
    gc.enable()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run both measurements and print the tables; exit 0 whatever the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    config = load_gateway_config(ROOT / "examples" / "gateway-config.yaml")
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    decider = Decider(store)
    grpc_figures = asyncio.run(over_grpc(config, decider, args))
    local = asyncio.run(in_process(config, decider, args.iterations))

    print(
        f"# Check vs Evaluate ({platform.python_implementation()} {platform.python_version()}, "
        f"grpcio {grpc.__version__}, {sys.platform}, {args.iterations} calls each)\n"
    )
    print("| path | p50 µs | p90 µs | p99 µs | mean µs |")
    print("|---|---|---|---|---|")
    rows = {
        "gRPC Evaluate": grpc_figures["Evaluate"],
        "gRPC Check": grpc_figures["Check"],
        "in-process decide": local["decide"],
        "in-process translate+decide+respond": local["translate+decide+respond"],
    }
    for name, samples in rows.items():
        p50, p90, p99, mean = summary(samples)
        print(f"| {name} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {mean:.1f} |")
    rates = grpc_figures["rates"]
    print(
        f"\nThroughput with {args.concurrency} calls in flight: "
        f"Evaluate {rates['Evaluate']:.0f}/s, Check {rates['Check']:.0f}/s"
    )
    grpc_overhead = summary(rows["gRPC Check"])[0] / summary(rows["gRPC Evaluate"])[0] - 1
    local_added = (
        summary(rows["in-process translate+decide+respond"])[0]
        - summary(rows["in-process decide"])[0]
    )
    verdict = "met" if grpc_overhead <= GOAL else "NOT met"
    print(f"Mapping cost per call (in-process p50 difference): {local_added:.1f} µs")
    print(
        f"Check over Evaluate per call (gRPC p50): {grpc_overhead:+.1%} "
        f"(goal: at most +{GOAL:.0%}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
