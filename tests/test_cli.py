"""Tests for the `pdp` command line: validate and evaluate, run in-process through main()."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main


def write_request(folder: Path, data: dict[str, Any] | str) -> Path:
    """Write a request file (a dict as JSON, a str as is) and return its path."""
    path = folder / "request.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_validate_a_good_folder(policy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid set prints only the summary and exits 0."""
    assert main(["validate", "--policies", str(policy_dir)]) == 0
    out = capsys.readouterr().out
    assert out == "4 policies, 1 named locations, 0 errors, 0 warnings\n"


DOUBTFUL: dict[str, Any] = {  # valid, with a warning: it names a location that is not defined
    "id": "warn-1",
    "displayName": "Unknown location",
    "state": "enabled",
    "conditions": {
        "users": {"includeUsers": ["All"]},
        "applications": {"includeApplications": ["All"]},
        "locations": {"includeLocations": ["00000000-0000-0000-0000-00000000dead"]},
    },
    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
}


def test_validate_a_bad_folder(policy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Diagnostics print one per line with file, path and policy, then a count; exit 1."""
    bad = {**DOUBTFUL, "id": "bad-1", "state": "sometimes"}
    bad["conditions"] = {k: v for k, v in DOUBTFUL["conditions"].items() if k != "locations"}
    (policy_dir / "bad.json").write_text(json.dumps(bad), encoding="utf-8")
    (policy_dir / "doubtful.json").write_text(json.dumps(DOUBTFUL), encoding="utf-8")
    assert main(["validate", "--policies", str(policy_dir)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "6 policies, 1 named locations, 1 errors, 1 warnings"
    assert len(lines) == 3
    assert lines[0].startswith("error: bad.json: $.state (policy bad-1): ")
    assert lines[1].startswith("warning: doubtful.json: $ (policy warn-1): named location ")


def test_validate_quiet_hides_warnings(
    policy_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--quiet prints errors only, but the summary still counts the warnings."""
    (policy_dir / "doubtful.json").write_text(json.dumps(DOUBTFUL), encoding="utf-8")
    assert main(["validate", "--quiet", "--policies", str(policy_dir)]) == 0
    out = capsys.readouterr().out
    assert out == "5 policies, 1 named locations, 0 errors, 1 warnings\n"


def test_validate_reads_policies_from_the_environment(
    policy_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """PDP_POLICIES is the default for --policies."""
    monkeypatch.setenv("PDP_POLICIES", str(policy_dir))
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("4 policies")


def test_evaluate_a_request_file(
    policy_dir: Path,
    tmp_path: Path,
    sign_ins: dict[str, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The response is printed as lowerCamelCase proto3 JSON, indented by 2."""
    request = write_request(tmp_path, sign_ins["challenge_mfa"])
    assert main(["evaluate", "--policies", str(policy_dir), "--request", str(request)]) == 0
    out = capsys.readouterr().out
    assert '\n  "decision": "DECISION_CHALLENGE",\n' in out
    response = json.loads(out)
    assert response["requestId"] == "challenge-1"
    assert response["requirements"] == [
        {"anyOf": ["mfa"], "policyIds": ["0000000a-0000-0000-0000-000000000001"]}
    ]
    assert response["time"] == "2025-03-01T09:30:00.250Z"
    assert "reasons" not in json.dumps(response)  # no --explain: only applied policies


def test_evaluate_from_stdin_with_explain(
    policy_dir: Path,
    sign_ins: dict[str, dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--request - reads stdin; --explain adds the policies that did not apply, with reasons."""
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(sign_ins["deny_blocked_group"])))
    args = ["evaluate", "--policies", str(policy_dir), "--request", "-", "--explain"]
    assert main(args) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["decision"] == "DECISION_DENY"
    results = {p["displayName"]: (p["result"], p.get("reasons")) for p in response["policies"]}
    assert results == {
        "Require MFA for all users": ("POLICY_RESULT_SUCCESS", None),
        "Block contractors": ("POLICY_RESULT_FAILURE", None),
        "Compliant device for payroll": ("POLICY_RESULT_NOT_APPLIED", ["application"]),
        "Old block": ("POLICY_RESULT_NOT_ENABLED", None),
    }


def test_evaluate_time_option_is_the_clock_for_a_request_without_time(
    policy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--time stands in for the clock, so a request without a time decides reproducibly."""
    request = write_request(
        tmp_path,
        {"requestId": "t", "subject": {"userId": "u-1"}, "target": {"applicationId": "a-1"}},
    )
    args = ["evaluate", "--policies", str(policy_dir), "--request", str(request)]
    assert main([*args, "--time", "2024-02-29T23:59:59Z"]) == 0
    assert json.loads(capsys.readouterr().out)["time"] == "2024-02-29T23:59:59Z"


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ('{"subjekt": {}}', "subjekt"),
        ('{"subject": {"userId": 7}}', "userId"),
        ("{not json", "request.json"),
        ('{"network": {"ipAddress": "1.2.3"}}', "network.ip_address: not an IPv4 or IPv6"),
        ('{"risk": {"signIn": 17}}', "risk.sign_in: unknown enum number 17"),
    ],
)
def test_evaluate_a_bad_request_exits_2_naming_the_field(
    policy_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_text: str,
    message: str,
) -> None:
    """Unknown fields, wrong types, bad JSON and invalid values go to stderr with exit 2."""
    request = write_request(tmp_path, request_text)
    assert main(["evaluate", "--policies", str(policy_dir), "--request", str(request)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err


def test_evaluate_with_invalid_policies_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A refused policy set prints its diagnostics on stderr and exits 1."""
    broken = tmp_path / "broken.json"
    broken.write_text('{"id": "x", "displayName": "X", "state": "sometimes"}', encoding="utf-8")
    request = write_request(tmp_path, {})
    assert main(["evaluate", "--policies", str(broken), "--request", str(request)]) == 1
    assert "error: broken.json: $.state (policy x): " in capsys.readouterr().err


def test_serve_refuses_a_bad_listen_address(capsys: pytest.CaptureFixture[str]) -> None:
    """--listen must be HOST:PORT; argparse exits 2 saying so."""
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--policies", "p", "--listen", "localhost"])
    assert exited.value.code == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_evaluate_refuses_a_request_without_subject_or_target(
    policy_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`{}` decides nothing: exit 2 naming the missing subject, and no JSON on stdout."""
    request = write_request(tmp_path, {})
    code = main(["evaluate", "--policies", str(policy_dir), "--request", str(request)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert "subject: names neither a user_id nor a service_principal_id" in err
