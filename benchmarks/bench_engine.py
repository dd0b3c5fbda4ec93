"""Per-call latency of the decision engine on synthetic policy sets of realistic shape.

Run from the repository root:

    python benchmarks/bench_engine.py [--iterations N] [--seed S] [--sizes 10,195,2000]

For each size a policy set is generated (`synthetic.py`), written as Graph JSON, read back
through `load_policy_set` and compiled. Each `evaluate(ctx, compiled)` call is timed alone
with `time.perf_counter_ns`, cycling through one pool of requests, after a warm-up on other
requests and with the garbage collector off; the same again with `explain=True`, and through
the gRPC API's path (convert in, `Decider.decide_without_risk`, convert out). Figures are per call,
in µs. Every row starts from a freshly compiled set: the engine memoises per set, and a pool
smaller than --iterations repeats requests (memo hits); `--requests N` with N >= iterations
times only requests the engine has not seen.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import synthetic

from pdp.context import SignInContext
from pdp.decide import Decider
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet, compile_policy_set
from pdp.policy.load import load_policy_set
from pdp.policy_store import PolicyStore
from pdp.server.context_memo import ContextMemo, map_request
from pdp.server.convert_in import to_context
from pdp.server.convert_out import ResponseWriter, to_response
from pdp.v1 import pdp_pb2 as pb

NOT_APPLIED = frozenset({"notApplied", "reportOnlyNotApplied", "notEnabled"})
HEADER = (
    "| size | policies active | mode | p50 µs | p90 µs | p99 µs | mean µs "
    "| applied per request (avg) |"
)
RATIO_GOAL = 3.0
P50_GOAL_US = 20.0


@dataclasses.dataclass(frozen=True, slots=True)
class Row:
    """One line of the results table."""

    size: int
    active: int
    mode: str
    samples_ns: list[int]
    applied: float | None

    def percentile(self, q: float) -> float:
        """The nearest-rank `q` quantile in µs."""
        ordered = sorted(self.samples_ns)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] / 1000

    def render(self) -> str:
        """The row as a Markdown table line."""
        mean = sum(self.samples_ns) / len(self.samples_ns) / 1000
        applied = "n/a" if self.applied is None else f"{self.applied:.1f}"
        figures = " | ".join(f"{v:.1f}" for v in (*map(self.percentile, (0.5, 0.9, 0.99)), mean))
        return f"| {self.size} | {self.active} | {self.mode} | {figures} | {applied} |"


def time_calls(
    call: Callable[[Any, Any], object],
    inputs: Sequence[tuple[Any, Any]],
    iterations: int,
    warm_up: Sequence[tuple[Any, Any]],
) -> list[int]:
    """Time `call(a, b)` once per iteration, cycling through `inputs`; ns per call.

    A pass over `warm_up` (other requests than `inputs`, so that no memo the engine keeps
    is primed with the timed requests) comes first; the garbage collector is off while timing.
    """
    for a, b in warm_up:
        call(a, b)
    samples = [0] * iterations
    count = len(inputs)
    clock = time.perf_counter_ns
    gc.collect()
    gc.disable()
    try:
        for i in range(iterations):
            a, b = inputs[i % count]
            start = clock()
            call(a, b)
            samples[i] = clock() - start
    finally:
        gc.enable()
    return samples


def applied_per_request(pool: Sequence[SignInContext], compiled: CompiledPolicySet) -> float:
    """Mean number of policies that applied (report-only included), over the pool."""
    total = sum(
        sum(p.result not in NOT_APPLIED for p in evaluate(ctx, compiled).policies) for ctx in pool
    )
    return total / len(pool)


def verdict_mix(pool: Sequence[SignInContext], compiled: CompiledPolicySet) -> str:
    """The share of each verdict over the pool, e.g. ``allow 3%, deny 97%``."""
    counts = Counter(str(evaluate(ctx, compiled).verdict) for ctx in pool)
    return ", ".join(f"{v} {100 * n / len(pool):.0f}%" for v, n in sorted(counts.items()))


def bench_size(
    size: int,
    pools: tuple[list[SignInContext], list[SignInContext]],
    seed: int,
    iterations: int,
    tmp: Path,
) -> tuple[list[Row], str]:
    """Generate, load, compile and time one policy set size; its rows and a summary line.

    `pools` holds the timed requests and the warm-up requests. Each row gets its own freshly
    compiled set, so that no row inherits what the engine memoised during another.
    """
    pool, warm_up = pools
    folder = tmp / f"policies-{size}"
    synthetic.write_policy_set(folder, synthetic.make_universe(seed), size, seed)
    start = time.perf_counter()
    policy_set, _ = load_policy_set(folder)
    loaded = time.perf_counter()
    compiled = compile_policy_set(policy_set)
    done = time.perf_counter()
    active = len(compiled.policies)
    rows: list[Row] = []
    for mode, explain in (("evaluate", False), ("evaluate explain", True)):
        fresh = compile_policy_set(policy_set)
        inputs, warm = (
            [(dataclasses.replace(ctx, explain=explain), fresh) for ctx in requests]
            for requests in (pool, warm_up)
        )
        rows.append(Row(size, active, mode, time_calls(evaluate, inputs, iterations, warm), None))
    proto_row, note = _proto_row(size, active, folder, pools, iterations)
    wire_rows = _wire_rows(size, active, folder, pools, iterations)
    applied = applied_per_request(pool, compiled)
    explained = [dataclasses.replace(ctx, explain=True) for ctx in pool]
    if applied_per_request(explained, compiled) != applied:
        print(f"WARNING: size {size}: explain=True changes which policies apply", file=sys.stderr)
    rows = [dataclasses.replace(row, applied=applied) for row in rows]
    if proto_row is not None:
        rows.append(proto_row)
    rows += [dataclasses.replace(row, applied=applied) for row in wire_rows]
    summary = (
        f"  {size:>5} policies: {active} active, load {1000 * (loaded - start):.0f} ms, "
        f"compile {1000 * (done - loaded):.0f} ms, {len(compiled.ipv4.starts)} IPv4 + "
        f"{len(compiled.ipv6.starts)} IPv6 intervals, {len(compiled.group_keys)} groups named; "
        f"verdicts {verdict_mix(pool, compiled)}" + (f"\n        {note}" if note else "")
    )
    return rows, summary


def _proto_row(
    size: int,
    active: int,
    folder: Path,
    pools: tuple[list[SignInContext], list[SignInContext]],
    iterations: int,
) -> tuple[Row | None, str]:
    """Time the gRPC API's path without risk (convert in, evaluate, convert out) on `folder`."""
    pool, warm_up = pools
    store = PolicyStore()
    store.load(folder)
    decider = Decider(store)

    def proto_path(request: Any, now: float) -> Any:
        ctx = to_context(request, now)
        return to_response(decider.decide_without_risk(ctx), ctx)

    inputs, warm = (
        [(to_evaluate_request(ctx, pb), ctx.time) for ctx in requests]
        for requests in (pool, warm_up)
    )
    differ = sum(to_context(r, now) != ctx for (r, now), ctx in zip(inputs, pool, strict=True))
    note = f"WARNING: {differ} requests differ after proto round trip" if differ else ""
    samples = time_calls(proto_path, inputs, iterations, warm)
    responses = [proto_path(request, now) for request, now in inputs]
    applied = applied_in_responses(responses, pb)
    return Row(size, active, "proto->decision", samples, applied), note


def _wire_rows(
    size: int,
    active: int,
    folder: Path,
    pools: tuple[list[SignInContext], list[SignInContext]],
    iterations: int,
) -> list[Row]:
    """Time what Evaluate's handler does on bytes: map in, decide (no risk), write out.

    Twice: through the content memo (`ContextMemo`, warm: the pool's requests repeat, as a
    gateway's do) and without one (cold: every request mapped as if never seen).
    """
    pool, warm_up = pools
    store = PolicyStore()
    store.load(folder)
    decider = Decider(store)
    writer = ResponseWriter()
    inputs, warm = (
        [(to_evaluate_request(ctx, pb).SerializeToString(), ctx.time) for ctx in requests]
        for requests in (pool, warm_up)
    )
    rows = []
    for mode, memo in (("bytes->bytes, memo warm", ContextMemo()), ("bytes->bytes, cold", None)):
        mapped = map_request(memo)

        def wire_path(body: bytes, now: float, mapped: Any = mapped) -> bytes:
            ctx = mapped(body, now)
            return writer.write(decider.decide_without_risk(ctx), ctx)

        if memo is not None:  # the timed requests seen once, as a gateway's repeat
            for body, now in inputs:
                wire_path(body, now)
        rows.append(Row(size, active, mode, time_calls(wire_path, inputs, iterations, warm), None))
    return rows


# SignInContext spellings -> proto enum value names.
_PLATFORM = {"android": "ANDROID", "iOS": "IOS", "windows": "WINDOWS", "macOS": "MACOS"}
_PLATFORM |= {"windowsPhone": "WINDOWS_PHONE", "linux": "LINUX"}
_TRUST = {"AzureAD": "AZURE_AD", "ServerAD": "SERVER_AD", "Workplace": "WORKPLACE"}
_CLIENT_APP = {"browser": "BROWSER", "exchangeActiveSync": "EXCHANGE_ACTIVE_SYNC", "other": "OTHER"}
_CLIENT_APP["mobileAppsAndDesktopClients"] = "MOBILE_APPS_AND_DESKTOP_CLIENTS"
_FLOW = {"deviceCodeFlow": "DEVICE_CODE_FLOW", "authenticationTransfer": "AUTHENTICATION_TRANSFER"}
# Device filter properties the proto carries in attributes (the others have their own fields).
_ATTRIBUTES = {
    name.lower(): name
    for name in (
        "displayName",
        "manufacturer",
        "model",
        "operatingSystem",
        "operatingSystemVersion",
        "deviceOwnership",
        "enrollmentProfileName",
        "mdmAppId",
        "profileType",
        "physicalIds",
        "systemLabels",
        *(f"extensionAttribute{n}" for n in range(1, 16)),
    )
}


def to_evaluate_request(ctx: SignInContext, pb: Any) -> Any:
    """The EvaluateRequest a gateway would send for `ctx` (`pb`: the pdp_pb2 module)."""
    req = pb.EvaluateRequest(request_id=ctx.request_id, explain=ctx.explain)
    req.time.FromNanoseconds(round(ctx.time * 1e9))
    subject = req.subject
    subject.user_id = ctx.user_id
    subject.group_ids.extend(sorted(ctx.group_ids))
    subject.role_ids.extend(sorted(ctx.role_ids))
    subject.guest = ctx.guest
    subject.service_principal_id = ctx.service_principal_id
    if ctx.guest_type or ctx.home_tenant_id:
        subject.guest_type = ctx.guest_type
        subject.home_tenant_id = ctx.home_tenant_id
    req.target.application_id = ctx.application_id
    req.target.user_action = ctx.user_action
    req.target.authentication_contexts.extend(sorted(ctx.authentication_contexts))
    req.network.ip_address = ctx.ip_address
    if ctx.country:
        req.network.geo.country = ctx.country
    device = req.device
    device.device_id = ctx.device_id
    device.platform = pb.Platform.Value(f"PLATFORM_{_PLATFORM.get(ctx.platform, 'UNSPECIFIED')}")
    device.compliant = ctx.compliant
    trust = _TRUST.get(ctx.trust_type, "UNSPECIFIED")
    device.trust_type = pb.TrustType.Value(f"TRUST_TYPE_{trust}")
    for key, value in ctx.device_properties.items():
        if key in _ATTRIBUTES:
            device.attributes[_ATTRIBUTES[key]] = value
    app_type = _CLIENT_APP.get(ctx.client_app_type, "UNSPECIFIED")
    req.client_app_type = pb.ClientAppType.Value(f"CLIENT_APP_TYPE_{app_type}")
    auth = req.authentication
    auth.methods.extend(sorted(ctx.methods))
    if ctx.authenticated_at is not None:
        auth.authenticated_at.FromNanoseconds(round(ctx.authenticated_at * 1e9))
    auth.satisfied_controls.extend(sorted(ctx.satisfied_controls))
    auth.flow = pb.AuthenticationFlow.Value(
        f"AUTHENTICATION_FLOW_{_FLOW.get(ctx.flow, 'UNSPECIFIED')}"
    )
    req.risk.sign_in = pb.RiskLevel.Value(f"RISK_LEVEL_{ctx.sign_in_risk.upper()}")
    req.risk.user = pb.RiskLevel.Value(f"RISK_LEVEL_{ctx.user_risk.upper()}")
    req.risk.service_principal = pb.RiskLevel.Value(
        f"RISK_LEVEL_{ctx.service_principal_risk.upper()}"
    )
    req.risk.insider = pb.InsiderRiskLevel.Value(f"INSIDER_RISK_LEVEL_{ctx.insider_risk.upper()}")
    return req


def applied_in_responses(responses: Sequence[Any], pb: Any) -> float | None:
    """Mean number of applied policies in EvaluateResponses; None if they are not those."""
    not_applied = {
        pb.PolicyResult.Value(f"POLICY_RESULT_{name}")
        for name in ("NOT_APPLIED", "REPORT_ONLY_NOT_APPLIED", "NOT_ENABLED")
    }
    if not all(isinstance(r, pb.EvaluateResponse) for r in responses):
        return None
    total = sum(sum(p.result not in not_applied for p in r.policies) for r in responses)
    return total / len(responses)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: iterations, seed, sizes and request pool size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--iterations", "-n", dest="n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sizes", default="10,195,2000", help="comma-separated policy counts")
    parser.add_argument("--requests", type=int, default=1000, help="request pool size")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not args.sizes or min(args.sizes) < 1 or args.n < 1 or args.requests < 1:
        parser.error("sizes, iterations and requests must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the machine, the table and the goals."""
    args = parse_args(argv)
    print(f"python {platform.python_version()} ({platform.python_implementation()}), ", end="")
    print(f"{platform.platform()}, os.cpu_count()={os.cpu_count()}")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before the run: {load} (other processes skew the figures)")
    print(f"iterations={args.n} per row, seed={args.seed}, request pool={args.requests}")
    universe = synthetic.make_universe(args.seed)
    pool = synthetic.make_requests(universe, args.requests, args.seed)
    warm_up = synthetic.make_requests(universe, min(args.requests, 1000), args.seed, "warm-up")
    repeats = args.n / len(pool)
    print(
        f"each timed request is seen {repeats:.1f} times per row (after a warm-up on other "
        "requests); the engine may memoise per policy set, so repeats can be cache hits"
    )
    rows: list[Row] = []
    print("policy sets:")
    with tempfile.TemporaryDirectory(prefix="pdp-bench-") as tmp:
        for size in args.sizes:
            size_rows, summary = bench_size(size, (pool, warm_up), args.seed, args.n, Path(tmp))
            rows += size_rows
            print(summary, flush=True)
    print()
    print(HEADER)
    print("|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(row.render())
    print()
    p50 = {r.size: r.percentile(0.5) for r in rows if r.mode == "evaluate"}
    small, large = min(p50), max(p50)
    ratio = p50[large] / p50[small]
    print(
        f"p50({large}) / p50({small}) = {ratio:.2f} (goal <= {RATIO_GOAL}) "
        + ("met" if ratio <= RATIO_GOAL else "MISSED")
    )
    if 195 in p50:
        print(
            f"p50(195) = {p50[195]:.1f} µs (goal < {P50_GOAL_US:.0f} µs) "
            + ("met" if p50[195] < P50_GOAL_US else "MISSED")
        )
    else:
        print("p50(195) not measured (add 195 to --sizes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
