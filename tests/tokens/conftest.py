"""Fixtures of the token tests: structlog as its defaults, whatever an earlier test configured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """The JWKS cache logs its fetches: to this test's stdout, not a stream a CLI test closed."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
