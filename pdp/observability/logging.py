"""The structlog processor chain, configured once at start-up by the CLI.

Records are JSON lines on stderr by default (one object per event, with ISO-8601 UTC
timestamps, the level and exception tracebacks as structured data); `json=False` renders
them for a human at a terminal instead. Modules log through `structlog.get_logger()` and
never configure anything themselves.
"""

from __future__ import annotations

import logging
import sys

import structlog
from structlog.typing import Processor


def configure_logging(*, json: bool = True, level: int = logging.INFO) -> None:
    """Route every structlog record at `level` or above to stderr, as JSON or for a console."""
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
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
