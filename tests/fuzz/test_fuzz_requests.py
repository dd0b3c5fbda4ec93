"""Property-based fuzzing of every way in against the real server and the real CLI (bounded).

Evaluate and Check get structured requests with edge values and raw mutated bytes, sent to
a `pdp serve` subprocess (`fuzz_server`); `pdp evaluate` gets request JSON in-process. A
few seconds per test here; `scripts/fuzz_requests.py` runs the same properties for longer.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from fuzz_server import POLICIES, FuzzServer, check_check, check_evaluate, names_subject
from fuzz_server import names_target as names_target_of
from fuzz_strategies import Drawn, check_bytes, check_requests, evaluate_bytes, request_json
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdp.cli import main
from pdp.gateway.envoy import auth
from pdp.v1 import pdp_pb2 as pb

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
    @given(st.binary(min_size=1, max_size=64).filter(lambda b: not _is_check_request(b)))
    def run(data: bytes) -> None:
        check_check(server, data, None)

    run()
    server.assert_healthy()


def _is_check_request(data: bytes) -> bool:
    try:
        auth.CheckRequest.FromString(data)
    except Exception:  # noqa: BLE001 - any decode failure
        return False
    return True


def test_cli_evaluate_survives_request_json(tmp_path: Path) -> None:
    """`pdp evaluate --request -`: exit 0 with JSON or 2 with a message, never a traceback."""

    @settings(SUITE, max_examples=40)
    @given(request_json())
    def run(text: str) -> None:
        out, err = io.StringIO(), io.StringIO()
        stdin, sys.stdin = sys.stdin, io.StringIO(text)
        try:
            with redirect_stdout(out), redirect_stderr(err):
                code = main(["evaluate", "--policies", str(POLICIES), "--request", "-"])
        finally:
            sys.stdin = stdin
        assert code in (0, 2), err.getvalue()
        assert "Traceback" not in err.getvalue()
        if code == 2:
            assert out.getvalue() == ""
            assert err.getvalue().startswith("pdp evaluate: ")
            return
        answer = json.loads(out.getvalue())
        if answer["decision"] == "DECISION_ALLOW":
            request = json_format.Parse(text, pb.EvaluateRequest())
            assert names_subject(request), text
            assert names_target_of(request), text

    run()
