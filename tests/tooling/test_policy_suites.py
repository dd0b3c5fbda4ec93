"""`pdp test`: suite files are validated like policies, run by the engine, failures diffed."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pdp.cli import main
from pdp.tooling.junit import junit_xml
from pdp.tooling.runner import run_path
from pdp.tooling.suite import SuiteError, load_suite

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SUITES = ROOT / "examples" / "ai-workspace-tests"
POLICIES = ROOT / "examples" / "ai-workspace"
CLOCK = 1_780_000_000.0

GOOD = f"""\
name: small
policies: {POLICIES.as_posix()}
now: "2026-11-21T09:00:00Z"
fixtures:
  ada:
    subject: {{userId: ada@contoso.example, groupIds: [6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01]}}
    target: {{applicationId: 8a4f0c1e-2d3b-4c5a-9e7f-00000000f001}}
    device: {{platform: PLATFORM_MACOS, compliant: true, trustType: TRUST_TYPE_AZURE_AD}}
    clientAppType: CLIENT_APP_TYPE_BROWSER
    authentication: {{methods: [password, microsoftAuthenticatorPush]}}
tests:
  - name: prod from home is blocked
    fixtures: [ada]
    signIn: {{network: {{ipAddress: 192.0.2.200}}}}
    expect:
      decision: deny
      policies: {{a1000000-0000-4000-8000-000000000004: failure}}
"""


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    """Write a suite file into the test's folder."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    """The errors loading `path` reports (it must fail)."""
    with pytest.raises(SuiteError) as caught:
        load_suite(path, path.name, CLOCK)
    return [str(d) for d in caught.value.diagnostics]


def test_example_suites_pass() -> None:
    """The suites shipped with examples/ai-workspace all pass against it."""
    results = run_path(EXAMPLE_SUITES)
    assert len(results) == 2
    assert all(not r.errors for r in results), [str(e) for r in results for e in r.errors]
    assert sum(len(r.cases) for r in results) == 13
    assert [c.case.name for r in results for c in r.cases if not c.passed] == []


def test_a_passing_suite_runs(tmp_path: Path) -> None:
    """A minimal valid suite loads and passes; policies can be named by id."""
    (result,) = run_path(write(tmp_path, GOOD))
    assert result.errors == ()
    assert [c.passed for c in result.cases] == [True]


def test_unknown_keys_are_errors_with_their_line(tmp_path: Path) -> None:
    """A typo in any key (top level, test, expect, requirement, session) is an error."""
    text = GOOD.replace("      decision: deny", "      decison: deny\n      session: {sif: 4h}")
    text = text.replace("name: small", "name: small\npolicy: x")
    found = errors_of(write(tmp_path, text))
    assert any("suite.yaml:2: $.policy: unknown key" in e for e in found), found
    assert any("$.tests[0].expect.decison: unknown key" in e for e in found), found
    assert any("$.tests[0].expect.session.sif: unknown key" in e for e in found), found
    assert any("$.tests[0].expect.decision: expected allow, challenge or deny" in e for e in found)


def test_duplicate_keys_and_bad_yaml_are_errors(tmp_path: Path) -> None:
    """A key written twice is an error naming its line, not a silent overwrite."""
    found = errors_of(write(tmp_path, GOOD + "name: again\n"))
    assert len(found) == 1
    assert "line 18, column 1: key 'name' written twice" in found[0]


def test_bad_requests_fixtures_and_results_are_errors(tmp_path: Path) -> None:
    """Request fields are checked as the server checks them; fixtures and results too."""
    text = GOOD.replace("[ada]", "[ada, bob]").replace("192.0.2.200", "192.0.2.300")
    text = text.replace(": failure}", ": failed}")
    found = errors_of(write(tmp_path, text))
    assert any("$.tests[0].fixtures[1]: unknown fixture 'bob'" in e for e in found), found
    assert any("network.ip_address: not an IPv4 or IPv6 address" in e for e in found), found
    assert any("unknown result 'failed'" in e for e in found), found
    unknown_field = GOOD.replace("ipAddress: 192.0.2.200", "ipAdress: 192.0.2.200")
    assert any("ipAdress" in e for e in errors_of(write(tmp_path, unknown_field, "b.yaml")))


def test_sign_in_frequency_needs_a_fixed_time(tmp_path: Path) -> None:
    """A sign-in with authenticatedAt but no time (nor suite `now`) would depend on today."""
    text = GOOD.replace('now: "2026-11-21T09:00:00Z"\n', "").replace(
        "microsoftAuthenticatorPush]}",
        'microsoftAuthenticatorPush], authenticatedAt: "2026-11-21T08:00:00Z"}',
    )
    found = errors_of(write(tmp_path, text))
    assert any("$.tests[0].signIn.time" in e and "no `now`" in e for e in found), found


def test_unknown_policy_names_stop_the_suite(tmp_path: Path) -> None:
    """A policy named by no id or displayName is an error of the suite, with its line."""
    text = GOOD.replace("a1000000-0000-4000-8000-000000000004", "AI04 Production")
    (result,) = run_path(write(tmp_path, text))
    assert result.cases == ()
    assert "no policy has the id or displayName 'AI04 Production'" in str(result.errors[0])
    assert "suite.yaml:17" in str(result.errors[0])


def test_a_failure_names_each_field_with_a_diff(tmp_path: Path) -> None:
    """A wrong decision and a wrong policy result are both reported, as - expected / + actual."""
    text = GOOD.replace("decision: deny", "decision: allow").replace(": failure}", ": success}")
    (result,) = run_path(write(tmp_path, text))
    (outcome,) = result.cases
    assert not outcome.passed
    fields = {m.field: m.diff() for m in outcome.mismatches}
    assert fields["decision"] == ["- allow", "+ deny"]
    assert fields["policies.a1000000-0000-4000-8000-000000000004"] == ["- success", "+ failure"]


def test_requirements_and_session_are_compared_by_name(tmp_path: Path) -> None:
    """Requirements list policies the way the suite names them; sessions read 4h, everyTime."""
    text = GOOD.replace("192.0.2.200", "203.0.113.25").replace(
        "      decision: deny\n      policies: {a1000000-0000-4000-8000-000000000004: failure}",
        "      decision: allow\n      session: {signInFrequency: 1d}\n"
        "      requirements: [{anyOf: [mfa], policies: ['AI01 ML Engineers: MFA on dev and "
        "prod workspaces']}]",
    )
    (result,) = run_path(write(tmp_path, text))
    fields = {m.field: m for m in result.cases[0].mismatches}
    assert set(fields) == {"requirements", "session"}
    diff = fields["session"].diff()
    assert {"- signInFrequency: 1d", "+ signInFrequency: 4h"} <= set(diff)
    assert fields["requirements"].actual == []


def test_cli_exit_codes_and_junit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 0 all passed, 1 a test failed, 2 a suite cannot run; --junit writes the report."""
    good = write(tmp_path, GOOD, "good.yaml")
    assert main(["test", str(good)]) == 0
    failing = write(tmp_path, GOOD.replace("decision: deny", "decision: allow"), "f.yaml")
    junit = tmp_path / "out.xml"
    assert main(["test", str(failing), "--junit", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  prod from home is blocked" in out
    assert "1 suite, 1 tests: 0 passed, 1 failed" in out
    root = ET.fromstring(junit.read_text(encoding="utf-8"))  # noqa: S314 - our own output
    assert root.tag == "testsuites"
    assert root.get("failures") == "1"
    (case,) = root.iter("testcase")
    failure = case.find("failure")
    assert failure is not None
    assert "decision: expected allow, got deny" in failure.get("message", "")
    invalid = write(tmp_path, "tests: []\n", "bad.yaml")
    assert main(["test", str(invalid)]) == 2
    assert main(["test", str(tmp_path / "missing")]) == 2


def test_junit_reports_a_broken_suite_as_an_error(tmp_path: Path) -> None:
    """A suite that cannot run is an <error> test case, so CI shows it red, not missing."""
    results = run_path(write(tmp_path, "policies: nowhere\ntests: [1]\n"))
    root = ET.fromstring(junit_xml(results))  # noqa: S314 - our own output
    assert root.get("errors") == "1"
    (case,) = root.iter("testcase")
    assert case.find("error") is not None
