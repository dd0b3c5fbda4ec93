"""The request metrics of the ways in, counted by whoever handles the calls.

The series are the grpc-ecosystem ones (`grpc_server_started_total`,
`grpc_server_handled_total`, `grpc_server_handling_seconds`) with the same labels and code
names ("OK", "InvalidArgument", ...), so existing gRPC dashboards work. A handler bumps its
`RpcSeries` directly (plain ints, published when read: `pdp.observability.tally`): the
decision handlers do it themselves, and `pdp.server.calls` wraps every other service's
handlers with it, so no gRPC interceptor runs per call. The forward-auth endpoint counts its
HTTP answers by status code the same way (`HttpSeries`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

import grpc

from pdp.observability.metrics import (
    GRPC_HANDLED,
    GRPC_HANDLING_SECONDS,
    GRPC_STARTED,
    HTTP_REQUESTS,
    HTTP_SECONDS,
    PUBLISHER,
)
from pdp.observability.tally import CountTally, TimeTally

# grpc-go's codes.Code names, which the grpc-ecosystem metrics use as label values.
CODE_NAMES: Final[Mapping[grpc.StatusCode, str]] = {
    code: "OK"
    if code is grpc.StatusCode.OK
    else "Canceled"
    if code is grpc.StatusCode.CANCELLED
    else "".join(part.title() for part in code.name.split("_"))
    for code in grpc.StatusCode
}


class RpcSeries:
    """One method's tallies, bound once; published with every other tally."""

    def __init__(self, grpc_type: str, service: str, method: str) -> None:
        labels = (grpc_type, service, method)
        self.labels = labels
        self.started = CountTally(GRPC_STARTED.labels(*labels))
        self.seconds = TimeTally(GRPC_HANDLING_SECONDS.labels(*labels))
        self.handled: dict[grpc.StatusCode, CountTally] = {}
        PUBLISHER.add(self.publish)

    def done(self, code: grpc.StatusCode, started: float) -> None:
        """Count one call ended with `code`, begun at perf_counter() `started`."""
        self.seconds.observe(time.perf_counter() - started)
        tally = self.handled.get(code)
        if tally is None:
            tally = self.handled[code] = CountTally(
                GRPC_HANDLED.labels(*self.labels, CODE_NAMES[code])
            )
        tally.count += 1

    def publish(self) -> None:
        """Add what was counted since the last publish into the metrics."""
        self.started.publish()
        self.seconds.publish()
        for tally in list(self.handled.values()):
            tally.publish()


class HttpSeries:
    """The forward-auth endpoint's tallies: answers by status code, and their times."""

    def __init__(self) -> None:
        self.seconds = TimeTally(HTTP_SECONDS)
        self.answered: dict[int, CountTally] = {}
        PUBLISHER.add(self.publish)

    def done(self, status: int, started: float) -> None:
        """Count one answer with HTTP `status`, begun at perf_counter() `started`."""
        self.seconds.observe(time.perf_counter() - started)
        tally = self.answered.get(status)
        if tally is None:
            tally = self.answered[status] = CountTally(HTTP_REQUESTS.labels(str(status)))
        tally.count += 1

    def publish(self) -> None:
        """Add what was counted since the last publish into the metrics."""
        self.seconds.publish()
        for tally in list(self.answered.values()):
            tally.publish()
