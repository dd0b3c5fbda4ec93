"""The Redis `RiskStore`: every replica shares one history, ONE command per evaluation.

Each user's history is one sorted set, `pdp:{<user>}:signins:v2` (the hash tag keeps a
user's keys in one Cluster slot), whose members are the 50-byte records of
`pdp.risk.record` scored by their time: out-of-order sign-ins land in place, a 20-entry
history stays in Redis's compact listpack encoding (about 1.2 KB), and the order is the
in-process store's. Keys of the first format (`pdp:{<user>}:signins`, text members) are
not read: they expire by their own TTL within 30 days (README, "State in Redis").

One call is one EVALSHA of `SCRIPT`, whose SHA1 is computed here; every new connection
loads the script in its handshake (`SCRIPT LOAD`, written before any call), and a NOSCRIPT
(the script cache flushed, a failover to a node that never saw it) is answered by running
that call once with EVAL, which caches it again. The script measures the windows in
sign-in time (see `pdp.risk.store`) and returns only what the judgement needs: the records
within the travel window as ONE string, and the country summary of the history window.
The TTL only bounds memory.

Latency is bounded by the deadline of `pdp.risk.redis_wire` (the budget, never blamed on a
late event loop), and failures are counted by a `CircuitBreaker`. Every outcome is
reported to `StoreEvents` (metrics): a round trip with its time, a failure with its
reason, or a refusal by the open breaker, which is not a round trip. Failures come out as
`RiskStoreUnavailable`, whose text names the store by its redacted URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pdp.risk import record as rec
from pdp.risk.breaker import CircuitBreaker
from pdp.risk.redis_nodes import ClusterNodes, Nodes, SentinelNodes, Unreachable
from pdp.risk.redis_url import FLAG, RedisAddress, parse_redis_url
from pdp.risk.redis_wire import Call, Connection, LinkError, ReplyError, encode
from pdp.risk.settings import RiskSettings
from pdp.risk.store import History, RiskStoreUnavailable, check_windows

log = structlog.get_logger(__name__)

MODES = ("standalone", "sentinel", "cluster")
PING_TIMEOUT_S = 1.0  # health checks and warm-up are off the decision path
KEY_PREFIX = b"pdp:{"
KEY_SUFFIX = b"}:signins:v2"

# KEYS[1]: a user's sign-ins. ARGV: [1] the sign-in's time, [2] the travel window (s),
# [3] the history window (s), [4] its country ('' = no summary), [5] its record ('' = read
# only), [6] the history size, [7] the TTL (ms). Bytes 33-34 of a record are its country.
SCRIPT = b"""
local t = tonumber(ARGV[1])
local recent = tonumber(ARGV[2])
local found
local known, seen = 0, 0
if ARGV[4] == '' then
  found = redis.call('ZRANGE', KEYS[1], t - recent, t + recent, 'BYSCORE')
else
  local window = tonumber(ARGV[3])
  local all = redis.call('ZRANGE', KEYS[1], t - window, t + window, 'BYSCORE')
  local low, high, unpack, sub = t - recent, t + recent, struct.unpack, string.sub
  found = {}
  for i = 1, #all do
    local member = all[i]
    local country = sub(member, 33, 34)
    if country ~= '\\0\\0' then
      known = known + 1
      if country == ARGV[4] then seen = 1 end
    end
    local time = unpack('>d', member)
    if time >= low and time <= high then found[#found + 1] = member end
  end
end
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[6]))
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
end
return {known, seen, table.concat(found)}
"""
SHA = hashlib.sha1(SCRIPT, usedforsecurity=False).hexdigest().encode()


def key_of(user: str) -> bytes:
    """The Redis key of a user's history."""
    return KEY_PREFIX + user.encode() + KEY_SUFFIX


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


@dataclass(slots=True)
class StoreEvents:
    """What the store reports, for metrics: set the callbacks you need (defaults do nothing)."""

    round_trip: Callable[[float], None] = lambda seconds: None  # command written -> reply read
    failed: Callable[[str], None] = lambda reason: None  # timeout, connection or reply
    refused: Callable[[], None] = lambda: None  # the breaker was open: no round trip
    late_read: Callable[[], None] = lambda: None  # a reply read after its budget (a success)
    loop_wait: Callable[[float], None] = lambda seconds: None  # reply read -> caller resumed


class RedisStore:
    """Sign-in histories in Redis (standalone, Sentinel or Cluster), one EVALSHA per call."""

    def __init__(
        self,
        nodes: Nodes,
        *,
        history_size: int,
        recent_s: float,
        window_s: float,
        timeout_s: float,
        breaker: CircuitBreaker,
        name: str,
        secrets: tuple[str, ...] = (),
        events: StoreEvents | None = None,
    ) -> None:
        check_windows(history_size, recent_s, window_s)
        if timeout_s <= 0:
            raise ValueError(f"timeout_s ({timeout_s}) must be positive")
        self.nodes = nodes
        self.breaker = breaker
        self.name = name  # the redacted URL
        self.events = events if events is not None else StoreEvents()
        self.refusals = 0
        self.failures = 0
        self._timeout_s = timeout_s
        self._secrets = tuple(s for s in secrets if s)
        ttl_ms = str(max(1, round(window_s * 1000))).encode()
        # EVALSHA sha 1 key time recent window country record size ttl: 11 parts.
        self._head = b"*11\r\n$7\r\nEVALSHA\r\n" + _bulk(SHA) + b"$1\r\n1\r\n"
        self._eval_head = b"*11\r\n$4\r\nEVAL\r\n" + _bulk(SCRIPT) + b"$1\r\n1\r\n"
        self._windows = _bulk(repr(recent_s).encode()) + _bulk(repr(window_s).encode())
        self._tail = _bulk(str(history_size).encode()) + _bulk(ttl_ms)
        self._refused = f"risk store {name}: circuit breaker open"

    @classmethod
    def from_settings(cls, settings: RiskSettings, *, recent_s: float) -> RedisStore:
        """The store `settings` describe (connecting lazily: see `warm_up`).

        Raises ValueError with one line naming the option for a bad URL, mode or TLS file.
        """
        address = parse_redis_url(settings.redis_url)
        timeout_s = settings.redis_timeout_ms / 1000
        breaker = CircuitBreaker(
            failure_rate=settings.breaker_failure_rate,
            min_calls=settings.breaker_min_calls,
            window_s=settings.breaker_window_s,
            reset_s=settings.breaker_reset_s,
        )
        events = StoreEvents()
        return cls(
            _nodes(settings, address, timeout_s, events),
            history_size=settings.travel.history_size,
            recent_s=recent_s,
            window_s=float(settings.travel.history_window_s),
            timeout_s=timeout_s,
            breaker=breaker,
            name=address.redacted,
            secrets=address.secrets,
            events=events,
        )

    def command(self, key: bytes, sign_in: bytes, *, record: bool) -> bytes:
        """The EVALSHA for one call (see SCRIPT for its arguments)."""
        country = rec.country_of(sign_in)
        return b"".join((
            self._head,
            _bulk(key),
            _bulk(repr(rec.time_of(sign_in)).encode()),
            self._windows,
            b"$0\r\n\r\n" if country == rec.NO_COUNTRY else _bulk(country),
            _bulk(sign_in) if record else b"$0\r\n\r\n",
            self._tail,
        ))  # fmt: skip

    async def record_and_fetch(self, user: str, sign_in: bytes, *, record: bool) -> History:
        """The user's history around `sign_in`, before it; records it when asked (RiskStore)."""
        breaker = self.breaker
        if not breaker.allow():
            self.refusals += 1
            self.events.refused()
            raise RiskStoreUnavailable(self._refused)
        key = key_of(user)
        command = self.command(key, sign_in, record=record)
        deadline = time.monotonic() + self._timeout_s
        try:
            call = self.nodes.node_for(key).send(command, deadline)
            reply = await call.future
        except ReplyError as exc:
            call, reply = await self._redirected(exc, key, command, deadline)
        except (LinkError, OSError, TimeoutError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "connection"
            raise self._failure(exc, reason) from None
        except BaseException:
            breaker.abandoned()
            raise
        events = self.events
        events.round_trip(call.read - call.sent)  # Redis's time, as the socket saw it
        events.loop_wait(time.monotonic() - call.read)  # then this task waited for the loop
        if breaker.succeeded():
            log.info("risk_store_breaker_closed", store=self.name)
        return History(reply[2], reply[0], reply[1] == 1)

    async def _redirected(
        self, error: ReplyError, key: bytes, command: bytes, deadline: float
    ) -> tuple[Call, list[bytes | int]]:
        """The slow path: NOSCRIPT (run once with EVAL), MOVED / ASK (follow once)."""
        text = str(error)
        try:
            if text.startswith("NOSCRIPT"):
                evaluate = self._eval_head + command[len(self._head) :]
                call = self.nodes.node_for(key).send(evaluate, deadline)
                return call, await call.future
            kind, _, where = text.partition(" ")
            if kind in {"MOVED", "ASK"}:
                slot, _, address = where.partition(" ")
                host, _, port = address.rpartition(":")
                node = self.nodes.moved(int(slot), host.strip("[]"), int(port))
                asking = node.send(encode(b"ASKING"), deadline) if kind == "ASK" else None
                call = node.send(command, deadline)
                if asking is not None:
                    await asking.future  # OK, read before the command's reply
                return call, await call.future
            if kind == "READONLY":  # a replica now: the master moved (Sentinel failover)
                self.nodes.failed()
            raise error
        except ReplyError as exc:
            raise self._failure(exc, "reply") from None
        except (LinkError, OSError, TimeoutError, ValueError) as exc:
            raise self._failure(exc, "connection") from None

    def _failure(self, exc: BaseException, reason: str) -> RiskStoreUnavailable:
        """Count a failed round trip and describe it (never with a secret)."""
        self.failures += 1
        self.events.failed(reason)
        message = self._describe(exc)
        if self.breaker.failed():
            log.warning("risk_store_breaker_open", store=self.name, error=message)
        if reason == "connection":
            self.nodes.failed()
        return RiskStoreUnavailable(message)

    async def warm_up(self) -> bool:
        """Connect every node and load the script, so the first call is one command.

        Never raises: an unreachable Redis is logged (redacted) and False comes back; the
        server then starts degraded and calls reconnect by themselves.
        """
        try:
            async with asyncio.timeout(max(PING_TIMEOUT_S, 2 * self._timeout_s)):
                await self.nodes.warm_up()
        except (LinkError, OSError, TimeoutError, ReplyError) as exc:
            log.warning("risk_store_unreachable", store=self.name, error=self._describe(exc))
            return False
        return True

    async def ping(self) -> bool:
        """Whether every node answers PING within a second (never raises)."""
        deadline = time.monotonic() + max(self._timeout_s, PING_TIMEOUT_S)
        try:
            for node in self.nodes.all() or [Unreachable("no node known")]:
                await node.call_all([encode(b"PING")], deadline)
        except (LinkError, OSError, TimeoutError, ReplyError) as exc:
            log.warning("risk_store_ping_failed", store=self.name, error=self._describe(exc))
            return False
        return True

    @property
    def late_reads(self) -> int:
        """Replies read after their deadline because the event loop was busy (successes)."""
        return sum(node.late_reads for node in self.nodes.all())

    async def close(self) -> None:
        """Close every connection."""
        self.nodes.close()

    def _describe(self, exc: BaseException) -> str:
        """The failure in words, naming the store by its redacted URL, secrets blanked."""
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):  # the budget as configured, not as measured
            detail = f"no reply within {self._timeout_s * 1000:g} ms"
        text = f"risk store {self.name}: {detail}"
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def ssl_context(address: RedisAddress) -> ssl.SSLContext | None:
    """The TLS context of a rediss:// URL (None for redis://); ValueError naming a bad option."""
    if not address.tls:
        return None
    options = address.tls_options
    try:
        context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
        requirement = options.get("ssl_cert_reqs", "required")
        if requirement in {"none", "optional"}:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE if requirement == "none" else ssl.CERT_OPTIONAL
        elif requirement != "required":
            raise ValueError(f"ssl_cert_reqs must be none, optional or required: {requirement!r}")
        if "ssl_certfile" in options:
            context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ValueError(f"{FLAG} {address.redacted!r}: TLS: {exc}") from None
    return context


def _nodes(
    settings: RiskSettings, address: RedisAddress, timeout_s: float, events: StoreEvents
) -> Nodes:
    """The connections for the configured mode (none is opened yet)."""
    mode = settings.redis_mode
    if mode not in MODES:
        raise ValueError(f"--redis-mode {mode!r}: expected one of {', '.join(MODES)}")
    context = ssl_context(address)
    handshake: list[bytes] = []
    if address.password is not None:
        user = [address.username.encode()] if address.username else []
        handshake.append(encode(b"AUTH", *user, address.password.encode()))
    if address.db:
        if mode == "cluster":
            raise ValueError(f"{FLAG} {address.redacted!r}: Redis Cluster has only database 0")
        handshake.append(encode(b"SELECT", str(address.db).encode()))
    handshake.append(encode(b"SCRIPT", b"LOAD", SCRIPT))
    connect_timeout_s = max(PING_TIMEOUT_S, timeout_s)

    def verify(replies: list[object]) -> None:
        if replies[-1] != SHA:  # the server hashed another script: refuse the connection
            raise LinkError(f"SCRIPT LOAD returned {replies[-1]!r}, expected {SHA!r}")

    def late_read() -> None:
        events.late_read()

    def make(host: str, port: int) -> Connection:
        return Connection(
            host,
            port,
            handshake=handshake,
            ssl_context=context,
            connect_timeout_s=connect_timeout_s,
            stale_s=max(1.0, 20 * timeout_s),
            on_connect=verify,
            on_late_read=late_read,
        )

    rediscover_s = max(settings.breaker_reset_s, 0.1)
    if mode == "sentinel":
        return SentinelNodes(make, address.nodes, settings.sentinel_service, context, rediscover_s)
    if mode == "cluster":
        return ClusterNodes(make, address.nodes, context, rediscover_s)
    if len(address.nodes) != 1:
        raise ValueError(f"{FLAG} {address.redacted!r}: standalone mode takes one host")
    return Nodes(make, *address.nodes[0])
