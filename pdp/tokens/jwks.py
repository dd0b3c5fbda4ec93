"""The issuer's signing keys: a JWKS fetched over verified TLS, cached by `kid`, bounded.

`JwksCache.key(kid)` answers from memory. Only an unknown `kid` (or no keys yet) makes it
fetch, and then at most once per `jwks_min_refresh_s` after a successful fetch (after a
failed one, after a back-off doubling from one second up to that period), so tokens with
made-up `kid`s cannot turn pdp into a load generator against the identity provider. One
fetch runs at a time: concurrent callers wait for the same one. `run` refreshes in the
background every `jwks_refresh_s`, so a rolled key is usually known before a token uses it.

A fetch is bounded: https only, the system's trust store or `jwks_ca_file`, no redirects,
`jwks_timeout_s` from connection to last byte, at most `jwks_max_bytes` and
`jwks_max_keys`. A failed fetch keeps the last good keys (a short outage of the identity
provider does not lock everyone out) until `jwks_max_age_s` after the last success, when
they are dropped and tokens are refused (fail closed). Keys for encryption (`use: enc`),
of an unknown type, without a `kid`, or for an algorithm outside the allow-list are
skipped. Fetching runs on the event loop's own I/O (aiohttp), never blocking it.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import aiohttp
import jwt
import structlog

from pdp.tokens.settings import TokenSettings

FIRST_BACKOFF_S: Final = 1.0
MAX_KID: Final = 256
_log = structlog.get_logger(__name__)


class JwksError(Exception):
    """A JWKS fetch failed; the message says why (never a key)."""


class JwksCache:
    """The signing keys of one issuer, by `kid`."""

    def __init__(
        self, settings: TokenSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._keys: Mapping[str, jwt.PyJWK] = {}
        self._confirmed_at: float | None = None  # the last successful fetch
        self._next_fetch_at = 0.0  # no on-demand fetch before this
        self._backoff_s = FIRST_BACKOFF_S
        self._fetching: asyncio.Future[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ssl = ssl.create_default_context(
            cafile=str(settings.jwks_ca_file) if settings.jwks_ca_file else None
        )
        self.fetches = 0  # fetch attempts, successful or not

    def cached(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid` from memory, if it is known and still young enough."""
        key = self._keys.get(kid)
        if key is None:
            return None
        confirmed = self._confirmed_at
        if confirmed is None or self._clock() - confirmed > self._settings.jwks_max_age_s:
            return None
        return key

    @property
    def has_keys(self) -> bool:
        """Whether any usable key is in memory."""
        confirmed = self._confirmed_at
        return (
            bool(self._keys)
            and confirmed is not None
            and self._clock() - confirmed <= self._settings.jwks_max_age_s
        )

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid`, fetching the JWKS first when it is unknown and a fetch is due."""
        found = self.cached(kid)
        if found is not None:
            return found
        if self._fetching is None and self._clock() < self._next_fetch_at:
            return None
        await self.refresh()
        return self.cached(kid)

    async def refresh(self) -> None:
        """Fetch the JWKS now, or wait for the fetch already running; failures are logged."""
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
        # Shielded: a caller that is cancelled (its client went away) leaves the fetch running.
        await asyncio.shield(self._fetching)

    async def run(self) -> None:
        """Refresh in the background every `jwks_refresh_s` (retrying sooner after a failure)."""
        while True:
            await self.refresh()
            ok = self._backoff_s == FIRST_BACKOFF_S
            await asyncio.sleep(self._settings.jwks_refresh_s if ok else self._backoff_s)

    async def close(self) -> None:
        """Close the HTTP client."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _fetch(self) -> None:
        settings = self._settings
        self.fetches += 1
        try:
            keys = parse_jwks(await self._download(), settings)
        except (JwksError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            now = self._clock()
            self._next_fetch_at = now + self._backoff_s
            _log.warning(
                "jwks_fetch_failed",
                jwks_uri=settings.jwks_uri,
                error=str(exc) or type(exc).__name__,
                retry_in_s=self._backoff_s,
                keys_kept=len(self._keys) if self.has_keys else 0,
            )
            self._backoff_s = min(self._backoff_s * 2, settings.jwks_min_refresh_s)
        else:
            now = self._clock()
            added = sorted(set(keys) - set(self._keys))
            self._keys = keys
            self._confirmed_at = now
            self._next_fetch_at = now + settings.jwks_min_refresh_s
            self._backoff_s = FIRST_BACKOFF_S
            if added:
                _log.info("jwks_keys_added", jwks_uri=settings.jwks_uri, kids=added)
        finally:
            self._fetching = None

    async def _download(self) -> bytes:
        settings = self._settings
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=settings.jwks_timeout_s),
                headers={"Accept": "application/json"},
            )
        limit = settings.jwks_max_bytes
        async with self._session.get(
            settings.jwks_uri, ssl=self._ssl, allow_redirects=False
        ) as reply:
            if reply.status != 200:
                raise JwksError(f"HTTP status {reply.status}")
            if reply.content_length is not None and reply.content_length > limit:
                raise JwksError(f"larger than {limit} bytes ({reply.content_length})")
            body = bytearray()
            async for chunk in reply.content.iter_chunked(65_536):
                body += chunk
                if len(body) > limit:
                    raise JwksError(f"larger than {limit} bytes")
            return bytes(body)


def parse_jwks(body: bytes, settings: TokenSettings) -> dict[str, jwt.PyJWK]:
    """The usable signing keys of a JWKS document, by kid; raises JwksError when unusable."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        raise JwksError("not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError("no keys list")
    if len(entries) > settings.jwks_max_keys:
        raise JwksError(f"more than {settings.jwks_max_keys} keys ({len(entries)})")
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        key = _signing_key(entry, settings.algorithms)
        if key is not None:
            keys[entry["kid"]] = key
    if not keys:
        raise JwksError("no usable signing key")
    return keys


def _signing_key(entry: object, algorithms: tuple[str, ...]) -> jwt.PyJWK | None:
    """A JWK usable to verify tokens under `algorithms`, else None."""
    if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
        return None
    kid = entry.get("kid")
    if not isinstance(kid, str) or not kid or len(kid) > MAX_KID:
        return None
    try:
        key = jwt.PyJWK(entry)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
        return None
    return key if key.algorithm_name in algorithms else None
