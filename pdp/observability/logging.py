"""The structlog processor chain, configured once per process at start-up.

Records are JSON lines on stderr by default (one object per event, with ISO-8601 UTC
timestamps, the level and exception tracebacks as structured data); `json=False` renders
them for a human at a terminal instead. Values bound with `structlog.contextvars` (the
request id of the call being served) are merged into every record; `fields` are added to
every record of the process (e.g. `worker` for one of several workers). Modules log
through `structlog.get_logger()` and never configure anything themselves.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger


def configure_logging(
    *, json: bool = True, level: int = logging.INFO, fields: Mapping[str, object] | None = None
) -> None:
    """Route every structlog record at `level` or above to stderr, as JSON or for a console."""
    processors: list[Processor] = [structlog.contextvars.merge_contextvars]
    if fields:
        processors.append(_AddFields(fields))
    processors += [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if json:
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class _AddFields:
    """A processor adding the same fields to every record."""

    def __init__(self, fields: Mapping[str, object]) -> None:
        self._fields = dict(fields)

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        for key, value in self._fields.items():
            event.setdefault(key, value)
        return event
