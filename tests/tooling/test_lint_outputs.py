"""`pdp lint` output: text, JSON, SARIF 2.1.0 (schema-valid), exit codes by --fail-on."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from graph_docs import BREAK_GLASS, PHISHING_RESISTANT, all_users_except, policy, write_set

from pdp.cli import main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "ai-workspace"
CORPUS = ROOT / "tests" / "corpus" / "ca-policies"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-schema-2.1.0.json").read_text())


def lint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run `pdp lint ARGS`; (exit code, stdout)."""
    code = main(["lint", *args])
    return code, capsys.readouterr().out


def test_text_output_lists_findings_and_the_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    """Findings come with the policy file and line, the fix and the source; then the items."""
    code, out = lint(capsys, str(EXAMPLE))
    assert code == 1
    assert "error   MS.AAD.1.1v1  Legacy authentication is not blocked" in out
    assert "policies/10-block-legacy-clients-report-only.json:3)" in out
    assert "fix: Enforce a policy blocking client app types" in out
    assert "see: https://github.com/cisagov/ScubaGear/blob/" in out
    assert "  met     MS.AAD.2.3v1" in out
    assert "CISA SCuBA baseline (Conditional Access items): 1 of 9 met" in out


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    """Every finding has id, severity, policies with their location, remediation, source."""
    code, out = lint(capsys, str(EXAMPLE), "--format", "json", "--fail-on", "never")
    assert code == 0
    report = json.loads(out)
    assert report["summary"] == {"error": 5, "warning": 3, "note": 0}
    first = report["findings"][0]
    assert set(first) >= {"id", "severity", "policies", "remediation", "source", "message"}
    assert first["policies"][0]["location"].endswith(
        "policies/10-block-legacy-clients-report-only.json:3"
    )
    assert [b["id"] for b in report["baseline"] if b["met"]] == ["MS.AAD.2.3v1"]


def test_sarif_is_valid_and_points_at_policy_files(capsys: pytest.CaptureFixture[str]) -> None:
    """The SARIF log validates against the 2.1.0 schema and carries what GitHub reads."""
    code, out = lint(capsys, str(EXAMPLE), "--format", "sarif")
    assert code == 1
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    for rule in rules:
        assert rule["shortDescription"]["text"]
        assert rule["fullDescription"]["text"]
        assert rule["help"]["text"]
        assert float(rule["properties"]["security-severity"]) > 0
    results = run["results"]
    assert len(results) == 8
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert Path(uri).exists()
        assert result["partialFingerprints"]["primaryLocationLineHash"]


def test_fail_on_sets_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 1 only when a finding reaches --fail-on; 2 when the set does not load."""
    root = write_set(
        tmp_path / "set",
        policy(
            "Phishing-resistant MFA",
            users=all_users_except(BREAK_GLASS),
            strength=PHISHING_RESISTANT,
        ),
        policy(
            "Block legacy",
            users=all_users_except(BREAK_GLASS),
            grant=["block"],
            clientAppTypes=["exchangeActiveSync", "other"],
        ),
        policy(
            "Block risk",
            users=all_users_except(BREAK_GLASS),
            grant=["block"],
            userRiskLevels=["high"],
        ),
        policy(
            "Block risky sign-ins",
            users=all_users_except(BREAK_GLASS),
            grant=["block"],
            signInRiskLevels=["high"],
        ),
    )
    out_file = tmp_path / "lint.txt"
    assert lint(capsys, str(root), "--output", str(out_file))[0] == 0  # only SHOULD items left
    assert "3 warnings" in out_file.read_text(encoding="utf-8")
    assert lint(capsys, str(root), "--fail-on", "warning")[0] == 1
    broken = write_set(tmp_path / "broken", {"state": "on", "conditions": {}})
    assert lint(capsys, str(broken))[0] == 2


@pytest.mark.parametrize("folder", ["ConditionalAccess", "ConditionalAccessBaseline"])
def test_the_real_corpus_lints(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Both real policy sets lint; their SARIF stays schema-valid."""
    code, out = lint(capsys, str(CORPUS / folder), "--format", "sarif", "--fail-on", "never")
    assert code == 0
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    assert log["runs"][0]["results"]
