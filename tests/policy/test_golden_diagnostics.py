"""Golden files: bad policy sources and the exact diagnostics pdp gives for them.

Each input under `golden/` (a file) sits beside `<name>.expected`: the diagnostic lines
(`severity: file: path (policy id): message`) followed by `refused` or `loaded`.
Regenerate after an intended change with `PDP_UPDATE_GOLDEN=1 pytest tests/policy`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pdp.policy.diagnostics import Diagnostic, PolicySetError
from pdp.policy.load import load_policy_set

GOLDEN = Path(__file__).resolve().parent / "golden"
INPUTS = sorted(p for p in GOLDEN.iterdir() if p.suffix in {".json", ".yaml", ".yml"})


def _render(path: Path) -> str:
    diagnostics: list[Diagnostic]
    try:
        _, diagnostics = load_policy_set(path)
        outcome = "loaded"
    except PolicySetError as exc:
        diagnostics, outcome = exc.diagnostics, "refused"
    return "".join(f"{d}\n" for d in diagnostics) + outcome + "\n"


@pytest.mark.parametrize("source", INPUTS, ids=[p.name for p in INPUTS])
def test_diagnostics_match_golden_file(source: Path) -> None:
    """A bad policy source gives exactly the diagnostics recorded beside it."""
    expected_file = source.with_suffix(".expected")
    actual = _render(source)
    if os.environ.get("PDP_UPDATE_GOLDEN") == "1":
        expected_file.write_text(actual, encoding="utf-8")
    assert expected_file.exists(), f"{expected_file.name} missing: run with PDP_UPDATE_GOLDEN=1"
    assert actual == expected_file.read_text(encoding="utf-8")


def test_every_golden_input_has_an_expectation() -> None:
    """No .expected file is left without its input (renames cannot orphan them)."""
    inputs = {p.stem for p in INPUTS}
    orphans = sorted(p.name for p in GOLDEN.glob("*.expected") if p.stem not in inputs)
    assert not orphans
