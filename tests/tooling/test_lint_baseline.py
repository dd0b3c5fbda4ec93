"""`pdp lint` baseline items: decided by the sign-ins each is about, as Entra would decide them.

Several cases are ones where ScubaGear's one-policy pattern match and an evaluation disagree
(joint coverage, split legacy blocks, flag strings, trusted-location gaps).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graph_docs import (
    BREAK_GLASS,
    ENGINEERS,
    PHISHING_RESISTANT,
    all_users_except,
    office,
    policy,
    write_set,
)

from pdp.tooling.findings import LintReport
from pdp.tooling.lint import LintOptions, lint_path

GROUPS = LintOptions(emergency_groups=(BREAK_GLASS,))


def run(tmp_path: Path, *documents: dict[str, Any], options: LintOptions = GROUPS) -> LintReport:
    """Lint `documents` as one set."""
    return lint_path(write_set(tmp_path, *documents), options)


def met(report: LintReport) -> dict[str, bool]:
    """Each baseline item's verdict."""
    return {r.rule.id: r.met for r in report.baseline}


def finding(report: LintReport, item: str) -> str:
    """The message of the finding for `item` (there must be one)."""
    (message,) = [f.message for f in report.findings if f.rule.id == item]
    return message


def test_items_are_pinned_with_versioned_ids() -> None:
    """The items and their versions are those of the pinned ScubaGear baseline."""
    from pdp.tooling.baseline import RULES

    assert [r.id for r in RULES] == [
        "MS.AAD.1.1v1",
        "MS.AAD.2.1v1",
        "MS.AAD.2.3v1",
        "MS.AAD.3.1v1",
        "MS.AAD.3.2v2",
        "MS.AAD.3.6v1",
        "MS.AAD.3.7v1",
        "MS.AAD.3.8v1",
        "MS.AAD.3.9v1",
    ]
    assert all("ScubaGear/blob/4d34e9a" in r.source for r in RULES)


def test_mfa_covered_jointly_by_two_policies_is_met(tmp_path: Path) -> None:
    """Everyone but engineers, plus engineers: every user needs MFA (ScubaGear fails this)."""
    report = run(
        tmp_path,
        policy("MFA", users=all_users_except(BREAK_GLASS, ENGINEERS), grant=["mfa"]),
        policy("MFA for engineers", users={"includeGroups": [ENGINEERS]}, grant=["mfa"]),
    )
    assert met(report)["MS.AAD.3.2v2"]
    assert not met(report)["MS.AAD.3.1v1"]  # MFA is not phishing-resistant


def test_an_uncovered_exclusion_names_who_escapes(tmp_path: Path) -> None:
    """Excluding a group nobody else covers fails, naming the group and the policy."""
    report = run(
        tmp_path, policy("MFA", users=all_users_except(BREAK_GLASS, ENGINEERS), grant=["mfa"])
    )
    message = finding(report, "MS.AAD.3.2v2")
    assert f"a member of group {ENGINEERS}" in message
    assert "Not applied only because of who signs in: MFA." in message


def test_report_only_does_not_count(tmp_path: Path) -> None:
    """A report-only MFA policy does not meet the item; the finding names it."""
    report = run(
        tmp_path,
        policy(
            "MFA (measuring)",
            users=all_users_except(BREAK_GLASS),
            grant=["mfa"],
            state="enabledForReportingButNotEnforced",
        ),
    )
    assert not met(report)["MS.AAD.3.2v2"]
    assert "Report-only, so not counted: MFA (measuring)." in finding(report, "MS.AAD.3.2v2")


def test_a_trusted_location_gap_fails(tmp_path: Path) -> None:
    """MFA everywhere but the office lets office sign-ins in with a password (a gap)."""
    report = run(
        tmp_path,
        office(),
        policy(
            "MFA outside the office",
            users=all_users_except(BREAK_GLASS),
            grant=["mfa"],
            locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        ),
    )
    assert "(in Office)" in finding(report, "MS.AAD.3.2v2")


def test_legacy_blocks_split_in_two_policies_are_met(tmp_path: Path) -> None:
    """Exchange ActiveSync and other clients blocked by two policies: legacy is blocked."""
    eas = policy(
        "Block EAS",
        users=all_users_except(BREAK_GLASS),
        grant=["block"],
        clientAppTypes=["exchangeActiveSync"],
    )
    other = policy(
        "Block other",
        users=all_users_except(BREAK_GLASS),
        grant=["block"],
        clientAppTypes=["other"],
    )
    assert met(run(tmp_path, eas, other))["MS.AAD.1.1v1"]
    assert not met(run(tmp_path, eas))["MS.AAD.1.1v1"]


def test_device_code_flow_in_a_flags_string_is_met(tmp_path: Path) -> None:
    """'deviceCodeFlow,authenticationTransfer' blocks the device code flow (ScubaGear: fail)."""
    report = run(
        tmp_path,
        policy(
            "Block transfer flows",
            users=all_users_except(BREAK_GLASS),
            grant=["block"],
            authenticationFlows={"transferMethods": "deviceCodeFlow,authenticationTransfer"},
        ),
    )
    assert met(report)["MS.AAD.3.9v1"]


def test_phishing_resistant_strength_for_all_meets_the_mfa_items(tmp_path: Path) -> None:
    """One phishing-resistant policy for everyone meets 3.1, 3.2 and 3.6 (admins included)."""
    report = run(
        tmp_path,
        policy(
            "Phishing-resistant MFA",
            users=all_users_except(BREAK_GLASS),
            strength=PHISHING_RESISTANT,
        ),
    )
    verdicts = met(report)
    assert verdicts["MS.AAD.3.1v1"]
    assert verdicts["MS.AAD.3.2v2"]
    assert verdicts["MS.AAD.3.6v1"]


def test_only_declared_emergency_access_is_an_approved_exclusion(tmp_path: Path) -> None:
    """The same exclusion passes when it is the declared break-glass group, fails otherwise."""
    pr = policy(
        "Phishing-resistant MFA", users=all_users_except(BREAK_GLASS), strength=PHISHING_RESISTANT
    )
    assert met(run(tmp_path, pr))["MS.AAD.3.1v1"]
    other = LintOptions(emergency_groups=(ENGINEERS,))
    report = run(tmp_path, pr, options=other)
    assert f"group {BREAK_GLASS}" in finding(report, "MS.AAD.3.1v1")


def test_risk_is_met_by_block_only(tmp_path: Path) -> None:
    """CISA wants high user risk blocked: Microsoft's MFA + password change template fails."""
    block = policy(
        "Block high user risk",
        users=all_users_except(BREAK_GLASS),
        grant=["block"],
        userRiskLevels=["high"],
    )
    template = policy(
        "Password change for high user risk",
        users=all_users_except(BREAK_GLASS),
        grant=["mfa", "passwordChange"],
        operator="AND",
        userRiskLevels=["high"],
    )
    assert met(run(tmp_path, block))["MS.AAD.2.1v1"]
    assert not met(run(tmp_path, template))["MS.AAD.2.1v1"]


def test_managed_devices(tmp_path: Path) -> None:
    """Compliant or hybrid-joined meets 3.7; 'compliant or MFA' lets unmanaged devices in."""
    managed = policy(
        "Managed device",
        users=all_users_except(BREAK_GLASS),
        grant=["compliantDevice", "domainJoinedDevice"],
    )
    either = policy(
        "Managed device or MFA",
        users=all_users_except(BREAK_GLASS),
        grant=["compliantDevice", "mfa"],
    )
    assert met(run(tmp_path, managed))["MS.AAD.3.7v1"]
    assert not met(run(tmp_path, either))["MS.AAD.3.7v1"]
    registration = policy(
        "Register security info on managed devices",
        users=all_users_except(BREAK_GLASS),
        apps={"includeUserActions": ["urn:user:registersecurityinfo"]},
        grant=["compliantDevice"],
    )
    verdicts = met(run(tmp_path, registration))
    assert verdicts["MS.AAD.3.8v1"]
    assert not verdicts["MS.AAD.3.7v1"]
