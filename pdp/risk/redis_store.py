"""The Redis `RiskStore`: every replica shares one history, one round trip per evaluation.

Each user's history is one sorted set, `pdp:{<user>}:signins` (the hash tag keeps a user's
keys in one Cluster slot), scored by sign-in time, so out-of-order sign-ins land in place.
Members are compact text, `time|lat|lon|acc|cc|ip` (time to the millisecond, degrees to 4
decimals, about 11 m), at most 64 bytes for every IPv4 sign-in and most IPv6 ones, so
Redis keeps a 20-entry history in its listpack encoding (about 1.3 KB). The time in the
member makes two sign-ins with the same data at different times two entries.

One call is ONE command: `_SCRIPT`, registered once and run with EVALSHA (redis-py's
AsyncScript loads it again after a NOSCRIPT, e.g. once after a restart), reads the history,
appends the sign-in, trims to the newest N, restarts the TTL and returns what it read.

Latency is bounded: the whole call (waiting for a connection included) runs under
`asyncio.timeout(budget)`, sockets time out at the budget too, and redis-py retries nothing.
A `CircuitBreaker` stops calling Redis after repeated failures and lets one probe through
later, so an outage costs no latency per call and the store recovers by itself. Failures
come out as `RiskStoreUnavailable`, whose text names the store by its redacted URL.

URLs: `redis[s]://[user:password@]host[:port][/db]`; in sentinel and cluster modes the host
part may list several `host:port`, comma-separated (the sentinels, or cluster seed nodes).
The credentials are the data nodes' (sentinels are asked without them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import structlog
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import BlockingConnectionPool, Connection, SSLConnection
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from pdp.risk.assessment import Place
from pdp.risk.settings import RiskSettings
from pdp.risk.store import RiskStoreUnavailable

log = structlog.get_logger(__name__)

MODES = ("standalone", "sentinel", "cluster")
PING_TIMEOUT_S = 1.0  # health checks are off the decision path and may warm connections
# TLS options a rediss:// URL may carry as query parameters (passed to redis-py as they are).
_TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"})
_FAILURES = (RedisError, OSError, TimeoutError)  # what counts against the breaker

# KEYS[1] the user's key; ARGV: record ("1"/"0"), score, member, history size, TTL in ms.
_SCRIPT = """
local history = redis.call('ZRANGE', KEYS[1], 0, -1)
if ARGV[1] == '1' then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[4]))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return history
"""


def key_of(user: str) -> str:
    """The Redis key of a user's history."""
    return f"pdp:{{{user}}}:signins"


def _number(value: float, places: int) -> str:
    """`value` to `places` decimals without trailing zeros ("48.8566", "1000", "0")."""
    text = f"{value:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def encode(place: Place) -> tuple[str, str]:
    """The (score, member) of a sign-in."""
    score = _number(place.time, 3)
    lat, lon = _number(place.latitude, 4), _number(place.longitude, 4)
    acc = _number(place.accuracy_radius_km, 1)
    return score, f"{score}|{lat}|{lon}|{acc}|{place.country}|{place.ip_address}"


def decode(member: bytes | str) -> Place | None:
    """The sign-in a member holds; None for one this version cannot read."""
    try:
        text = member.decode() if isinstance(member, bytes) else member
        when, lat, lon, acc, country, ip = text.split("|", 5)
        return Place(float(when), float(lat), float(lon), float(acc), country, ip)
    except ValueError:  # also UnicodeDecodeError and a wrong number of fields
        return None


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """A parsed redis:// or rediss:// URL; several comma-separated hosts for sentinel/cluster."""

    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def redacted(self) -> str:
        """The URL with its password replaced by `***`, for logs and messages."""
        user = quote(self.username or "", safe="")
        auth = f"{user}:***@" if self.password else (f"{user}@" if user else "")
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.nodes)
        return f"{'rediss' if self.tls else 'redis'}://{auth}{hosts}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse `redis://[user[:password]@]host[:port][,host[:port]...][/db][?tls options]`.

    Raises ValueError with a message that shows the URL with its password redacted.
    """
    parts = urlsplit(url)
    auth, _, hosts = parts.netloc.rpartition("@")
    username, has_password, password = auth.partition(":")
    shown = f"{parts.scheme}://{'***@' if auth else ''}{hosts}{parts.path}"
    if parts.scheme not in {"redis", "rediss"}:
        raise ValueError(f"redis URL {shown!r}: the scheme must be redis:// or rediss://")
    nodes: list[tuple[str, int]] = []
    for host in hosts.split(","):
        name, port = host, "6379"
        if host.startswith("["):  # [ipv6]:port
            name, _, rest = host[1:].partition("]")
            port = rest.removeprefix(":") or port
        elif host.count(":") == 1:
            name, port = host.split(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"redis URL {shown!r}: bad host {host!r}")
        nodes.append((name, int(port)))
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"redis URL {shown!r}: the path must be a database number")
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - _TLS_OPTIONS)
    if unknown or (options and parts.scheme != "rediss"):
        raise ValueError(
            f"redis URL {shown!r}: unsupported query options {unknown or sorted(options)}"
            f" (rediss:// URLs take {sorted(_TLS_OPTIONS)})"
        )
    return RedisAddress(
        tls=parts.scheme == "rediss",
        nodes=tuple(nodes),
        username=unquote(username) or None,
        password=unquote(password) if has_password else None,
        db=int(db),
        tls_options=options,
    )


class CircuitBreaker:
    """Closed, then open after `failures` consecutive failures; after `reset_s`, one probe.

    While open, `allow` is False without touching Redis. Once `reset_s` has passed, exactly
    one call is let through (half-open): its success closes the breaker, its failure opens
    it for another `reset_s`. `clock` is monotonic seconds (injectable for tests).
    """

    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = max(1, failures)
        self._reset_s = reset_s
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._probing = False
        self.opened = 0  # how many times the breaker opened (for metrics)

    @property
    def state(self) -> str:
        """The state: closed, open, or half-open (a probe is in flight)."""
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._probing else "open"

    def allow(self) -> bool:
        """Whether a call may go to Redis now."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self._reset_s:
            return False
        self._probing = True
        return True

    def succeeded(self) -> bool:
        """Record a success; True when it closed an open breaker."""
        self._consecutive = 0
        was_open = self._opened_at is not None
        self._opened_at = None
        self._probing = False
        return was_open

    def failed(self) -> bool:
        """Record a failure; True when it opened the breaker."""
        self._consecutive += 1
        if self._probing:  # the probe failed: stay open for another period
            self._probing = False
            self._opened_at = self._clock()
            return False
        if self._opened_at is None and self._consecutive >= self._threshold:
            self._opened_at = self._clock()
            self.opened += 1
            return True
        return False

    def abandoned(self) -> None:
        """A call ended without an answer either way (cancelled): free the probe slot."""
        self._probing = False


Client = Redis | RedisCluster


class RedisStore:
    """Sign-in histories in Redis (standalone, Sentinel or Cluster), one EVALSHA per call."""

    def __init__(
        self,
        client: Client,
        *,
        history_size: int,
        ttl_s: float,
        timeout_s: float,
        pool_size: int,
        breaker: CircuitBreaker,
        name: str,
        secrets: tuple[str, ...] = (),
        closers: tuple[Redis, ...] = (),
    ) -> None:
        if history_size < 1 or ttl_s <= 0 or timeout_s <= 0 or pool_size < 1:
            raise ValueError("history_size, ttl_s, timeout_s and pool_size must be positive")
        self.client = client
        self.breaker = breaker
        self.name = name  # the redacted URL
        self._script = client.register_script(_SCRIPT)
        self._size = history_size
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(pool_size)  # in-flight calls never exceed the pool
        self._secrets = tuple(s for s in secrets if s)
        self._closers = closers

    @classmethod
    def from_settings(
        cls, settings: RiskSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> RedisStore:
        """Connect (lazily) as `settings` say; raises ValueError for a bad URL or mode."""
        address = parse_redis_url(settings.redis_url)
        timeout_s = settings.redis_timeout_ms / 1000
        client, closers = _client(settings, address, timeout_s)
        return cls(
            client,
            history_size=settings.travel.history_size,
            ttl_s=settings.travel.history_ttl_s,
            timeout_s=timeout_s,
            pool_size=settings.redis_pool_size,
            breaker=CircuitBreaker(settings.breaker_failures, settings.breaker_reset_s, clock),
            name=address.redacted,
            secrets=(address.password or "",),
            closers=closers,
        )

    async def record_and_fetch(
        self, user: str, place: Place | None, *, record: bool, now: float
    ) -> list[Place]:
        """The user's history before this sign-in; records `place` when asked (see RiskStore).

        `now` is unused: Redis expires the key `ttl` after the write by its own clock.
        """
        if not self.breaker.allow():
            raise RiskStoreUnavailable(f"risk store {self.name}: circuit breaker open")
        args: list[str | int] = ["0"]
        if record and place is not None:
            score, member = encode(place)
            args = ["1", score, member, self._size, self._ttl_ms]
        sent = False
        try:
            async with asyncio.timeout(self._timeout_s), self._slots:
                sent = True
                raw = await self._script(keys=[key_of(user)], args=args)
        except _FAILURES as exc:
            if not sent:  # every connection stayed busy: overload here, not a Redis failure
                self.breaker.abandoned()
                waited = f"{self._timeout_s * 1000:g} ms"
                raise RiskStoreUnavailable(
                    f"risk store {self.name}: no free connection within {waited}"
                ) from None
            message = self._describe(exc)
            if self.breaker.failed():
                log.warning("risk_store_breaker_open", store=self.name, error=message)
            clean = message == self._describe_raw(exc)
            raise RiskStoreUnavailable(message) from (exc if clean else None)
        except BaseException:
            self.breaker.abandoned()
            raise
        if self.breaker.succeeded():
            log.info("risk_store_breaker_closed", store=self.name)
        return [p for p in map(decode, raw) if p is not None]

    async def ping(self) -> bool:
        """Whether Redis answers PING within a second (warms a connection; never raises)."""
        try:
            async with asyncio.timeout(max(self._timeout_s, PING_TIMEOUT_S)):
                return bool(await self.client.ping())
        except _FAILURES as exc:
            log.warning("risk_store_ping_failed", store=self.name, error=self._describe(exc))
            return False

    async def close(self) -> None:
        """Close every connection."""
        await self.client.aclose()
        for extra in self._closers:
            await extra.aclose()

    def _describe_raw(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError) and not str(exc):
            return f"risk store {self.name}: no answer within {self._timeout_s * 1000:g} ms"
        return f"risk store {self.name}: {type(exc).__name__}: {exc}"

    def _describe(self, exc: BaseException) -> str:
        """The failure in words, with any secret of the URL blanked out."""
        text = self._describe_raw(exc)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def _client(
    settings: RiskSettings, address: RedisAddress, timeout_s: float
) -> tuple[Client, tuple[Redis, ...]]:
    """The redis-py client for the configured mode, and any extra clients to close."""
    mode = settings.redis_mode
    if mode not in MODES:
        raise ValueError(f"redis mode {mode!r}: expected one of {', '.join(MODES)}")
    common: dict[str, Any] = {
        "username": address.username,
        "password": address.password,
        "socket_timeout": timeout_s,
        "socket_connect_timeout": timeout_s,
        "retry": Retry(NoBackoff(), 0),  # the budget is too small for retries to help
        "health_check_interval": 0,
    }
    tls: dict[str, Any] = dict(address.tls_options)
    if mode == "cluster":
        if address.db:
            raise ValueError(f"redis URL {address.redacted!r}: Cluster has only database 0")
        nodes = [ClusterNode(host, port) for host, port in address.nodes]
        cluster = RedisCluster(
            startup_nodes=nodes,
            max_connections=settings.redis_pool_size,
            ssl=address.tls,
            **tls,
            **common,
        )
        return cluster, ()
    if address.tls:
        tls["ssl"] = True
    if mode == "sentinel":
        to_sentinels = ("socket_timeout", "socket_connect_timeout", "retry")
        sentinel = Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(address.nodes),
            sentinel_kwargs={**{k: common[k] for k in to_sentinels}, **tls},
            db=address.db,
            max_connections=settings.redis_pool_size,
            **tls,
            **common,
        )
        master: Redis = sentinel.master_for(settings.sentinel_service)
        return master, tuple(sentinel.sentinels)
    if len(address.nodes) != 1:
        raise ValueError(f"redis URL {address.redacted!r}: standalone mode takes one host")
    ((host, port),) = address.nodes
    tls.pop("ssl", None)
    pool = BlockingConnectionPool(
        host=host,
        port=port,
        db=address.db,
        max_connections=settings.redis_pool_size,
        timeout=timeout_s,
        connection_class=SSLConnection if address.tls else Connection,
        **tls,
        **common,
    )
    return Redis.from_pool(pool), ()
