"""`pdp lint` hygiene: never-applying, duplicate, shadowed policies, uncovered exclusions."""

from __future__ import annotations

from pathlib import Path

from graph_docs import BREAK_GLASS, CONTRACTORS, ENGINEERS, all_users_except, policy, write_set

from pdp.tooling.lint import LintOptions, lint_path

OPTIONS = LintOptions(emergency_groups=(BREAK_GLASS,))


def hygiene(tmp_path: Path, *documents: dict[str, object]) -> dict[str, list[str]]:
    """Rule id -> the messages of its findings."""
    report = lint_path(write_set(tmp_path, *documents), OPTIONS)
    found: dict[str, list[str]] = {}
    for f in report.findings:
        if f.rule.category == "hygiene":
            found.setdefault(f.rule.id, []).append(f.message)
    return found


def test_a_policy_excluding_what_it_includes_never_applies(tmp_path: Path) -> None:
    """Include and exclude the same group: no user is in scope."""
    found = hygiene(
        tmp_path,
        policy(
            "Engineers but not engineers",
            users={"includeGroups": [ENGINEERS], "excludeGroups": [ENGINEERS]},
            grant=["mfa"],
        ),
        policy(
            "Android but not Android",
            users=all_users_except(BREAK_GLASS),
            grant=["mfa"],
            platforms={"includePlatforms": ["android"], "excludePlatforms": ["android"]},
        ),
        policy("Fine", users=all_users_except(BREAK_GLASS), grant=["mfa"]),
    )
    assert found["hygiene/never-applies"] == [
        "Engineers but not engineers can never apply: no sign-in matches its condition on "
        "users or workload identities.",
        "Android but not Android can never apply: no sign-in matches its condition on "
        "devicePlatform.",
    ]


def test_duplicates_are_found_by_meaning_not_spelling(tmp_path: Path) -> None:
    """'All' and 'all', controls in another order: the same policy twice."""
    first = policy(
        "MFA or device", users=all_users_except(BREAK_GLASS), grant=["mfa", "compliantDevice"]
    )
    second = policy(
        "Device or MFA",
        users={"includeUsers": ["all"], "excludeGroups": [BREAK_GLASS]},
        grant=["compliantDevice", "mfa"],
        clientAppTypes=["All"],
    )
    different = policy("MFA only", users=all_users_except(BREAK_GLASS), grant=["mfa"])
    (message,) = hygiene(tmp_path, first, second, different)["hygiene/duplicate"]
    assert message.endswith("MFA or device, Device or MFA.")


def test_report_only_shadowed_by_an_enforced_policy(tmp_path: Path) -> None:
    """Report-only MFA for engineers measures nothing under enforced MFA for everyone."""
    enforced = policy("MFA", users=all_users_except(BREAK_GLASS), grant=["mfa"])
    measured = policy(
        "MFA for engineers (measuring)",
        users={"includeGroups": [ENGINEERS]},
        grant=["mfa"],
        state="enabledForReportingButNotEnforced",
    )
    stricter = policy(
        "Device for engineers (measuring)",
        users={"includeGroups": [ENGINEERS]},
        grant=["compliantDevice"],
        state="enabledForReportingButNotEnforced",
    )
    (message,) = hygiene(tmp_path, enforced, measured, stricter)["hygiene/report-only-shadowed"]
    assert message.startswith(
        "MFA for engineers (measuring) (report-only) would change no decision"
    )


def test_excluded_groups_no_policy_includes(tmp_path: Path) -> None:
    """Contractors are excluded and never targeted; engineers are targeted elsewhere."""
    found = hygiene(
        tmp_path,
        policy("MFA", users=all_users_except(BREAK_GLASS, ENGINEERS, CONTRACTORS), grant=["mfa"]),
        policy(
            "Device for engineers", users={"includeGroups": [ENGINEERS]}, grant=["compliantDevice"]
        ),
    )
    assert found["hygiene/excluded-group-not-included"] == [
        f"Group {CONTRACTORS} is excluded from 1 policy and included by no enforced policy."
    ]
