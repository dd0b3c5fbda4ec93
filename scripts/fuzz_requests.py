"""Fuzz every way in for a while: Evaluate and Check bytes against a real `pdp serve`, CLI JSON.

The same strategies and properties as `tests/fuzz` (whose bounded run is part of the test
suite), run in batches with fresh seeds until the time is up:

    python scripts/fuzz_requests.py                      # 5 minutes over every target
    python scripts/fuzz_requests.py --seconds 60 --targets evaluate,check

Targets: `evaluate` (EvaluateRequest bytes: structured, with protobuf's oddities, mutated),
`check` (structured CheckRequests, subject and target known), `check-bytes` (mutated
CheckRequest bytes), `cli` (`pdp evaluate --request -` on request JSON, in-process).
It prints, per target, how many inputs it tried and each failure found (hypothesis's
shrunk example), then checks that the server is still alive and serving, logged no bug and
wrote a strict JSON audit log. Exit code 1 when anything failed.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

FUZZ = Path(__file__).resolve().parent.parent / "tests" / "fuzz"
sys.path[:0] = [str(FUZZ), str(FUZZ.parent)]  # fuzz_server, and the helpers it imports

from fuzz_server import (  # noqa: E402 - from the tests' folder, added above
    FuzzServer,
    check_check,
    check_cli,
    check_evaluate,
)
from fuzz_strategies import (  # noqa: E402
    Drawn,
    check_bytes,
    check_requests,
    evaluate_bytes,
    request_json,
)
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

TARGETS = ("evaluate", "check", "check-bytes", "cli")


def _runner(target: str, server: FuzzServer, tried: dict[str, int]) -> Callable[[], None]:
    """A hypothesis test for `target` that counts its inputs."""

    def count() -> None:
        tried[target] += 1

    if target == "evaluate":

        @given(evaluate_bytes())
        def run_evaluate(data: bytes) -> None:
            count()
            check_evaluate(server, data)

        return run_evaluate
    if target == "check":

        @given(check_requests())
        def run_check(drawn: Drawn) -> None:
            count()
            check_check(server, drawn.message.SerializeToString(), drawn.complete)

        return run_check
    if target == "check-bytes":

        @given(check_bytes())
        def run_check_bytes(data: bytes) -> None:
            count()
            check_check(server, data, None)

        return run_check_bytes

    @given(request_json())
    def run_cli(text: str) -> None:
        count()
        check_cli(text)

    return run_cli


def main() -> int:
    """Fuzz until --seconds are up; print inputs tried and failures; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--batch", type=int, default=200, help="inputs per seed and target")
    parser.add_argument("--seed", type=int, default=None, help="first seed (default: random)")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    if unknown := set(targets) - set(TARGETS):
        parser.error(f"unknown targets: {', '.join(sorted(unknown))} (known: {TARGETS})")
    rng = random.Random(args.seed)  # noqa: S311 - seeds for hypothesis, not secrets
    tried = dict.fromkeys(targets, 0)
    failures: list[tuple[str, int, str]] = []
    deadline = time.monotonic() + args.seconds
    with tempfile.TemporaryDirectory() as folder, FuzzServer(Path(folder)) as server:
        print(f"pdp serve at {server.address}; fuzzing {', '.join(targets)} for {args.seconds:g} s")
        batch_settings = settings(
            max_examples=args.batch,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        while time.monotonic() < deadline:
            for target in targets:
                if time.monotonic() >= deadline:
                    break
                batch_seed = rng.getrandbits(32)
                test = seed(batch_seed)(batch_settings(_runner(target, server, tried)))
                try:
                    test()
                except Exception as exc:  # noqa: BLE001 - every failure is reported, the run goes on
                    notes = "\n".join(getattr(exc, "__notes__", []))
                    failures.append((target, batch_seed, f"{type(exc).__name__}: {exc}\n{notes}"))
                    print(f"FAILED {target} (seed {batch_seed}): {type(exc).__name__}: {exc}")
        try:
            server.assert_healthy()
            health = "alive, SERVING, no bug logged, audit log strict JSON"
        except AssertionError as exc:
            health = f"NOT healthy: {exc}"
            failures.append(("server", 0, str(exc)))
    print()
    print("| target | inputs tried |")
    print("|---|---|")
    for target, count in tried.items():
        print(f"| {target} | {count:,} |")
    print(f"\ntotal: {sum(tried.values()):,} inputs; server after the run: {health}")
    if failures:
        print(f"\n{len(failures)} failure(s):")
        for target, batch_seed, text in failures:
            print(f"\n--- {target}, seed {batch_seed}\n{text}")
        return 1
    print("no failure found")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
