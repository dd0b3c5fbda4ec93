"""The forward-auth HTTP server: `/authz` on its own address, on the gRPC server's event loop.

aiohttp's low-level server (its C HTTP parser, keep-alive, TLS from the standard `ssl`
module) runs on the same asyncio loop as grpc.aio, so both ways in share the decider, the
risk store's connection pool and the observer, and a decision costs one task either way.
Only `/authz` answers (any method: NGINX sends GET, Traefik may send the original method);
any other path is 404, so a gateway pointed at the wrong URI fails closed.

Bounds: a header line may be up to `MAX_HEADER_BYTES` (32 KiB: an Entra token listing 200
groups is about 12 KB, over NGINX's and aiohttp's 8 KB defaults; NGINX's
`large_client_header_buffers` must allow as much), at most 128 headers; anything larger is
answered 400 by the parser before pdp reads it, which NGINX turns into a 500 (closed).
Idle keep-alive connections stay open an hour, longer than gateways keep theirs (NGINX's
upstream `keepalive_timeout` is 60 s), so pdp never closes one a gateway is about to reuse.
`stop(grace)` stops accepting, lets requests in flight finish for up to `grace` seconds,
then closes every connection. The endpoint shares the decision budget of the gRPC ways in
(`pdp.limits`: over it, a 403 naming `resource_exhausted`, counted, never queued) and counts
its answers by status code (`pdp_http_requests_total`, `pdp_http_request_seconds`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path
from typing import Final

import structlog
from aiohttp import web

from pdp.decide import Decider
from pdp.engine.decision import Decision
from pdp.errors import UNAUTHENTICATED_CODES, ErrorCode, Overloaded, StartupError, error_code
from pdp.forward_auth.answer import decided, rejected
from pdp.forward_auth.request_in import Original, original, peer_address, to_context
from pdp.gateway.check_in import usable_request_id
from pdp.gateway.config import GatewayConfig
from pdp.gateway.draft import SignInDraft
from pdp.gateway.identity import Unauthenticated
from pdp.gateway.signals import Headers
from pdp.limits import Limits
from pdp.observability.decisions import DecisionObserver
from pdp.observability.rpc_metrics import HttpSeries
from pdp.tokens.verify import TokenVerifier

AUTH_PATH: Final = "/authz"
MAX_HEADER_BYTES: Final = 32_768
KEEPALIVE_S: Final = 3600.0
_log = structlog.get_logger(__name__)


class ForwardAuthServer:
    """The forward-auth endpoint, deciding through `decider` under the gateway `config`."""

    def __init__(
        self,
        decider: Decider,
        config: GatewayConfig,
        observer: DecisionObserver,
        listen: str,
        *,
        grace_s: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        shared_port: bool = False,
        limits: Limits | None = None,
    ) -> None:
        identity = config.identity
        if config.tokens is None and identity.require and not identity.headers.enabled:
            raise StartupError(
                "--http-listen: the gateway config must verify tokens (a tokens section) "
                "or name trusted identity headers (identity.headers)"
            )
        self._decider = decider
        self._config = config
        self._observer = observer
        self._listen = listen
        self._ssl = ssl_context
        self._shared_port = shared_port
        self._verifier = TokenVerifier(config.tokens) if config.tokens is not None else None
        self._limits = Limits() if limits is None else limits
        self._series = HttpSeries()
        server = web.Server(
            self._handle,
            access_log=None,
            keepalive_timeout=KEEPALIVE_S,
            max_line_size=MAX_HEADER_BYTES,
            max_field_size=MAX_HEADER_BYTES,
        )
        self._runner = web.ServerRunner(server, shutdown_timeout=grace_s)
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> int:
        """Listen (and start refreshing the issuer's keys); the port listened on."""
        host, _, port = self._listen.rpartition(":")
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host.strip("[]"),
            int(port),
            ssl_context=self._ssl,
            backlog=1024,
            reuse_port=self._shared_port or None,
        )
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise StartupError(
                f"--http-listen: cannot listen on {self._listen}: {exc.strerror or exc}"
            ) from None
        if self._verifier is not None:
            self._refresher = asyncio.create_task(self._verifier.keys.run())
        bound: int = self._runner.addresses[0][1]
        return bound

    async def stop(self) -> None:
        """Stop accepting; requests in flight get the grace period; then close everything."""
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        await self._runner.cleanup()
        if self._verifier is not None:
            await self._verifier.close()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        if request.path != AUTH_PATH:
            self._series.done(404, started)
            return web.Response(status=404)
        in_flight = self._limits.in_flight
        in_flight.count += 1
        try:
            answer = await self._answer(request, started)
        finally:
            in_flight.count -= 1
        self._series.done(answer.status, started)
        return answer

    async def _answer(self, request: web.BaseRequest, started: float) -> web.Response:
        """Decide one forward-auth request; every failure is a refusal (401 or 403)."""
        created = time.time()
        in_flight = self._limits.in_flight
        raw: dict[str, list[str]] = {}
        for name, value in request.raw_headers:
            raw.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        headers = Headers.of(raw)
        rid = usable_request_id(headers.get("x-request-id") or "")
        draft = SignInDraft(rid, created)
        asked = Original(request.method, request.host, "")
        ctx = None
        decision: Decision | None = None
        code: ErrorCode | None = None
        try:
            if in_flight.count > in_flight.limit:  # the budget every way in shares
                raise Overloaded(f"more than {in_flight.limit} calls at once: retry later")
            asked = original(headers, request.method, request.host)
            transport = request.transport
            peer = peer_address(transport.get_extra_info("peername") if transport else None)
            ctx = await to_context(
                headers, peer, asked, config=self._config, verifier=self._verifier, draft=draft
            )
            decision = await self._decider.decide(ctx)
            return decided(decision, rid, self._config.step_up.acr_values)
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed: every failure is a refusal
            decision = None
            code = ErrorCode.UNAUTHENTICATED if isinstance(exc, Unauthenticated) else None
            code = code or error_code(exc)
            if code is not ErrorCode.RESOURCE_EXHAUSTED:  # counted; no log line per refusal
                self._log_rejection(code, exc, rid, asked)
            return rejected(code, exc, rid)
        finally:
            self._observer.observe(
                ctx if ctx is not None else draft.described(),
                decision,
                created=created,
                started=started,
                failure=code,
            )

    @staticmethod
    def _log_rejection(code: ErrorCode, exc: BaseException, rid: str, asked: Original) -> None:
        """One record per refused request; routine token refusals (expiry) at info level."""
        fields = {"error_code": code, "request_id": rid, "host": asked.host[:256]}
        if code is ErrorCode.INTERNAL:
            _log.exception("forward_auth_failed", **fields)
        elif code in UNAUTHENTICATED_CODES:
            _log.info("forward_auth_unauthenticated", **fields)
        else:
            _log.warning("forward_auth_rejected", error=str(exc), **fields)


def tls_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    """The server TLS context of --tls-cert/--tls-key (and --client-ca: mutual TLS)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"--http-listen TLS: cannot use {cert} / {key}: {exc}") from None
    return context
