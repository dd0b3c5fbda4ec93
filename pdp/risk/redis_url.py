"""The `--redis-url` of the risk store: parsed, and shown only with its userinfo redacted.

`redis[s]://[user:password@]host[:port][,host[:port]...][/db][?tls options]`: in sentinel
and cluster modes the host part lists several `host:port` (the sentinels, or the cluster's
seed nodes). The password may hold any character, `/ ? # @ :` included, typed raw or
percent-encoded: the userinfo ends at the LAST `@` of the URL (a host never contains one),
so a raw `/` or `?` in a password is never taken for the path or the query. TLS options
(`ssl_ca_certs`, `ssl_certfile`, `ssl_keyfile`, `ssl_cert_reqs`) go in the query of a
rediss:// URL.

`redact` is the one way a URL reaches a message or a log: everything before that last `@`
becomes `***` (the user name stays visible when a password follows it), whatever the
scheme and even when the URL is malformed. Errors are ValueError with a one-line message
naming --redis-url.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote

SCHEMES = ("redis", "rediss")
DEFAULT_PORT = 6379
# TLS options a rediss:// URL may carry as query parameters.
TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs"})
FLAG = "--redis-url"


def _split(url: str) -> tuple[str, str, str]:
    """(scheme with '://' or "", userinfo or "", the rest) of a URL, however malformed."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        return (scheme + separator, "", rest)
    return (scheme + separator, userinfo, hosts)


def redact(url: str) -> str:
    """`url` with its userinfo hidden: `redis://user:***@host/0`, `redis://***@host/0`."""
    prefix, userinfo, rest = _split(url)
    if not userinfo:
        return url
    user, has_password, _ = userinfo.partition(":")
    shown = f"{quote(unquote(user), safe='')}:***" if has_password and user else "***"
    return f"{prefix}{shown}@{rest}"


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """A parsed redis:// or rediss:// URL; several hosts for sentinel or cluster."""

    tls: bool
    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def redacted(self) -> str:
        """The URL in canonical form with its password replaced by `***`."""
        user = quote(self.username or "", safe="")
        auth = f"{user}:***@" if self.password is not None else (f"{user}@" if user else "")
        hosts = ",".join(host_port(h, p) for h, p in self.nodes)
        return f"{'rediss' if self.tls else 'redis'}://{auth}{hosts}/{self.db}"

    @property
    def secrets(self) -> tuple[str, ...]:
        """Texts that must never reach a message (the password, raw and encoded)."""
        if not self.password:
            return ()
        return tuple({self.password, quote(self.password, safe="")})


def host_port(host: str, port: int) -> str:
    """`host:port`, IPv6 hosts in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse a `--redis-url`; raises ValueError whose one line shows it redacted."""
    shown = f"{FLAG} {redact(url)!r}"
    prefix, userinfo, rest = _split(url)
    scheme = prefix.removesuffix("://")
    if scheme not in SCHEMES:
        raise ValueError(f"{shown}: the scheme must be redis:// or rediss://")
    rest, _, query = rest.partition("?")
    rest = rest.partition("#")[0]
    hosts, _, path = rest.partition("/")
    nodes = [_node(host, shown) for host in hosts.split(",")]
    db = path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"{shown}: the path must be a database number")
    options = dict(parse_qsl(query))
    unknown = sorted(set(options) - TLS_OPTIONS)
    if unknown or (options and scheme != "rediss"):
        raise ValueError(
            f"{shown}: unsupported query options {unknown or sorted(options)}"
            f" (rediss:// URLs take {', '.join(sorted(TLS_OPTIONS))})"
        )
    username, has_password, password = userinfo.partition(":")
    return RedisAddress(
        tls=scheme == "rediss",
        nodes=tuple(nodes),
        username=unquote(username) or None,
        password=unquote(password) if has_password else None,
        db=int(db),
        tls_options=options,
    )


def _node(host: str, shown: str) -> tuple[str, int]:
    name, port = host, str(DEFAULT_PORT)
    if host.startswith("["):  # [ipv6]:port
        name, _, after = host[1:].partition("]")
        port = after.removeprefix(":") or port
    elif host.count(":") == 1:
        name, port = host.split(":")
    if not name or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{shown}: bad host {host!r}")
    return name, int(port)
