"""A long fuzzing run of the policy loader: `python scripts/fuzz_policies.py --examples 5000`.

Runs the properties of tests/policy/test_fuzz_policies.py (Graph-shaped documents, mutated
real exports, YAML with anchors and tags, raw bytes) with `--examples` inputs each, and
prints how many inputs were tried in all. A failure prints hypothesis's shrunk example and
exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests" / "policy"


def main() -> int:
    """Run every fuzzing property `--examples` times; the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="inputs per property")
    examples = parser.parse_args().examples
    os.environ["PDP_FUZZ_EXAMPLES"] = str(examples)  # read when the test module is imported
    sys.path.insert(0, str(TESTS))
    import policy_fuzzing  # noqa: PLC0415 - after the path is set
    import test_fuzz_policies  # noqa: PLC0415

    started = time.monotonic()
    properties = [
        test_fuzz_policies.test_graph_shaped_documents_load_or_are_refused,
        test_fuzz_policies.test_mutated_real_exports_load_or_are_refused,
        test_fuzz_policies.test_yaml_with_anchors_aliases_and_tags_loads_or_is_refused,
        test_fuzz_policies.test_raw_bytes_load_or_are_refused,
    ]
    failed = False
    for prop in properties:
        before = policy_fuzzing.TRIED[0]
        try:
            prop()
            outcome = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, then the next property runs
            failed, outcome = True, f"FAILED: {type(exc).__name__}: {exc}"
        print(f"{prop.__name__}: {policy_fuzzing.TRIED[0] - before} inputs, {outcome}")
    took = time.monotonic() - started
    verdict = "failures" if failed else "no failure"
    print(f"{policy_fuzzing.TRIED[0]} inputs tried in {took:.0f} s, {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
