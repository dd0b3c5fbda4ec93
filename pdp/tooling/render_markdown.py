"""`pdp report --format markdown`: the posture document as Markdown tables."""

from __future__ import annotations

from typing import Any


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown (GitHub-flavoured tables)."""
    w, r, d = report["window"], report["records"], report["decisions"]
    decided = sum(d.values())
    out = ["# Conditional Access posture", ""]
    span = f"{w['first'] or '-'} to {w['last'] or '-'}"
    asked = (
        f" (window {w['since'] or 'open'} to {w['until'] or 'open'})"
        if (w["since"] or w["until"])
        else ""
    )
    out.append(f"Sign-ins {span}{asked}, from {', '.join(report['sources'])}.")
    out.append("")
    users = f"{'~' if report['usersEstimated'] else ''}{report['users']:,}"
    out.append(
        f"{decided:,} decisions for {users} users: {d['allow']:,} allowed, "
        f"{d['challenge']:,} challenged ({_pct(d['challenge'], decided)}), "
        f"{d['deny']:,} denied ({_pct(d['deny'], decided)})."
    )
    failed = sum(r["failedCalls"].values())
    extra = [
        f"{failed:,} failed calls ({_reasons(r['failedCalls'])})" if failed else "",
        f"{r['outsideWindow']:,} records outside the window" if r["outsideWindow"] else "",
        f"{r['unreadable']:,} unreadable lines" if r["unreadable"] else "",
    ]
    if any(extra):
        out.append("Also: " + "; ".join(e for e in extra if e) + ".")
    out += [f"- unreadable: `{example}`" for example in r["unreadableExamples"]]
    out += ["", "## Report-only policies: what enforcing them would do", ""]
    if report["reportOnly"]:
        out.append("| policy | would block | of users | would prompt | of users | top apps |")
        out.append("|---|---:|---:|---:|---:|---|")
        for p in report["reportOnly"]:
            apps = ", ".join(f"{a['appId']} ({a['signIns']:,})" for a in p["apps"][:3])
            out.append(
                f"| {_cell(p['displayName'])} | {p['wouldBlock']:,} | {p['wouldBlockUsers']:,} "
                f"| {p['wouldPrompt']:,} | {p['wouldPromptUsers']:,} | {apps} |"
            )
    else:
        out.append("No report-only policy would have blocked or prompted a sign-in.")
    out += ["", "## Policies", ""]
    out.append(
        "| policy | applied | success | failure | report-only success | would block "
        "| would prompt |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    for p in report["policies"]:
        res = p["results"]
        out.append(
            f"| {_cell(p['displayName'])} | {p['applied']:,} | {res.get('success', 0):,} "
            f"| {res.get('failure', 0):,} | {res.get('reportOnlySuccess', 0):,} "
            f"| {res.get('reportOnlyFailure', 0):,} | {res.get('reportOnlyInterrupted', 0):,} |"
        )
    out += ["", "## Friction: challenges per application", ""]
    out.append("| application | sign-ins | challenged | challenge rate | denied |")
    out.append("|---|---:|---:|---:|---:|")
    for f in report["friction"]:
        out.append(
            f"| {_cell(f['appId'] or '(none)')} | {f['signIns']:,} | {f['challenged']:,} "
            f"| {f['challengeRate']:.1%} | {f['denied']:,} |"
        )
    out += ["", "## Travel detections", ""]
    if report["travel"]:
        out.append("| detection | from | to | sign-ins |")
        out.append("|---|---|---|---:|")
        for t in report["travel"]:
            out.append(f"| {t['kind']} | {t['from']} | {t['to']} | {t['detections']:,} |")
    else:
        out.append("None.")
    g = report["degraded"]
    out += [
        "",
        "## Degraded decisions",
        "",
        f"{g['decisions']:,} decisions ({g['share']:.2%}) were made without pdp's risk state.",
        "",
    ]
    return "\n".join(out)


def _pct(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "0.0%"


def _reasons(failed: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n:,}" for reason, n in failed.items())


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
