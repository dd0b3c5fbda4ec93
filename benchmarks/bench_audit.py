"""The audit log's cost: `AuditLog.put` on the event loop, and the writer thread's lines/s.

`put` runs on the request path for every call, so its cost is measured alone: the writer
thread is kept from starting (its loop is replaced by a no-op), the same realistic call (a
decided sign-in of the ai-workspace example) is put `--calls` times per round, and each
round is compared with a bare `deque.append` of the same tuple, the floor any queue pays.
Rounds interleave put and floor, so a change in the machine's load hits both alike; the
garbage collector is off while a round is timed.

The writer is measured separately: records queued, then `close()` drains them to a file;
lines per second of thread time (CPU time of the whole process while it drains).

    python benchmarks/bench_audit.py            # 7 rounds of 50,000 calls; a few seconds
    python benchmarks/bench_audit.py --quick    # what the smoke test runs

To compare two commits, run it on each, alternating, at a similar load average.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pdp.decide import Decider
from pdp.errors import ErrorCode
from pdp.observability import audit as audit_module
from pdp.observability.audit import AuditLog
from pdp.policy_store import PolicyStore
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "examples" / "ai-workspace"
REQUEST = ROOT / "examples" / "requests" / "engineer-dev-from-home-password-only.json"


def _call() -> tuple[Any, Any]:
    """A decided sign-in: (context, decision) of the walk-through's first request."""
    from google.protobuf import json_format  # noqa: PLC0415

    request = json_format.Parse(REQUEST.read_text("utf-8"), pb.EvaluateRequest())
    store = PolicyStore()
    store.load(POLICIES)
    ctx = to_context(request, time.time())
    decision = asyncio.run(Decider(store).decide(ctx))
    return ctx, decision


def _time_put(ctx: Any, decision: Any, calls: int) -> float:
    """Nanoseconds per put() of one realistic call (writer thread not running)."""
    original = audit_module.AuditLog._run
    audit_module.AuditLog._run = lambda self: None  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as folder:
            log = AuditLog(str(Path(folder) / "audit.jsonl"))
            put = log.put
            started = time.perf_counter_ns()
            for _ in range(calls):
                put(ctx, decision, 1.0, 0.0001, None)
            elapsed = time.perf_counter_ns() - started
            log._queue.clear()
    finally:
        audit_module.AuditLog._run = original  # type: ignore[method-assign]
    return elapsed / calls


def _time_floor(ctx: Any, decision: Any, calls: int) -> float:
    """Nanoseconds per bare deque.append of the same tuple: the floor of any queue."""
    queue: collections.deque[Any] = collections.deque()
    append = queue.append
    failure: ErrorCode | None = None
    started = time.perf_counter_ns()
    for _ in range(calls):
        append((ctx, decision, 1.0, 0.0001, failure))
    return (time.perf_counter_ns() - started) / calls


def _writer_rate(ctx: Any, decision: Any, records: int) -> float:
    """Lines per second of process CPU time while the writer drains `records`."""
    with tempfile.TemporaryDirectory() as folder:
        log = AuditLog(str(Path(folder) / "audit.jsonl"))
        started = time.process_time()
        for _ in range(records):
            log.put(ctx, decision, 1.0, 0.0001, None)
        log.close()
        return records / (time.process_time() - started)


def main() -> int:
    """Print put()'s cost against the floor, per round and as medians, then the writer's rate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=50_000)
    parser.add_argument("--records", type=int, default=50_000, help="for the writer's rate")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5,000 calls")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.calls, args.records = 2, 5_000, 2_000
    ctx, decision = _call()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}")
    print(f"{args.rounds} rounds of {args.calls:,} calls\n")
    print("| round | put() ns | deque.append ns | put() - floor ns |")
    print("|---|---|---|---|")
    puts, floors = [], []
    for n in range(args.rounds):
        pair = (_time_put, _time_floor) if n % 2 == 0 else (_time_floor, _time_put)
        gc.disable()  # a collection walking the queue would be timed as the queue's cost
        try:
            results = {f.__name__: f(ctx, decision, args.calls) for f in pair}
        finally:
            gc.enable()
        put_ns, floor_ns = results["_time_put"], results["_time_floor"]
        puts.append(put_ns)
        floors.append(floor_ns)
        print(f"| {n + 1} | {put_ns:.0f} | {floor_ns:.0f} | {put_ns - floor_ns:.0f} |")
    put_median, floor_median = statistics.median(puts), statistics.median(floors)
    print(
        f"\nmedian: put() {put_median:.0f} ns, floor {floor_median:.0f} ns, "
        f"put() - floor {put_median - floor_median:.0f} ns; "
        f"best: put() {min(puts):.0f} ns, floor {min(floors):.0f} ns"
    )
    rate = _writer_rate(ctx, decision, args.records)
    print(f"writer: {rate:,.0f} lines per CPU second ({args.records:,} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
