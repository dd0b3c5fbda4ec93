"""Forward-auth beside Check and Evaluate: the server's CPU per call, in one run.

Run from the repository root:

    python benchmarks/bench_forward_auth.py [--calls N] [--rounds R] [--concurrency C]

Starts one `pdp serve` (one process) over the ai-workspace example with the gRPC port and
`--http-listen`; its gateway config is `examples/gateway-config.yaml` plus a `tokens`
section pointing at a JWKS server over TLS that this script runs (test CA and Entra-shaped
tokens from `tests/entra_tokens.py`). The same three sign-ins (allow, challenge, deny) go
as EvaluateRequests, as Envoy CheckRequests (jwt_authn's verified payload, as in
`bench_gateway.py`), and as forward-auth subrequests carrying a signed v1.0 token: once
with the same token every call (the usual case: a session's token, verified once, then
remembered) and once with a fresh token per call (every signature verified). Each round
runs N calls of each kind in a shuffled order; the server's CPU time (user + system, from
/proc/PID/stat) is read before and after each block. Reported: the median CPU per call of
each kind over the rounds, and its ratio to Evaluate's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from bench_gateway import ENGINEERS, SCENARIOS, check_request, evaluate_request  # noqa: E402
from entra_tokens import (  # noqa: E402
    API_APP_ID_URI,
    CertificateAuthority,
    JwksServer,
    SigningKey,
    jwks_certificate,
    jwks_path,
    user_claims,
)

from pdp.gateway.envoy import auth_grpc  # noqa: E402
from pdp.v1 import pdp_pb2_grpc  # noqa: E402

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
KINDS = ("Evaluate", "Check", "forward-auth", "forward-auth, new token")
Call = Callable[[], Awaitable[Any]]


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_S


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_config(folder: Path, jwks_uri: str, ca_file: Path) -> Path:
    """The example gateway config, verifying tokens itself, for a gateway on loopback too."""
    data = yaml.safe_load((ROOT / "examples" / "gateway-config.yaml").read_text("utf-8"))
    data["network"]["trusted_proxies"] = ["10.0.0.0/8", "127.0.0.0/8"]
    data["tokens"] = {
        "audiences": [API_APP_ID_URI],
        "jwks_uri": jwks_uri,
        "jwks_ca_file": str(ca_file),
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def subrequest(host: str, client: str, token: str) -> dict[str, str]:
    """The headers of NGINX's auth subrequest for the scenario."""
    return {
        "Host": "pdp:8080",
        "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
        "Cookie": "workspace_session=7b1d",
        "Accept": "text/html,application/xhtml+xml",
        "Authorization": f"Bearer {token}",
        "X-Original-URI": "/notebooks/42",
        "X-Original-Method": "GET",
        "X-Forwarded-Host": host,
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": client,
        "X-Device-Id": "laptop-0042",
        "X-Device-Compliant": "true",
        "X-Device-Trust-Type": "AzureAD",
    }


async def run_block(calls: Sequence[Call], concurrency: int) -> None:
    """Make every call, `concurrency` at a time."""
    queue = iter(calls)

    async def worker() -> None:
        for call in queue:
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def measure(args: argparse.Namespace, pid: int, grpc_port: int, http_port: int) -> None:
    """Interleaved rounds of each kind; print the table."""
    key = SIGNING_KEY
    now = int(time.time())
    session_tokens = [
        key.sign(user_claims("1.0", groups=[ENGINEERS], amr=amr, now=now), "1.0")
        for _, _, amr in SCENARIOS
    ]
    print(f"minting {args.calls * args.rounds} fresh tokens...", file=sys.stderr)
    fresh = [
        key.sign(user_claims("1.0", groups=[ENGINEERS], amr=SCENARIOS[i % 3][2], now=now), "1.0")
        for i in range(args.calls * args.rounds)
    ]
    url = f"http://127.0.0.1:{http_port}/authz"
    statuses: dict[str, set[int]] = {kind: set() for kind in KINDS}
    async with (
        grpc.aio.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency)) as http,
    ):
        evaluate = pdp_pb2_grpc.PolicyDecisionServiceStub(channel).Evaluate
        check = auth_grpc.AuthorizationStub(channel).Check

        async def ask(headers: dict[str, str]) -> None:
            async with http.get(url, headers=headers) as reply:
                await reply.read()
                statuses["forward-auth"].add(reply.status)

        def calls(kind: str, round_: int) -> list[Call]:
            out: list[Call] = []
            for i in range(args.calls):
                host, client, amr = SCENARIOS[i % 3]
                if kind == "Evaluate":
                    request = evaluate_request(host, client, amr)
                    out.append(lambda r=request: evaluate(r))
                elif kind == "Check":
                    request = check_request(host, client, amr)
                    out.append(lambda r=request: check(r))
                else:
                    token = (
                        session_tokens[i % 3]
                        if kind == "forward-auth"
                        else fresh[round_ * args.calls + i]
                    )
                    headers = subrequest(host, client, token)
                    out.append(lambda h=headers: ask(h))
            return out

        for kind in KINDS:  # warm up: connections, the JWKS, the memo
            await run_block(calls(kind, 0)[:60], args.concurrency)
        per_call: dict[str, list[float]] = {kind: [] for kind in KINDS}
        for round_ in range(args.rounds):
            order = list(KINDS)
            random.shuffle(order)
            for kind in order:
                block = calls(kind, round_)
                before = cpu_s(pid)
                await run_block(block, args.concurrency)
                per_call[kind].append((cpu_s(pid) - before) / len(block) * 1e6)
    if statuses["forward-auth"] - {200, 401, 403}:
        raise SystemExit(f"unexpected forward-auth statuses {statuses['forward-auth']}")
    base = statistics.median(per_call["Evaluate"])
    print(
        f"pdp server CPU per call (median of {args.rounds} interleaved rounds of {args.calls} "
        f"calls each, concurrency {args.concurrency}; Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})\n"
    )
    print("| way in | CPU µs per call | min .. max µs | vs Evaluate |")
    print("|---|---:|---:|---:|")
    for kind in KINDS:
        values = per_call[kind]
        median = statistics.median(values)
        ratio = f"{median / base:.2f}" if base else "n/a"  # a run too short for a CPU tick
        print(f"| {kind} | {median:.0f} | {min(values):.0f} .. {max(values):.0f} | {ratio} |")


SIGNING_KEY = SigningKey("bench-key")


def main(argv: Sequence[str] | None = None) -> int:
    """Start pdp and the JWKS server, measure, stop."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=600, help="calls per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca = CertificateAuthority()
        ca_file = ca.write(folder)
        with JwksServer(jwks_certificate(ca), [SIGNING_KEY], folder) as jwks:
            grpc_port, http_port = free_port(), free_port()
            config = gateway_config(folder, jwks.url(jwks_path("1.0")), ca_file)
            command = [sys.executable, "-m", "pdp", "serve"]
            command += ["--policies", str(ROOT / "examples" / "ai-workspace")]
            command += ["--gateway-config", str(config), "--metrics-port", "0"]
            command += ["--listen", f"127.0.0.1:{grpc_port}"]
            command += ["--http-listen", f"127.0.0.1:{http_port}"]
            server = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
            )
            try:
                assert server.stdout is not None
                line = server.stdout.readline()
                if not line.startswith("listening on"):
                    raise SystemExit(f"pdp did not start: {line!r}")
                asyncio.run(measure(args, server.pid, grpc_port, http_port))
            finally:
                server.terminate()
                server.wait(30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
