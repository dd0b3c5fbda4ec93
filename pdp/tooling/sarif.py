"""SARIF 2.1.0 for `pdp lint --format sarif`, the format code-scanning tools show inline.

Fields follow the OASIS SARIF 2.1.0 schema and what GitHub code scanning reads
(https://docs.github.com/en/code-security/reference/code-scanning/sarif-files/sarif-support):
every rule has `shortDescription`, `fullDescription`, `help` (text and markdown),
`helpUri`, a `defaultConfiguration.level` and `properties.security-severity`; every
result a stable `ruleId`, a `level`, a message, one location (the first policy involved,
at the line of its id, relative to the linted path's folder; the linted path itself for
set-wide findings) and a `partialFingerprints.primaryLocationLineHash` computed from the
rule and the policy ids, so the same finding keeps its identity across runs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pdp import __version__
from pdp.tooling.findings import Finding, LintReport, Rule

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def as_sarif(report: LintReport) -> str:
    """The report as a SARIF 2.1.0 log with one run."""
    rules = list(report.rules)
    index = {rule.id: i for i, rule in enumerate(rules)}
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "pdp lint",
                        "informationUri": "https://github.com/cisagov/ScubaGear",
                        "version": __version__,
                        "rules": [_rule(rule) for rule in rules],
                    }
                },
                "automationDetails": {"id": "pdp-lint/"},
                "results": [_result(report, f, index[f.rule.id]) for f in report.findings],
            }
        ],
    }
    return json.dumps(log, indent=2, ensure_ascii=False) + "\n"


def _rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.id.replace("/", ".").replace("-", "."),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {
            "text": f"{rule.remediation} See {rule.source}",
            "markdown": f"{rule.remediation}\n\nSource: [{rule.source}]({rule.source})",
        },
        "helpUri": rule.source,
        "defaultConfiguration": {"level": rule.severity.value},
        "properties": {
            "tags": ["security", "conditional-access", rule.category],
            "precision": "very-high",
            "security-severity": rule.security_severity or "5.0",
        },
    }


def _result(report: LintReport, finding: Finding, rule_index: int) -> dict[str, Any]:
    root = Path(report.path)
    if finding.policies and finding.policies[0].file:
        first = finding.policies[0]
        uri, line = (root / first.file).as_posix(), first.line
    elif finding.policies:
        uri, line = root.as_posix(), finding.policies[0].line
    else:
        uri, line = root.as_posix(), 1
    ids = ",".join(p.id for p in finding.policies)
    fingerprint = hashlib.sha256(f"{finding.rule.id}|{ids}".encode()).hexdigest()[:32]
    result: dict[str, Any] = {
        "ruleId": finding.rule.id,
        "ruleIndex": rule_index,
        "level": finding.level.value,
        "message": {"text": finding.message},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": uri},
                    "region": {"startLine": line},
                }
            }
        ],
        "partialFingerprints": {"primaryLocationLineHash": fingerprint},
    }
    if len(finding.policies) > 1:
        result["relatedLocations"] = [
            {
                "id": i,
                "physicalLocation": {
                    "artifactLocation": {"uri": (root / p.file).as_posix() if p.file else uri},
                    "region": {"startLine": p.line},
                },
                "message": {"text": p.display_name},
            }
            for i, p in enumerate(finding.policies[1:], 1)
        ]
    return result
