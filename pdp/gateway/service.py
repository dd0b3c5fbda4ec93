"""`envoy.service.auth.v3.Authorization/Check` on pdp's gRPC server, over the shared Decider.

Check is Envoy's way in: it reads the clock once, maps the CheckRequest straight to a
`SignInContext` (`check_in`), asks the `Decider` that Evaluate uses, and maps the `Decision`
to a CheckResponse (`check_out`). It hands every call to the `DecisionObserver` once, like
Evaluate, so metrics and the audit log see both doors alike. It never fails the RPC: a
request it cannot translate or decide is answered with a denial (fail closed), so even an
Envoy configured with `failure_mode_allow: true` does not let it through; each such request
is logged once, with its error code and request id, and a bug (INTERNAL) with its traceback.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import grpc
import structlog

from pdp.decide import Decider
from pdp.engine.decision import Decision
from pdp.errors import ErrorCode, error_code
from pdp.gateway.check_in import request_id, to_context
from pdp.gateway.check_out import rejected, to_check_response
from pdp.gateway.config import GatewayConfig
from pdp.gateway.draft import SignInDraft
from pdp.gateway.envoy import auth, auth_grpc
from pdp.observability.decisions import DecisionObserver

EXT_AUTHZ_SERVICE: Final[str] = auth.DESCRIPTOR.services_by_name["Authorization"].full_name
_log = structlog.get_logger(__name__)


class AuthorizationService:
    """The Envoy external authorization servicer (Check), deciding through `decider`."""

    def __init__(self, decider: Decider, config: GatewayConfig, observer: DecisionObserver) -> None:
        self._decider = decider
        self._config = config
        self._observer = observer

    async def Check(  # noqa: N802 - the RPC's name, fixed by Envoy's service definition
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        """Decide one HTTP request; every failure is a denial, never an RPC error."""
        started, created = time.perf_counter(), time.time()
        draft = SignInDraft("", created)
        ctx = None
        decision: Decision | None = None
        code: ErrorCode | None = None
        try:
            rid = draft.request_id = request_id(request)
            ctx, route_contexts = to_context(request, self._config, draft)
            decision = await self._decider.decide(ctx)
            return to_check_response(decision, rid, route_contexts, self._config.step_up.acr_values)
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed: every failure is a denial
            decision = None
            code = error_code(exc)
            rid = draft.request_id
            if code is ErrorCode.INTERNAL:
                _log.exception("check_failed", error_code=code, request_id=rid)
            else:
                _log.warning("check_rejected", error_code=code, request_id=rid, error=str(exc))
            return rejected(code, exc, rid)
        finally:
            self._observer.observe(
                ctx if ctx is not None else draft.described(),
                decision,
                created=created,
                started=started,
                failure=code,
            )


def add_ext_authz(
    server: grpc.aio.Server, decider: Decider, config: GatewayConfig, observer: DecisionObserver
) -> None:
    """Serve Envoy's Authorization service (EXT_AUTHZ_SERVICE) on `server` through `decider`.

    Pass the observer Evaluate uses, so that Check's decisions land in the same metrics and
    audit log.
    """
    servicer = AuthorizationService(decider, config, observer)
    auth_grpc.add_AuthorizationServicer_to_server(servicer, server)
