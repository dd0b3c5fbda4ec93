"""`envoy.service.auth.v3.Authorization/Check` on pdp's gRPC server, over the shared Decider.

Check is Envoy's way in: it reads the clock once, maps the CheckRequest straight to a
`SignInContext` (`check_in`), asks the `Decider` that Evaluate uses, and maps the `Decision`
to a CheckResponse (`check_out`). It hands every call to the `DecisionObserver` once, like
Evaluate, so metrics and the audit log see both doors alike. It never fails the RPC: a
request it cannot translate or decide is answered with a denial (fail closed), so even an
Envoy configured with `failure_mode_allow: true` does not let it through: undecodable bytes,
an oversize message and a call over the limit of calls at once (pdp's own limits, below
grpc's) are denials too. Each refused request is logged once with its error code and
request id (a bug, INTERNAL, with its traceback), except refusals for load, which are
counted and audited but not logged one by one. The handler takes and returns bytes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Final

import grpc
import structlog
from google.protobuf.message import DecodeError

from pdp.decide import Decider
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode, InvalidRequest, Overloaded, error_code
from pdp.gateway.check_in import to_context
from pdp.gateway.check_out import CheckWriter, rejected
from pdp.gateway.config import GatewayConfig
from pdp.gateway.draft import SignInDraft
from pdp.gateway.envoy import auth
from pdp.gateway.identity import read_token
from pdp.gateway.token_memo import TokenMemo
from pdp.limits import Limits
from pdp.observability.decisions import DecisionObserver
from pdp.observability.rpc_metrics import RpcSeries

EXT_AUTHZ_SERVICE: Final[str] = auth.DESCRIPTOR.services_by_name["Authorization"].full_name
_log = structlog.get_logger(__name__)


class AuthorizationService:
    """The Envoy external authorization servicer (Check), deciding through `decider`."""

    def __init__(
        self,
        decider: Decider,
        config: GatewayConfig,
        observer: DecisionObserver,
        limits: Limits | None = None,
    ) -> None:
        self._decider = decider
        self._config = config
        self._observer = observer
        self._limits = Limits() if limits is None else limits
        self._series = RpcSeries("unary", EXT_AUTHZ_SERVICE, "Check")
        self._tokens = TokenMemo(read_token)
        self._writer = CheckWriter(config.step_up.acr_values)

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register the service on `server`, with bytes in and out of the handler."""
        handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
            "Check": grpc.unary_unary_rpc_method_handler(self.check)
        }
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(EXT_AUTHZ_SERVICE, handlers),)
        )
        server.add_registered_method_handlers(EXT_AUTHZ_SERVICE, handlers)

    async def check(self, body: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        """Decide one HTTP request; every failure is a denial, never an RPC error."""
        started, created = time.perf_counter(), time.time()
        series, limits = self._series, self._limits
        series.started.count += 1
        in_flight = limits.in_flight
        draft = SignInDraft("", created)
        ctx = None
        decision: Decision | None = None
        code: ErrorCode | None = None
        in_flight.count += 1
        try:
            if in_flight.count > in_flight.limit:
                raise Overloaded(f"more than {in_flight.limit} calls at once: retry later")
            if len(body) > limits.max_message_bytes:
                raise Overloaded(f"request larger than {limits.max_message_bytes} bytes")
            request = _parse(body)
            ctx, route_contexts = to_context(request, self._config, draft, self._tokens)
            rid = draft.request_id
            decision = await self._decider.decide(ctx)
            return self._writer.write(decision, rid, route_contexts)
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed: every failure is a denial
            decision = None
            code = error_code(exc)
            if not draft.request_id:
                draft.request_id = uuid.uuid4().hex
            rid = draft.request_id
            if code is ErrorCode.INTERNAL:
                _log.exception("check_failed", error_code=code, request_id=rid)
            elif code is not ErrorCode.RESOURCE_EXHAUSTED:  # counted; no log line per refusal
                _log.warning("check_rejected", error_code=code, request_id=rid, error=str(exc))
            refusal: bytes = rejected(code, exc, rid).SerializeToString()
            return refusal
        finally:
            in_flight.count -= 1
            self._observer.observe(
                ctx if ctx is not None else draft.described(),
                decision,
                created=created,
                started=started,
                failure=code,
            )
            series.done(
                grpc.StatusCode.CANCELLED if code is ErrorCode.CANCELLED else grpc.StatusCode.OK,
                started,
            )


def _parse(body: bytes) -> Any:
    """The CheckRequest in `body`; undecodable bytes are an InvalidRequest (a denial)."""
    try:
        return auth.CheckRequest.FromString(body)
    except DecodeError:
        raise InvalidRequest("request", "not a valid CheckRequest message") from None


def add_ext_authz(
    server: grpc.aio.Server,
    decider: Decider,
    config: GatewayConfig,
    observer: DecisionObserver,
    limits: Limits | None = None,
) -> None:
    """Serve Envoy's Authorization service (EXT_AUTHZ_SERVICE) on `server` through `decider`.

    Pass the observer and the limits Evaluate uses, so that Check's decisions land in the
    same metrics and audit log, and both ways in share one budget of calls at once.
    """
    AuthorizationService(decider, config, observer, limits).add_to_server(server)
