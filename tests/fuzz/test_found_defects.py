"""Inputs the fuzzers found that broke a property once, kept as regression cases.

Each runs through the same real server and the same property checks as the fuzzers.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz_server import FuzzServer, check_evaluate

from pdp import context_values as cv
from pdp.errors import InvalidRequest
from pdp.v1 import pdp_pb2 as pb

PIPELINE = "5c7d9e1f-0a2b-4c3d-8e9f-0000000c1001"
DEV_APP = "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    """One `pdp serve` for the regression cases."""
    with FuzzServer(tmp_path_factory.mktemp("found")) as running:
        yield running
        running.assert_healthy()


def _request(**network: str) -> bytes:
    return pb.EvaluateRequest(
        subject=pb.Subject(service_principal_id=PIPELINE),
        target=pb.Target(application_id=DEV_APP),
        network=pb.Network(**network),
    ).SerializeToString()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_request(ip_address="\x00"), id="NUL as the client IP was INTERNAL"),
        pytest.param(_request(ip_address="::1\x00"), id="NUL inside an IPv6 address"),
    ],
)
def test_found_evaluate_inputs_keep_their_properties(server: FuzzServer, data: bytes) -> None:
    """The property the input once broke holds (INVALID_ARGUMENT here, not INTERNAL)."""
    check_evaluate(server, data)


def test_an_address_with_a_nul_character_is_an_invalid_request() -> None:
    """socket.inet_pton raises ValueError, not OSError, for a NUL: refused, naming the field."""
    with pytest.raises(InvalidRequest, match=r"network\.ip_address: not an IPv4 or IPv6"):
        cv.ip_address("10.0.0.1\x00", "network.ip_address")
