"""The request path's own work, this checkout against another, in interleaved rounds.

Run from the repository root:

    mkdir /tmp/pdp-before && git archive <commit> pdp | tar -x -C /tmp/pdp-before
    python benchmarks/bench_request_path_ab.py --against /tmp/pdp-before [--rounds 5]

Each round runs one child interpreter per tree (alternating which goes first), with
`PYTHONPATH` set to that tree, and reads its CPU time per call (`time.process_time`, the
collector off while timing) for three paths of the Evaluate handler, in-process:

- memo-cold map: request bytes -> SignInContext through a full content memo (16,384
  entries) under a stream of requests it has not seen (`request_pool.py`, seed 1);
- warm bytes: map, decide and write the response for the 12 requests of
  `deploy/ghz/requests.json`, content seen before (the gateway's usual case);
- audit render: one audit line of a decided call (the writer thread's work per call).

Prints each path's median per tree and the ratio this/other. The other tree needs only
`pdp/` (its own stubs included); both run with this checkout's installed dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("memo-cold map", "warm bytes", "audit render")
MEMO_FULL = 16_384


def measure(cold_count: int, warm_loops: int) -> dict[str, float | str]:
    """CPU µs per call of each path, in this interpreter, and the tree its pdp came from."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import request_pool  # noqa: PLC0415 - beside this script
    from google.protobuf import json_format  # noqa: PLC0415

    import pdp  # noqa: PLC0415 - the tree under test, from PYTHONPATH
    from pdp.decide import Decider  # noqa: PLC0415
    from pdp.observability.audit_bounds import RecordBounds  # noqa: PLC0415
    from pdp.observability.audit_record import AuditLine  # noqa: PLC0415
    from pdp.policy_store import PolicyStore  # noqa: PLC0415
    from pdp.server.context_memo import ContextMemo, map_request  # noqa: PLC0415
    from pdp.server.convert_out import ResponseWriter  # noqa: PLC0415
    from pdp.v1 import pdp_pb2 as pb  # noqa: PLC0415

    def wire(data: dict[str, object]) -> bytes:
        return json_format.ParseDict(data, pb.EvaluateRequest()).SerializeToString()

    cold = [wire(d) for d in request_pool.make_pool(MEMO_FULL + cold_count, 1)]
    requests = json.loads((ROOT / "deploy" / "ghz" / "requests.json").read_text("utf-8"))
    warm = [wire(d) for d in requests]
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    decider, writer = Decider(store), ResponseWriter()
    render = RecordBounds(AuditLine()).render

    async def run() -> dict[str, float | str]:
        mapped = map_request(ContextMemo())
        for body in cold[:MEMO_FULL]:
            mapped(body, 1.0)
        gc.collect()
        gc.disable()
        started = time.process_time()
        for body in cold[MEMO_FULL:]:
            mapped(body, 1.0)
        cold_us = (time.process_time() - started) / cold_count * 1e6
        mapped = map_request(ContextMemo())
        decided = []
        for body in warm:  # first sights: the memo learns each content
            ctx = mapped(body, time.time())
            decided.append((ctx, await decider.decide(ctx)))
        started = time.process_time()
        for _ in range(warm_loops):
            for body in warm:
                ctx = mapped(body, time.time())
                writer.write(await decider.decide(ctx), ctx)
        warm_us = (time.process_time() - started) / (warm_loops * len(warm)) * 1e6
        started = time.process_time()
        for _ in range(warm_loops):
            for ctx, decision in decided:
                render(ctx, decision, created=time.time(), latency_s=0.001, failure=None)
        audit_us = (time.process_time() - started) / (warm_loops * len(decided)) * 1e6
        gc.enable()
        figures = dict(zip(PATHS, (cold_us, warm_us, audit_us), strict=True))
        return {**figures, "pdp": str(Path(pdp.__file__).resolve().parent.parent)}

    return asyncio.run(run())


def _child(tree: Path, cold_count: int, warm_loops: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [sys.executable, __file__, "--child", str(cold_count), str(warm_loops)]
    done = subprocess.run(command, env=env, capture_output=True, encoding="utf-8", check=False)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: the round failed:\n{done.stderr[-2000:]}")
    figures = json.loads(done.stdout)
    if Path(figures.pop("pdp")) != tree:
        raise SystemExit(f"{tree}: the round imported pdp from elsewhere")
    return {path: float(figures[path]) for path in PATHS}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run interleaved rounds, print the medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, help="the other tree (holding pdp/)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold", type=int, default=40_000, help="unseen requests per round")
    parser.add_argument("--loops", type=int, default=2_000, help="passes over the 12 requests")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child)))
        return 0
    if args.against is None or not (args.against / "pdp" / "__init__.py").is_file():
        parser.error("--against: a folder holding the other tree's pdp/ package")
    trees = {"this": ROOT, "other": args.against.resolve()}
    runs: dict[str, list[dict[str, float]]] = {"this": [], "other": []}
    for round_ in range(args.rounds):
        order = ("other", "this") if round_ % 2 == 0 else ("this", "other")
        for name in order:
            runs[name].append(_child(trees[name], args.cold, args.loops))
    load = os.getloadavg()[0]
    print(f"Python {sys.version.split()[0]}, {args.rounds} interleaved rounds, load {load:.1f}")
    print(f"this: {ROOT}\nother: {trees['other']}\n")
    print("| path | other µs/call | this µs/call | this / other |")
    print("|---|---:|---:|---:|")
    for path in PATHS:
        other = statistics.median(r[path] for r in runs["other"])
        this = statistics.median(r[path] for r in runs["this"])
        print(f"| {path} | {other:.2f} | {this:.2f} | {this / other:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
