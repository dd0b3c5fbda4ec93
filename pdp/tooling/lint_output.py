"""`pdp lint` output for people (text) and for programs (JSON)."""

from __future__ import annotations

import json
from typing import Any

from pdp.tooling.findings import Finding, LintReport, PolicyRef, Severity


def text(report: LintReport) -> str:
    """Findings, most serious first, then the baseline items and a summary line."""
    lines = [f"pdp lint {report.path}: {report.policies} policies"]
    lines += [f"emergency access: {said}" for said in report.emergency_access]
    for finding in report.findings:
        lines.append("")
        lines.append(f"{finding.level.value:<7} {finding.rule.id}  {finding.rule.title}")
        lines.append(f"        {finding.message}")
        for policy in finding.policies:
            lines.append(f"        policy: {policy.display_name} ({where(report, policy)})")
        lines.append(f"        fix: {finding.rule.remediation}")
        lines.append(f"        see: {finding.rule.source}")
    lines.append("")
    met = sum(r.met for r in report.baseline)
    lines.append(
        f"CISA SCuBA baseline (Conditional Access items): {met} of {len(report.baseline)} met"
    )
    for result in report.baseline:
        mark = "met    " if result.met else "NOT met"
        lines.append(f"  {mark} {result.rule.id:<13} {result.rule.description}")
    counts = ", ".join(
        f"{report.count(s)} {s.value}{'s' if report.count(s) != 1 else ''}" for s in Severity
    )
    lines.append("")
    lines.append(
        f"{len(report.findings)} findings ({counts}); {report.sign_ins} sign-ins evaluated "
        f"in {report.seconds:.2f} s"
    )
    return "\n".join(lines) + "\n"


def where(report: LintReport, policy: PolicyRef) -> str:
    """The file and line of a policy, as the user would open it."""
    file = f"{report.path.rstrip('/')}/{policy.file}" if policy.file else report.path
    return f"{file}:{policy.line}"


def as_json(report: LintReport) -> str:
    """The report as one JSON document."""
    return json.dumps(_report(report), indent=2, ensure_ascii=False) + "\n"


def _report(report: LintReport) -> dict[str, Any]:
    return {
        "path": report.path,
        "policies": report.policies,
        "emergencyAccess": list(report.emergency_access),
        "summary": {s.value: report.count(s) for s in Severity},
        "findings": [_finding(report, f) for f in report.findings],
        "baseline": [
            {"id": r.rule.id, "met": r.met, "signInsEvaluated": r.sign_ins, "source": r.rule.source}
            for r in report.baseline
        ],
        "signInsEvaluated": report.sign_ins,
        "seconds": round(report.seconds, 3),
    }


def _finding(report: LintReport, finding: Finding) -> dict[str, Any]:
    return {
        "id": finding.rule.id,
        "severity": finding.level.value,
        "category": finding.rule.category,
        "title": finding.rule.title,
        "message": finding.message,
        "policies": [
            {
                "id": p.id,
                "displayName": p.display_name,
                "state": p.state,
                "location": where(report, p),
            }
            for p in finding.policies
        ],
        "signIn": finding.sign_in,
        "remediation": finding.rule.remediation,
        "source": finding.rule.source,
    }
