"""`pdp report --format html`: one self-contained page with charts, viewable offline.

Everything is inside the file: the styles, the report document (as JSON in a
`<script type="application/json">`, with `<` escaped) and a small script that draws the
charts as inline SVG with the DOM API (text goes in with `textContent`, never as markup, so
names and ids from the log cannot inject anything). A Content-Security-Policy meta tag
allows no network at all and only this page's own script, by its SHA-256 hash. The
summary and tables are rendered here in Python (escaped), so the page reads without
scripts too.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from importlib import resources
from typing import Any

from pdp.tooling.render_markdown import markdown

_SCRIPT = resources.files("pdp.tooling").joinpath("report_charts.js").read_text("utf-8")
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#1d2330;
padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #d6dae3}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border-bottom:1px solid #e3e6ec;padding:.3rem .5rem;text-align:left;vertical-align:top}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.tiles{display:flex;gap:1rem;flex-wrap:wrap}
.tile{border:1px solid #d6dae3;border-radius:6px;padding:.6rem 1rem;min-width:9rem}
.tile b{display:block;font-size:1.4rem}
svg.chart{width:100%;height:auto;margin:.5rem 0}
svg text{font:11px system-ui,sans-serif;fill:#1d2330}
.allow{fill:#2e8b57}.challenge{fill:#e0a100}.deny{fill:#c0392b}.other{fill:#6c7a96}
.legend span{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 1em}
.key-allow{background:#2e8b57}.key-challenge{background:#e0a100}.key-deny{background:#c0392b}
"""


def html_page(report: dict[str, Any]) -> str:
    """The report as one HTML document."""
    data = json.dumps(report, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    digest = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
    style_digest = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
    csp = (
        "default-src 'none'; img-src data:; "
        f"style-src 'sha256-{style_digest}'; script-src 'sha256-{digest}'"
    )
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            "<title>Conditional Access posture</title>\n",
            f"<style>{_STYLE}</style>\n</head><body>\n",
            _body(report),
            f'<script type="application/json" id="report-data">{data}</script>\n',
            f"<script>{_SCRIPT}</script>\n</body></html>\n",
        ]
    )


def _body(report: dict[str, Any]) -> str:
    e = html.escape
    d, w = report["decisions"], report["window"]
    decided = sum(d.values())
    users = f"{'~' if report['usersEstimated'] else ''}{report['users']:,}"
    tiles = [
        ("decisions", f"{decided:,}"),
        ("users", users),
        ("allowed", f"{d['allow']:,}"),
        ("challenged", f"{d['challenge']:,}"),
        ("denied", f"{d['deny']:,}"),
        ("degraded", f"{report['degraded']['decisions']:,}"),
    ]
    parts = [
        "<h1>Conditional Access posture</h1>\n",
        f'<p id="span">Sign-ins {e(w["first"] or "-")} to {e(w["last"] or "-")}, from '
        f"{e(', '.join(report['sources']))}.</p>\n",
        '<div class="tiles">',
        *(f'<div class="tile" data-tile="{k}">{k}<b>{v}</b></div>' for k, v in tiles),
        "</div>\n",
        "<h2>Decisions per hour</h2>",
        '<div class="legend"><span class="key-allow"></span>allow'
        '<span class="key-challenge"></span>challenge<span class="key-deny"></span>deny</div>',
        '<div id="chart-hourly"></div>\n',
        "<h2>Report-only policies: what enforcing them would do</h2>",
        '<div id="chart-report-only"></div>\n',
        _table(
            ["policy", "would block", "of users", "would prompt", "of users", "top apps"],
            [
                [
                    p["displayName"],
                    p["wouldBlock"],
                    p["wouldBlockUsers"],
                    p["wouldPrompt"],
                    p["wouldPromptUsers"],
                    ", ".join(f"{a['appId']} ({a['signIns']})" for a in p["apps"][:3]),
                ]
                for p in report["reportOnly"]
            ],
            "report-only",
        ),
        "<h2>Policies</h2>",
        '<div id="chart-policies"></div>\n',
        "<h2>Friction: challenges per application</h2>",
        '<div id="chart-friction"></div>\n',
        _table(
            ["application", "sign-ins", "challenged", "challenge rate", "denied"],
            [
                [
                    f["appId"] or "(none)",
                    f["signIns"],
                    f["challenged"],
                    f"{f['challengeRate']:.1%}",
                    f["denied"],
                ]
                for f in report["friction"]
            ],
            "friction",
        ),
        "<h2>Travel detections by country pair</h2>",
        '<div id="chart-travel"></div>\n',
        "<h2>Everything, as text</h2>",
        f'<pre id="markdown">{e(markdown(report))}</pre>\n',
    ]
    return "".join(parts)


def _table(head: list[str], rows: list[list[Any]], name: str) -> str:
    e = html.escape
    cells = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{v:,}</td>' if isinstance(v, int) else f"<td>{e(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in rows
    )
    header = "".join(f"<th>{e(h)}</th>" for h in head)
    head_row = f"<thead><tr>{header}</tr></thead>"
    return f'<table data-table="{name}">{head_row}<tbody>{cells}</tbody></table>\n'
