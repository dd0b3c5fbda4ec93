"""The posture report as one JSON-ready document, built from an `Aggregator`.

It is what `pdp report --format json` prints and what the Markdown and HTML renderers
read, so the three cannot disagree. Shape (all counts are sign-ins unless named users):

    window     {since, until, first, last}         the window asked for and the records seen
    records    {lines, inWindow, outsideWindow, unreadable, unreadableExamples, failedCalls}
    decisions  {allow, challenge, deny}, users (distinct), usersEstimated
    conditionalAccessStatus {success, failure, notApplied}
    policies   [{id, displayName, applied, results: {success: n, ...}}]  most applied first
    reportOnly [{id, displayName, wouldBlock, wouldBlockUsers, wouldPrompt, wouldPromptUsers,
                 usersEstimated, apps: [{appId, signIns}]}]
    friction   [{appId, signIns, challenged, denied, challengeRate}]     most challenged first
    travel     [{kind, from, to, detections}]
    degraded   {decisions, share}
    hourly     [{hour, allow, challenge, deny}]
"""

from __future__ import annotations

from typing import Any

from pdp.tooling.aggregate import Aggregator
from pdp.tooling.audit_reader import ReadStats

APPLIED_RESULTS = (
    "success",
    "failure",
    "reportOnlySuccess",
    "reportOnlyFailure",
    "reportOnlyInterrupted",
)
TOP_APPS = 10
TOP_FRICTION = 25


def posture(agg: Aggregator, stats: ReadStats, sources: list[str]) -> dict[str, Any]:
    """The report document (`agg` finished)."""
    decided = sum(agg.decisions.values())
    by_policy: dict[str, dict[str, int]] = {}
    for (policy_id, result), count in agg.results.items():
        by_policy.setdefault(policy_id, {})[result] = count
    policies: list[dict[str, Any]] = [
        {
            "id": policy_id,
            "displayName": agg.names.get(policy_id, policy_id),
            "applied": sum(results.get(r, 0) for r in APPLIED_RESULTS),
            "results": dict(sorted(results.items())),
        }
        for policy_id, results in by_policy.items()
    ]
    policies.sort(key=lambda p: (-p["applied"], p["displayName"]))
    report_only: list[dict[str, Any]] = [
        {
            "id": policy_id,
            "displayName": agg.names.get(policy_id, policy_id),
            "wouldBlock": impact.blocked,
            "wouldBlockUsers": impact.blocked_users.count(),
            "wouldPrompt": impact.prompted,
            "wouldPromptUsers": impact.prompted_users.count(),
            "usersEstimated": impact.blocked_users.estimated or impact.prompted_users.estimated,
            "apps": [{"appId": app, "signIns": n} for app, n in impact.apps.top(TOP_APPS)],
        }
        for policy_id, impact in agg.impact.items()
    ]
    report_only.sort(key=lambda r: (-r["wouldBlock"], -r["wouldPrompt"], r["displayName"]))
    friction: list[dict[str, Any]] = [
        {
            "appId": app,
            "signIns": n,
            "challenged": challenged,
            "denied": denied,
            "challengeRate": round(challenged / n, 4) if n else 0.0,
        }
        for app, (n, challenged, denied) in agg.apps.items()
    ]
    friction.sort(key=lambda f: (-f["challenged"], -f["challengeRate"], f["appId"]))
    return {
        "sources": sources,
        "window": {
            "since": _stamp(agg.since),
            "until": _stamp(agg.until),
            "first": _stamp(agg.first),
            "last": _stamp(agg.last),
        },
        "records": {
            "lines": stats.lines,
            "inWindow": agg.records,
            "outsideWindow": agg.outside_window,
            "unreadable": stats.unreadable,
            "unreadableExamples": stats.examples,
            "failedCalls": dict(agg.failed.most_common()),
        },
        "decisions": {d: agg.decisions.get(d, 0) for d in ("allow", "challenge", "deny")},
        "users": agg.users.count(),
        "usersEstimated": agg.users.estimated,
        "conditionalAccessStatus": {
            s: agg.ca_status.get(s, 0) for s in ("success", "failure", "notApplied")
        },
        "policies": policies,
        "reportOnly": report_only,
        "friction": friction[:TOP_FRICTION],
        "travel": [
            {"kind": kind, "from": before, "to": after, "detections": n}
            for (kind, before, after), n in agg.travel.most_common()
        ],
        "degraded": {
            "decisions": agg.degraded,
            "share": round(agg.degraded / decided, 4) if decided else 0.0,
        },
        "hourly": [
            {
                "hour": f"{hour}:00Z",
                "allow": agg.hours.get((hour, "allow"), 0),
                "challenge": agg.hours.get((hour, "challenge"), 0),
                "deny": agg.hours.get((hour, "deny"), 0),
            }
            for hour in sorted({h for h, _ in agg.hours if h})
        ],
    }


def _stamp(second: str) -> str:
    return f"{second}Z" if second else ""
