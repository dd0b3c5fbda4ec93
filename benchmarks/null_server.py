"""The null server: pdp's gRPC stack answering one constant EvaluateResponse.

    python benchmarks/null_server.py [--listen 127.0.0.1:0]

It is what `pdp serve` would be if deciding cost nothing: the same grpc.aio server with
pdp's default options and concurrency limit, the same event loop (uvloop when installed,
as `pdp serve`) and the generated servicer of `pdp.v1.PolicyDecisionService`; requests
are still deserialized by gRPC. The answer is computed once at start-up by pdp itself
(`pdp evaluate` on one of the example requests, so it has a realistic size), and sent for
every call. No policy evaluation, risk store, metrics interceptor, health, reflection or
audit log. `benchmarks/load.py` measures pdp against it: the ratio of their CPU per call
is what pdp's own work costs.

It uses pdp only through its command line and its generated gRPC stubs (`pdp.v1`), so it
keeps working while pdp's insides change.

Prints `listening on HOST:PORT` when ready; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format

from pdp.v1 import pdp_pb2 as pb
from pdp.v1 import pdp_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "examples" / "ai-workspace"
REQUEST = ROOT / "examples" / "requests" / "engineer-dev-from-home-password-only.json"
# `pdp serve`'s defaults for --max-concurrent-rpcs and --max-message-bytes (its --help;
# tests/deploy/test_load_smoke.py checks that they still are).
MAX_CONCURRENT_RPCS = 1000
MAX_MESSAGE_BYTES = 1048576


def constant_response(policies: Path, request_file: Path) -> pb.EvaluateResponse:
    """The answer `pdp evaluate` gives to `request_file` under `policies`, computed once."""
    command = [sys.executable, "-m", "pdp", "evaluate", "--policies", str(policies)]
    command += ["--request", str(request_file)]
    done = subprocess.run(command, capture_output=True, encoding="utf-8", check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"null_server: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return json_format.Parse(done.stdout, pb.EvaluateResponse())


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run `main` on uvloop when it is installed (as `pdp serve` does), else on asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional, as in pdp: pip install -e '.[fast]'
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


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
    server = grpc.aio.server(
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
        maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS,
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
