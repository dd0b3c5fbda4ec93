"""Property-based fuzzing of every way in against the real server and the real CLI (bounded).

Evaluate and Check get structured requests with edge values and raw mutated bytes, sent to
a `pdp serve` subprocess (`fuzz_server`); `pdp evaluate` gets request JSON in-process. A
few seconds per test here; `scripts/fuzz_requests.py` runs the same properties for longer.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz_server import FuzzServer, check_check, check_cli, check_evaluate, is_check_request
from fuzz_strategies import Drawn, check_bytes, check_requests, evaluate_bytes, request_json
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SUITE = settings(
    max_examples=60,
    deadline=None,  # a real server on a shared machine: time is not the property
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the suite's run is the same every time; the script explores
    database=None,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    """One `pdp serve` for the module's fuzzers."""
    with FuzzServer(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


def test_evaluate_survives_structured_and_mutated_request_bytes(server: FuzzServer) -> None:
    """Never UNKNOWN/INTERNAL; never an allow without subject and target; still serving."""

    @SUITE
    @given(evaluate_bytes())
    def run(data: bytes) -> None:
        check_evaluate(server, data)

    run()
    server.assert_healthy()


def test_check_survives_structured_requests_and_never_allows_one_without_subject_or_target(
    server: FuzzServer,
) -> None:
    """Every CheckRequest is answered (no RPC error); one lacking subject or target is denied."""

    @SUITE
    @given(check_requests())
    def run(drawn: Drawn) -> None:
        check_check(server, drawn.message.SerializeToString(), drawn.complete)

    run()
    server.assert_healthy()


def test_check_survives_mutated_request_bytes(server: FuzzServer) -> None:
    """Mutated CheckRequest bytes: never UNKNOWN/INTERNAL; parseable ones always answered."""

    @SUITE
    @given(check_bytes())
    def run(data: bytes) -> None:
        check_check(server, data, None)

    run()
    server.assert_healthy()


def test_check_denies_bytes_that_are_no_check_request(server: FuzzServer) -> None:
    """Bytes that are no CheckRequest at all: a denial, never an RPC error or an allow."""

    @settings(SUITE, max_examples=30)
    @given(st.binary(min_size=1, max_size=64).filter(lambda b: not is_check_request(b)))
    def run(data: bytes) -> None:
        check_check(server, data, None)

    run()
    server.assert_healthy()


def test_cli_evaluate_survives_request_json() -> None:
    """`pdp evaluate --request -`: exit 0 with JSON or 2 with a message, never a traceback."""

    @settings(SUITE, max_examples=40)
    @given(request_json())
    def run(text: str) -> None:
        check_cli(text)

    run()
