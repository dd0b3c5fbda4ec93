"""Fixtures of the gateway tests: the example gateway config (helpers: envoy_requests.py)."""

from __future__ import annotations

import pytest
from envoy_requests import EXAMPLE_CONFIG

from pdp.gateway.config import GatewayConfig, load_gateway_config


@pytest.fixture
def config() -> GatewayConfig:
    """examples/gateway-config.yaml, loaded."""
    return load_gateway_config(EXAMPLE_CONFIG)
