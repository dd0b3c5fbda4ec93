"""Peer benchmark: pdp, the null server and Cerbos under the same load, in one run.

    python benchmarks/peers/cerbos_bench.py --install     # once: Cerbos from npm, into the cache
    python benchmarks/peers/cerbos_bench.py [--rounds 3] [--duration 4] [--pool 1200] [--pin]
    python benchmarks/peers/cerbos_bench.py --agreement-only
    python benchmarks/peers/cerbos_bench.py --without-cerbos   # pdp and the null server only

Cerbos (a policy decision point in Go, the npm package @cerbos/cerbos-linux-x64, installed
into $XDG_CACHE_HOME/pdp-bench only with --install) runs `cerbos_policies/`, the
ai-workspace example written as a Cerbos resource policy in CEL (what it cannot express is
listed at the top of that file). Every request, the 12 of deploy/ghz/requests.json and the
seeded pool of `request_pool.py`, is first sent to pdp (Evaluate) and to Cerbos
(CheckResources) through gRPC clients, and their decisions must agree on every one;
otherwise the run stops, since figures of different decisions compare nothing.

Then each request set runs on the three servers in interleaved rounds (null, pdp, Cerbos;
then Cerbos, pdp, null; ...), with the same load generator and shape as load.py (h2load,
one connection per request, for the 12; h2pool over as many connections for the pool), at
saturation and at half of pdp's saturation throughput. It prints req/s, p50/p90/p99 and
server CPU µs per call (/proc), the goals of pdp against the null server, and pdp's goal
against Cerbos: CPU per decision pdp / Cerbos <= 0.6.

With --pin every server runs on CPU 0 (Cerbos's Go runtime then uses one core, as does
pdp's one worker) and the load generators on CPU 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the sibling benchmark modules (load, drivers, ...)

import cerbos  # noqa: E402
import grpc  # noqa: E402
import load  # noqa: E402
from drivers import Bodies, H2load, H2pool, Target, Window, build_h2pool, cache_dir  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from rounds import Goal, cpu_per_call, ratio  # noqa: E402
from servers import free_port, null_command, pdp_command, pinned_server, started  # noqa: E402

from pdp.v1 import pdp_pb2 as pb  # noqa: E402
from pdp.v1 import pdp_pb2_grpc  # noqa: E402

PEER_GOAL = 0.6


def cerbos_frame(request: pb.EvaluateRequest) -> bytes:
    """The CheckResources call for `request`, as one gRPC length-prefixed message."""
    body = cerbos.check_request(request).SerializeToString()
    return b"\x00" + len(body).to_bytes(4, "big") + body


def disagreements(
    pdp_port: int, cerbos_port: int, requests: Sequence[pb.EvaluateRequest]
) -> tuple[dict[str, int], list[str]]:
    """Ask both servers every request: Cerbos's decisions counted, and where they differ."""
    _, response_class = cerbos.messages()
    counted: dict[str, int] = {}
    differ = []
    with (
        grpc.insecure_channel(f"127.0.0.1:{pdp_port}") as pdp_channel,
        grpc.insecure_channel(f"127.0.0.1:{cerbos_port}") as cerbos_channel,
    ):
        evaluate = pdp_pb2_grpc.PolicyDecisionServiceStub(pdp_channel).Evaluate
        check = cerbos_channel.unary_unary(
            cerbos.METHOD,
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        for request in requests:
            wanted = cerbos.pdp_answer(evaluate(request, timeout=5))
            got = cerbos.cerbos_answer(check(cerbos.check_request(request), timeout=5).results[0])
            counted[got.decision] = counted.get(got.decision, 0) + 1
            if differences := wanted.differences(got):
                sent = json.dumps(json_format.MessageToDict(request), separators=(",", ":"))
                differ.append(
                    f"{request.request_id}: pdp != Cerbos: {'; '.join(differences)}: {sent}"
                )
    return dict(sorted(counted.items())), differ


def peer_goal(result: load.SetResult) -> Goal:
    """Pdp's CPU per decision against Cerbos's, at saturation."""
    sat = result.saturation
    return ratio(
        "CPU per decision pdp / cerbos",
        sat["pdp"],
        sat["cerbos"],
        cpu_per_call,
        PEER_GOAL,
        at_least=False,
        unit="µs",
    )


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load.add_common_arguments(parser)
    parser.add_argument("--pool", type=int, default=1200, help="distinct requests; 0: none")
    parser.add_argument("--seed", type=int, default=1, help="the pool's random seed")
    parser.add_argument("--install", action="store_true", help="install Cerbos from npm first")
    parser.add_argument("--agreement-only", action="store_true", help="check decisions, no load")
    parser.add_argument("--without-cerbos", action="store_true", help="pdp and null only")
    parser.add_argument("--cache", type=Path, default=None, help="default: ~/.cache/pdp-bench")
    args = parser.parse_args(argv)
    load.check_arguments(parser, args)
    if args.install and args.without_cerbos:
        parser.error("--install and --without-cerbos contradict each other")
    if args.agreement_only and args.without_cerbos:
        parser.error("--agreement-only needs Cerbos")
    return args


def main(argv: Sequence[str] | None = None) -> int:  # noqa: PLR0915 - one run, in order
    """Install or find Cerbos, check agreement, run the rounds, print the report."""
    args = parse(argv)
    cache = args.cache or cache_dir()
    binary = None
    if args.install:
        binary = cerbos.install(cache)
        print(f"Cerbos {cerbos.VERSION}: {binary}")
    elif not args.without_cerbos:
        binary = cerbos.binary(cache)
        if binary is None:
            print(
                f"Cerbos {cerbos.VERSION} is not installed in {cerbos.install_dir(cache)}: "
                "run with --install (npm), or --without-cerbos",
                file=sys.stderr,
            )
            return 2
    if binary is not None:
        cerbos.compile_policies(binary)
    window = Window(args.duration, args.warm_up, args.streams, 1 if args.pin else None)
    requests = load.load_requests(load.REQUESTS)
    pool = load.pool_requests(args.pool, args.seed) if args.pool else []
    h2load = None if args.agreement_only else H2load(load.find_h2load(), window)
    h2pool = H2pool(build_h2pool(), window, len(requests)) if pool and h2load else None
    print(load.machine_line(args))
    if binary is None:
        print("Cerbos: not run (--without-cerbos)")
    sets = {"requests": requests, "pool": pool}
    titles = {
        "requests": f"{len(requests)} requests ({load.REQUESTS.relative_to(load.ROOT)})",
        "pool": f"{len(pool):,} distinct requests (request_pool.py, seed {args.seed})",
    }
    with tempfile.TemporaryDirectory(prefix="pdp-peers-") as folder:
        tmp = Path(folder)
        pdp = pdp_command(args.policies, tmp, audit=not args.no_audit)
        null_cmd = pinned_server(null_command(args.policies), args.pin)
        with contextlib.ExitStack() as stack:
            null = stack.enter_context(started(null_cmd, tmp / "null.log"))
            served = stack.enter_context(
                started(pinned_server(pdp.command, args.pin), tmp / "pdp.log")
            )
            peer = None
            if binary is not None:
                grpc_port, http_port = free_port(), free_port()
                peer_cmd = pinned_server(
                    cerbos.server_command(binary, grpc_port, http_port), args.pin
                )
                peer = stack.enter_context(
                    started(peer_cmd, tmp / "cerbos.log", port=grpc_port, env=cerbos.SERVER_ENV)
                )
            for name, messages in sets.items():
                load.check_answers(null.port, messages)
                load.check_answers(served.port, messages)
                if peer is None or not messages:
                    continue
                counted, differ = disagreements(served.port, peer.port, messages)
                agreed = len(messages) - len(differ)
                print(
                    f"agreement, {name}: Cerbos answered {agreed:,} of {len(messages):,} as pdp "
                    f"did (decision, requirements, session, policies); its decisions {counted}"
                )
                if differ:
                    print("\n".join(differ[:20]), file=sys.stderr)
                    return 1
            if args.agreement_only:
                return 0
            results = []
            for name, driver in (("requests", h2load), ("pool", h2pool)):
                if driver is None or not sets[name]:
                    continue
                bodies = Bodies.write(tmp / name, [load.grpc_frame(m) for m in sets[name]])
                targets = [
                    Target("null", null.port, null.pid, load.METHOD, bodies),
                    Target("pdp", served.port, served.pid, load.METHOD, bodies),
                ]
                if peer is not None:
                    frames = [cerbos_frame(m) for m in sets[name]]
                    peer_bodies = Bodies.write(tmp / f"{name}-cerbos", frames)
                    targets.append(
                        Target("cerbos", peer.port, peer.pid, cerbos.METHOD, peer_bodies)
                    )
                title = f"{titles[name]}, {driver.name}"
                results.append(load.measure_set(title, driver, targets, args.rounds, "pdp"))
    for result in results:
        goals = load.transport_goals(result, "pdp", "null")
        if "cerbos" in result.saturation:
            goals.append(peer_goal(result))
        load.print_set(result, goals)
    print()
    print(f"failed requests (load generators): {sum(r.failed() for r in results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
