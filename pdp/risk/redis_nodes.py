"""Which Redis connection serves a key: standalone, the master Sentinel names, or a Cluster slot.

Each mode keeps one pipelined `Connection` per data node (per worker) and knows how to find
its nodes again:

- standalone: the URL's host; a broken connection reconnects on the next call.
- sentinel: the URL lists the sentinels; the master is asked from them (in order, skipping
  the ones that do not answer) at warm-up, and again in the background when the master's
  connection breaks or answers READONLY (a failover).
- cluster: the URL lists seed nodes; `CLUSTER SLOTS` (asked from any known node) maps the
  16384 slots to primaries; a MOVED reply updates one slot at once and refreshes the whole
  map in the background; ASK is followed once.

`warm_up` connects every data node and waits for the handshake (which loads the script), so
the first decision costs one command; it never raises: an unreachable Redis is logged and
the server starts degraded, as it would run degraded after an outage. Rediscovery runs at
most once at a time and at most once per `rediscover_s`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from redis.crc import key_slot

from pdp.risk.redis_url import host_port
from pdp.risk.redis_wire import Call, Connection, LinkError, ReplyError, encode

log = structlog.get_logger(__name__)

CLUSTER_SLOTS = 16384
DISCOVERY_TIMEOUT_S = 1.0  # asking a sentinel or a node for the topology (off the hot path)

NodeFactory = Callable[[str, int], Connection]


class Nodes:
    """One data node (standalone); the base of the other modes."""

    def __init__(self, make: NodeFactory, host: str, port: int) -> None:
        self._make = make
        self.node = make(host, port)

    def node_for(self, key: bytes) -> Connection:
        """The connection that serves `key`."""
        return self.node

    def all(self) -> list[Connection]:
        """Every data node's connection."""
        return [self.node]

    def failed(self) -> None:
        """A call failed as a topology change would make it fail: rediscover (if any)."""

    def moved(self, slot: int, host: str, port: int) -> Connection:
        """A MOVED or ASK reply named `host:port` for `slot`: its connection."""
        raise LinkError(f"unexpected redirection to {host_port(host, port)}")

    async def warm_up(self) -> None:
        """Connect every data node; raises LinkError naming the first that failed."""
        results = await asyncio.gather(
            *(node.connect() for node in self.all()), return_exceptions=True
        )
        for node, result in zip(self.all(), results, strict=True):
            if isinstance(result, BaseException):
                where = host_port(node.host, node.port)
                raise LinkError(f"{where}: {result or type(result).__name__}") from None

    def close(self) -> None:
        """Close every connection."""
        for node in self.all():
            node.close()


class _Rediscovery:
    """Runs a topology refresh in the background: one at a time, at most every `every_s`."""

    def __init__(self, refresh: Callable[[], Any], every_s: float) -> None:
        self._refresh = refresh
        self._every_s = every_s
        self._task: asyncio.Task[None] | None = None
        self._last = -float("inf")

    def request(self) -> None:
        if self._task is not None or time.monotonic() - self._last < self._every_s:
            return
        self._last = time.monotonic()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await self._refresh()
        except (LinkError, OSError, TimeoutError, ReplyError) as exc:
            log.warning("risk_store_rediscovery_failed", error=str(exc))
        finally:
            self._task = None

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


async def _ask(
    host: str, port: int, ssl_context: ssl.SSLContext | None, handshake: Sequence[bytes],
    command: bytes,
) -> Any:  # fmt: skip
    """One command on a short-lived connection (topology questions)."""
    connection = Connection(
        host, port, handshake=handshake, ssl_context=ssl_context,
        connect_timeout_s=DISCOVERY_TIMEOUT_S,
    )  # fmt: skip
    try:
        (reply,) = await connection.call_all([command], time.monotonic() + DISCOVERY_TIMEOUT_S)
        return reply
    finally:
        connection.close()


class SentinelNodes(Nodes):
    """The master that the sentinels name for `service`."""

    def __init__(
        self,
        make: NodeFactory,
        sentinels: Sequence[tuple[str, int]],
        service: str,
        ssl_context: ssl.SSLContext | None,
        rediscover_s: float,
    ) -> None:
        self._make = make
        self._sentinels = tuple(sentinels)
        self._service = service
        self._ssl = ssl_context
        self.node: Connection = Unreachable(f"no master known yet for service {service!r}")
        self._rediscovery = _Rediscovery(self._discover, rediscover_s)

    def failed(self) -> None:  # noqa: D102
        self._rediscovery.request()

    async def warm_up(self) -> None:  # noqa: D102
        await self._discover()
        await super().warm_up()

    async def _discover(self) -> None:
        """Ask the sentinels, in order, where the master is; switch to it if it moved."""
        question = encode(b"SENTINEL", b"get-master-addr-by-name", self._service.encode())
        errors = []
        for host, port in self._sentinels:
            try:
                reply = await _ask(host, port, self._ssl, (), question)
            except (LinkError, OSError, TimeoutError, ReplyError) as exc:
                errors.append(f"sentinel {host_port(host, port)}: {exc}")
                continue
            if not reply:
                errors.append(f"sentinel {host_port(host, port)}: unknown service")
                continue
            master = (reply[0].decode(), int(reply[1]))
            if (self.node.host, self.node.port) != master:
                old, self.node = self.node, self._make(*master)
                old.close()
                log.info("risk_store_master", master=host_port(*master))
            return
        raise LinkError(f"no sentinel named the master ({'; '.join(errors)})")

    def close(self) -> None:  # noqa: D102
        self._rediscovery.cancel()
        super().close()


class ClusterNodes(Nodes):
    """The primaries of a Redis Cluster, found from seed nodes, by slot."""

    def __init__(
        self,
        make: NodeFactory,
        seeds: Sequence[tuple[str, int]],
        ssl_context: ssl.SSLContext | None,
        rediscover_s: float,
    ) -> None:
        self._make = make
        self._seeds = tuple(seeds)
        self._ssl = ssl_context
        self._nodes: dict[tuple[str, int], Connection] = {}
        self._slots: list[Connection | None] = [None] * CLUSTER_SLOTS
        self._rediscovery = _Rediscovery(self._discover, rediscover_s)

    def node_for(self, key: bytes) -> Connection:  # noqa: D102
        node = self._slots[key_slot(key)]
        if node is None:
            self._rediscovery.request()
            raise LinkError("cluster: no node known for this key's slot")
        return node

    def all(self) -> list[Connection]:  # noqa: D102
        return list(self._nodes.values())

    def failed(self) -> None:  # noqa: D102
        self._rediscovery.request()

    def moved(self, slot: int, host: str, port: int) -> Connection:  # noqa: D102
        node = self._node(host, port)
        self._slots[slot] = node
        self._rediscovery.request()
        return node

    def _node(self, host: str, port: int) -> Connection:
        node = self._nodes.get((host, port))
        if node is None:
            node = self._nodes[host, port] = self._make(host, port)
        return node

    async def warm_up(self) -> None:  # noqa: D102
        await self._discover()
        await super().warm_up()

    async def _discover(self) -> None:
        """Map the slots from the first node (known ones, then seeds) that answers."""
        errors = []
        candidates = [*self._nodes, *(s for s in self._seeds if s not in self._nodes)]
        for host, port in candidates:
            node = self._nodes.get((host, port)) or self._make(host, port)
            try:
                (reply,) = await node.call_all(
                    [encode(b"CLUSTER", b"SLOTS")], time.monotonic() + DISCOVERY_TIMEOUT_S
                )
            except (LinkError, OSError, TimeoutError, ReplyError) as exc:
                errors.append(f"{host_port(host, port)}: {exc}")
                if (host, port) not in self._nodes:
                    node.close()
                continue
            if (host, port) not in self._nodes:
                self._nodes[host, port] = node
            self._map(reply, host)
            return
        raise LinkError(f"no cluster node answered CLUSTER SLOTS ({'; '.join(errors)})")

    def _map(self, reply: list[Any], asked: str) -> None:
        slots: list[Connection | None] = [None] * CLUSTER_SLOTS
        used: set[tuple[str, int]] = set()
        for first, last, primary, *_ in reply:
            endpoint = primary[0].decode() if primary[0] else asked
            if endpoint == "?":
                continue
            address = (endpoint, int(primary[1]))
            used.add(address)
            node = self._node(*address)
            for slot in range(int(first), int(last) + 1):
                slots[slot] = node
        self._slots = slots
        for address in [a for a in self._nodes if a not in used]:
            with contextlib.suppress(KeyError):
                self._nodes.pop(address).close()

    def close(self) -> None:  # noqa: D102
        self._rediscovery.cancel()
        super().close()


class Unreachable(Connection):
    """Stands for a node not found (yet): every call and connect fails at once with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__("", 0)
        self.reason = reason
        self.close()

    def send(self, command: bytes, deadline: float) -> Call:  # noqa: D102
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.set_exception(LinkError(self.reason))
        return Call(future, deadline, time.monotonic())

    async def connect(self) -> None:  # noqa: D102
        raise LinkError(self.reason)
