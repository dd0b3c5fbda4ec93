"""`pdp report --format html`: a self-contained page, rendered by headless Chromium.

The page is checked as a browser shows it (the DOM after its script ran, from Debian's
`chromium --headless --dump-dom`), not only as text: the charts exist with one bar per
figure, names from the log stay text, and the page needs no network.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from system_tools import require_tool

from pdp.tooling.render_html import html_page

EVIL = '<img src=x onerror="document.title=1">AI66 </script> & friends'


def sample() -> dict[str, Any]:
    """A report document with two hours, three policies, one report-only, travel."""
    return {
        "sources": ["audit.jsonl"],
        "window": {
            "since": "",
            "until": "",
            "first": "2026-11-22T08:00:00Z",
            "last": "2026-11-22T09:59:00Z",
        },
        "records": {
            "lines": 10,
            "inWindow": 10,
            "outsideWindow": 0,
            "unreadable": 0,
            "unreadableExamples": [],
            "failedCalls": {},
        },
        "decisions": {"allow": 6, "challenge": 3, "deny": 1},
        "users": 4,
        "usersEstimated": False,
        "conditionalAccessStatus": {"success": 6, "failure": 4, "notApplied": 0},
        "policies": [
            {
                "id": "p1",
                "displayName": "AI01 MFA",
                "applied": 5,
                "results": {"success": 3, "failure": 2},
            },
            {"id": "p2", "displayName": EVIL, "applied": 1, "results": {"failure": 1}},
            {
                "id": "p3",
                "displayName": "AI10 Legacy clients: block",
                "applied": 2,
                "results": {"reportOnlyFailure": 2},
            },
        ],
        "reportOnly": [
            {
                "id": "p3",
                "displayName": "AI10 Legacy clients: block",
                "wouldBlock": 2,
                "wouldBlockUsers": 1,
                "wouldPrompt": 0,
                "wouldPromptUsers": 0,
                "usersEstimated": False,
                "apps": [{"appId": "mail", "signIns": 2}],
            },
        ],
        "friction": [
            {"appId": "dev", "signIns": 8, "challenged": 3, "denied": 1, "challengeRate": 0.375}
        ],
        "travel": [{"kind": "impossibleTravel", "from": "FR", "to": "US", "detections": 1}],
        "degraded": {"decisions": 0, "share": 0.0},
        "hourly": [
            {"hour": "2026-11-22T08:00Z", "allow": 4, "challenge": 1, "deny": 0},
            {"hour": "2026-11-22T09:00Z", "allow": 2, "challenge": 2, "deny": 1},
        ],
    }


def rendered(page: str, tmp_path: Path) -> str:
    """The DOM Chromium builds from `page`, after its scripts ran."""
    chromium = require_tool("chromium", "chromium")
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    profile = tmp_path / "profile"
    profile.mkdir()
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def chart(dom: str, name: str) -> str:
    """The SVG element of one chart."""
    match = re.search(rf'<svg[^>]*data-chart="{name}".*?</svg>', dom, re.DOTALL)
    assert match, f"no chart {name!r} in the rendered page"
    return match.group(0)


def test_the_page_renders_its_charts_in_chromium(tmp_path: Path) -> None:
    """The script ran under the page's own CSP and drew one bar per figure."""
    dom = rendered(html_page(sample()), tmp_path)
    assert 'data-rendered="true"' in dom
    assert chart(dom, "hourly").count("<rect") == 5  # 4+1, then 2+2+1 (zeros are not drawn)
    values = re.findall(r'data-value="(\d+)"', chart(dom, "policies"))
    assert values == ["3", "2", "1", "2"]
    assert "AI10 Legacy clients: block" in chart(dom, "report-only")
    assert "FR → US" in chart(dom, "travel")
    assert '<div class="tile" data-tile="decisions">decisions<b>10</b></div>' in dom


def test_names_from_the_log_stay_text(tmp_path: Path) -> None:
    """A policy name holding markup is shown as text: no element, no script, in the DOM."""
    dom = rendered(html_page(sample()), tmp_path)
    assert "<img" not in dom
    assert "&lt;img src=x" in dom
    assert "<title>Conditional Access posture</title>" in dom  # the onerror never ran


def test_the_page_is_self_contained() -> None:
    """No external resource, a CSP allowing no network, the data embedded and escaped."""
    clean = sample()
    clean["policies"][1]["displayName"] = "AI66 plain"
    assert not re.search(r"\b(src|href)\s*=", html_page(clean))  # nothing to fetch
    page = html_page(sample())
    assert "default-src 'none'" in page
    assert "connect-src" not in page  # default-src 'none' covers it
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page)
    assert data is not None
    assert "</script>" not in data.group(1)
    assert json.loads(data.group(1))["policies"][1]["displayName"] == EVIL


@pytest.mark.parametrize("empty", ["hourly", "travel", "reportOnly"])
def test_empty_sections_render(tmp_path: Path, empty: str) -> None:
    """A report with nothing in a section still renders, saying so."""
    report = sample()
    report[empty] = []
    dom = rendered(html_page(report), tmp_path)
    assert 'data-rendered="true"' in dom
    assert "Nothing to show." in dom
