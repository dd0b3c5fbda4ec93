"""`envoy.service.auth.v3.Authorization/Check` on pdp's gRPC server, over the shared Decider.

Check only translates: CheckRequest -> EvaluateRequest (`check_in`) -> `Decider.decide`,
the path `Evaluate` takes too -> CheckResponse (`check_out`). It reads the clock once per
call and hands every call to the `DecisionObserver` once, like Evaluate, so metrics and the
audit log see both doors. It never fails the RPC: a request it cannot translate or decide is
answered with a denial (fail closed), so even an Envoy configured with
`failure_mode_allow: true` does not let it through; each such request is logged once, with
its error code and request id, and a bug (INTERNAL) with its traceback.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import grpc
import structlog

from pdp.decide import Decider
from pdp.gateway.check_in import request_id, to_evaluate_request
from pdp.gateway.check_out import rejected, to_check_response
from pdp.gateway.config import GatewayConfig
from pdp.gateway.envoy import auth, auth_grpc
from pdp.observability.decisions import DecisionObserver
from pdp.server.errors import ErrorCode, error_code, failure
from pdp.v1 import pdp_pb2 as pb

EXT_AUTHZ_SERVICE: Final[str] = auth.DESCRIPTOR.services_by_name["Authorization"].full_name
_log = structlog.get_logger(__name__)


class AuthorizationService:
    """The Envoy external authorization servicer (Check), deciding through `decider`."""

    def __init__(
        self, decider: Decider, config: GatewayConfig, observer: DecisionObserver | None = None
    ) -> None:
        self._decider = decider
        self._config = config
        self._observer = observer or DecisionObserver()

    async def Check(  # noqa: N802 - the RPC's name, fixed by Envoy's service definition
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        """Decide one HTTP request; every failure is a denial, never an RPC error."""
        started, created = time.perf_counter(), time.time()
        rid = ""
        evaluate = pb.EvaluateRequest()
        response: pb.EvaluateResponse | None = None
        code: ErrorCode | None = None
        try:
            rid = evaluate.request_id = request_id(request)
            structlog.contextvars.bind_contextvars(request_id=rid)
            translation = to_evaluate_request(request, self._config, rid)
            evaluate = translation.request
            response = await self._decider.decide(evaluate, created)
            return to_check_response(
                response, translation.route_contexts, self._config.step_up.acr_values
            )
        except asyncio.CancelledError:
            code = ErrorCode.CANCELLED
            raise
        except Exception as exc:  # noqa: BLE001 - fail closed: every failure is a denial
            code = error_code(exc)
            if code is ErrorCode.INTERNAL:
                _log.exception("check_failed", error_code=code, request_id=rid)
            else:
                _log.warning("check_rejected", error_code=code, request_id=rid, error=str(exc))
            return rejected(code, exc, rid)
        finally:
            self._observer.observe(
                evaluate,
                response,
                created=created,
                started=started,
                failure=None if code is None else failure(code),
            )


def add_ext_authz(
    server: grpc.aio.Server,
    decider: Decider,
    config: GatewayConfig,
    *,
    observer: DecisionObserver | None = None,
) -> None:
    """Serve Envoy's Authorization service (EXT_AUTHZ_SERVICE) on `server` through `decider`.

    Pass the observer Evaluate uses so that Check's decisions land in the same metrics and
    audit log; without one, a fresh observer counts them (and writes no audit lines).
    """
    servicer = AuthorizationService(decider, config, observer)
    auth_grpc.add_AuthorizationServicer_to_server(servicer, server)
