"""The null server: pdp's gRPC stack answering one constant EvaluateResponse.

    python benchmarks/null_server.py [--listen 127.0.0.1:0]

It is what `pdp serve` would be if deciding cost nothing: the same grpc.aio server with
pdp's default options and concurrency limit, the same event loop (`run_event_loop`: uvloop
when installed) and the generated servicer of `pdp.v1.PolicyDecisionService`; requests are
still deserialized by gRPC. The answer is built once at start-up, by pdp itself, for one
of the example requests (so it has a realistic size), and sent for every call. No policy
evaluation, risk store, metrics interceptor, health, reflection or audit log.
`benchmarks/load.py` measures pdp against it: the ratio of their throughputs is what
pdp's own work costs.

Prints `listening on HOST:PORT` when ready; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from google.protobuf import json_format

from pdp.config import Settings
from pdp.decide import Decider
from pdp.policy_store import PolicyStore
from pdp.runtime.app import run_event_loop
from pdp.server.convert_in import to_context
from pdp.server.convert_out import to_response
from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "examples" / "ai-workspace"
REQUEST = ROOT / "examples" / "requests" / "engineer-dev-from-home-password-only.json"


def constant_response(policies: Path, request_file: Path) -> pb.EvaluateResponse:
    """The answer pdp gives to `request_file` under `policies`, computed once."""
    store = PolicyStore()
    store.load(policies)
    request = json_format.Parse(request_file.read_text("utf-8"), pb.EvaluateRequest())
    ctx = to_context(request, time.time())
    return to_response(Decider(store).decide_without_risk(ctx), ctx)


class NullService(pdp_pb2_grpc.PolicyDecisionServiceServicer):
    """Answers every Evaluate call with the same response."""

    def __init__(self, response: pb.EvaluateResponse) -> None:
        self._response = response

    async def Evaluate(  # noqa: N802 - the RPC's name, fixed by the generated servicer
        self,
        request: pb.EvaluateRequest,
        context: grpc.aio.ServicerContext[pb.EvaluateRequest, pb.EvaluateResponse],
    ) -> pb.EvaluateResponse:
        """The constant response, whatever the request."""
        return self._response


async def serve(listen: str, response: pb.EvaluateResponse) -> None:
    """Serve until SIGTERM or SIGINT."""
    defaults = Settings(policies=POLICIES)  # pdp serve's default limits
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", defaults.max_message_bytes),
            ("grpc.max_send_message_length", defaults.max_message_bytes),
        ],
        maximum_concurrent_rpcs=defaults.max_concurrent_rpcs,
    )
    pdp_pb2_grpc.add_PolicyDecisionServiceServicer_to_server(NullService(response), server)
    port = server.add_insecure_port(listen)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await server.start()
    print(f"listening on {listen.rsplit(':', 1)[0]}:{port}", flush=True)
    await stopping.wait()
    await server.stop(grace=1.0)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, build the constant answer, serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default: %(default)s)")
    parser.add_argument("--policies", type=Path, default=POLICIES, help="set the answer comes from")
    parser.add_argument("--request", type=Path, default=REQUEST, help="request it answers")
    args = parser.parse_args(argv)
    response = constant_response(args.policies, args.request)
    run_event_loop(serve(args.listen, response))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
