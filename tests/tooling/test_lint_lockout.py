"""`pdp lint` lockout checks, decided by evaluating sign-ins with the engine."""

from __future__ import annotations

from pathlib import Path

from graph_docs import (
    ALL_USERS,
    ALLOWED_COUNTRIES,
    BREAK_GLASS,
    PHISHING_RESISTANT,
    all_users_except,
    countries,
    office,
    policy,
    write_set,
)

from pdp.tooling.findings import Finding, LintReport, Severity
from pdp.tooling.lint import LintOptions, lint_path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ai-workspace"


def lockout(report: LintReport) -> dict[str, list[Finding]]:
    """The lockout findings by rule id."""
    found: dict[str, list[Finding]] = {}
    for finding in report.findings:
        if finding.rule.category == "lockout":
            found.setdefault(finding.rule.id, []).append(finding)
    return found


def test_example_has_no_lockout_and_infers_its_emergency_group() -> None:
    """The example excludes one group from every user policy: it is taken as break-glass."""
    report = lint_path(EXAMPLE)
    assert lockout(report) == {}
    (said,) = report.emergency_access
    assert said.startswith("group 6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e03 (inferred")


def test_a_policy_applying_to_the_emergency_group_is_found(tmp_path: Path) -> None:
    """Broad policies that do not exclude break-glass are found; its own policy is not."""
    block_outside = policy(
        "Block outside the office",
        users=all_users_except(BREAK_GLASS),
        locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        grant=["block"],
    )
    device = policy("Compliant device for everyone", grant=["compliantDevice"])
    mfa = policy("MFA for everyone", grant=["mfa"])
    own = policy(
        "Break-glass: phishing-resistant MFA",
        users={"includeGroups": [BREAK_GLASS]},
        strength=PHISHING_RESISTANT,
    )
    root = write_set(tmp_path, office(), block_outside, device, mfa, own)
    report = lint_path(root, LintOptions(emergency_groups=(BREAK_GLASS,)))
    found = lockout(report)["lockout/emergency-access-not-excluded"]
    by_policy = {f.policies[0].display_name: f.level for f in found}
    assert by_policy == {
        "Compliant device for everyone": Severity.ERROR,
        "MFA for everyone": Severity.WARNING,
    }
    assert found[0].policies[0].line > 1  # points at the policy inside the list file


def test_a_country_allow_list_and_its_complement_block_everyone(tmp_path: Path) -> None:
    """Two blocks that are each reasonable lock out every user together (and break-glass)."""
    inside = policy(
        "Block the allowed countries (a mistake)",
        users=ALL_USERS,
        locations={"includeLocations": [ALLOWED_COUNTRIES]},
        grant=["block"],
    )
    outside = policy(
        "Block outside the allowed countries",
        users=ALL_USERS,
        locations={"includeLocations": ["All"], "excludeLocations": [ALLOWED_COUNTRIES]},
        grant=["block"],
    )
    root = write_set(tmp_path, countries("NL", "DE"), inside, outside)
    found = lockout(lint_path(root, LintOptions(emergency_groups=(BREAK_GLASS,))))
    (everyone,) = found["lockout/everyone-blocked"]
    assert {p.display_name for p in everyone.policies} == {
        "Block the allowed countries (a mistake)",
        "Block outside the allowed countries",
    }
    assert "lockout/emergency-access-blocked" in found
    # Excluding break-glass from both blocks lets it (and so someone) in again.
    for document in (inside, outside):
        document["conditions"]["users"] = all_users_except(BREAK_GLASS)
    found = lockout(lint_path(write_set(tmp_path, countries("NL", "DE"), inside, outside)))
    assert "lockout/everyone-blocked" not in found
    assert "lockout/emergency-access-blocked" not in found


def test_no_emergency_access_at_all_is_a_warning(tmp_path: Path) -> None:
    """With nothing excluded and nothing declared, the broad policies are listed."""
    root = write_set(tmp_path, policy("MFA for everyone", grant=["mfa"]))
    report = lint_path(root)
    (finding,) = lockout(report)["lockout/no-emergency-access"]
    assert finding.level is Severity.WARNING
    assert [p.display_name for p in finding.policies] == ["MFA for everyone"]
    assert report.emergency_access[0].startswith("none")
