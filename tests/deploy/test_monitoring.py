"""The Grafana dashboard and the PrometheusRule's alerts: valid, and about metrics pdp exports.

Every PromQL expression may name only the metrics in KNOWN_METRICS, and each of those must
be declared in pdp.observability.metrics. promtool (Debian package `prometheus`, which
.ci/run installs; without it these tests skip, and under CI fail) checks the rules, runs
their unit tests (deploy/prometheus/alerts.test.yaml) and parses every dashboard query.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from system_tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "pdp-dashboard.json"
PROMETHEUS_RULE = ROOT / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
COUNTERS = (
    "grpc_server_started_total",
    "grpc_server_handled_total",
    "pdp_decisions_total",
    "pdp_policy_results_total",
    "pdp_policy_reloads_total",
    "pdp_risk_store_errors_total",
    "pdp_risk_degraded_decisions_total",
    "pdp_audit_records_dropped_total",
)
GAUGES = ("pdp_policies_loaded", "pdp_policy_set_info")
HISTOGRAMS = ("grpc_server_handling_seconds", "pdp_risk_store_seconds")
KNOWN_METRICS = frozenset(
    {*COUNTERS, *GAUGES, *(f"{h}{s}" for h in HISTOGRAMS for s in ("_bucket", "_sum", "_count"))}
)
KEYWORDS = frozenset(
    {
        "by",
        "without",
        "and",
        "or",
        "unless",
        "bool",
        "on",
        "ignoring",
        "offset",
        "group_left",
        "group_right",
    }
)
REQUIRED_ALERTS = {
    "PdpNoDecisions",
    "PdpHighErrorRate",
    "PdpLatencyP99OverBudget",
    "PdpPolicyReloadFailed",
    "PdpRiskStoreDegraded",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions, labels and keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors, Grafana's $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        if not match[2] and match[1] not in KEYWORDS:
            names.add(match[1])
    return names


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced, so Prometheus can parse it."""
    return expr.replace("$__rate_interval", "5m").replace("$namespace", ".*")


def promtool() -> str:
    """The promtool binary (Debian package prometheus); the structural tests run without it."""
    return require_tool("promtool", "prometheus")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    return loaded


def queries(dashboard: dict[str, Any]) -> dict[str, str]:
    """Every PromQL query of the dashboard: 'panel title/refId' -> expression."""
    out = {
        f"{panel['title']}/{target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    }
    for annotation in dashboard["annotations"]["list"]:
        out[f"annotation {annotation['name']}"] = annotation["expr"]
    return out


def plain_rules_file() -> dict[str, Any]:
    """The PrometheusRule's spec.groups as a plain Prometheus rules file (README's extraction)."""
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text("utf-8"))
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


@pytest.fixture
def alerts_file(tmp_path: Path) -> Path:
    """alerts.yaml (the extracted rules) beside a copy of alerts.test.yaml, which names it."""
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(plain_rules_file(), sort_keys=False), "utf-8")
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    return path


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    """Every rule of the PrometheusRule."""
    return [rule for group in plain_rules_file()["groups"] for rule in group["rules"]]


def test_metric_name_extraction() -> None:
    """The PromQL scanner finds metric names, not functions, labels or variables."""
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket{a="b"}'
        "[$__rate_interval]))) / on (pod) group_left max(pdp_policies_loaded) > bool 0.5"
    )
    assert metric_names(expr) == {"grpc_server_handling_seconds_bucket", "pdp_policies_loaded"}
    assert metric_names("count(count by (version) (pdp_policy_set_info == 1)) > 1e3") == {
        "pdp_policy_set_info"
    }


def test_known_metrics_are_what_pdp_declares() -> None:
    """Every metric the dashboard and alerts may use is declared in pdp.observability.metrics."""
    from prometheus_client.metrics import MetricWrapperBase

    from pdp.observability import metrics

    declared = {
        family.name: family.type
        for value in vars(metrics).values()
        if isinstance(value, MetricWrapperBase)
        for family in value.describe()
    }
    for name in COUNTERS:
        assert declared.get(name.removesuffix("_total")) == "counter", name
    for name in GAUGES:
        assert declared.get(name) == "gauge", name
    for name in HISTOGRAMS:
        assert declared.get(name) == "histogram", name


def test_dashboard_layout(dashboard: dict[str, Any]) -> None:
    """The dashboard has a uid, unique panel ids, a place for every panel, and a data source."""
    assert dashboard["uid"] == "pdp-overview"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_dashboard_queries_name_only_known_metrics(dashboard: dict[str, Any]) -> None:
    """Every query selects at least one metric, and only metrics pdp exports."""
    for where, expr in queries(dashboard).items():
        names = metric_names(expr)
        assert names, where
        assert names <= KNOWN_METRICS, f"{where}: unknown {sorted(names - KNOWN_METRICS)}"
        assert 'namespace=~"$namespace"' in expr, f"{where}: ignores the namespace variable"


def test_dashboard_shows_what_operators_need(dashboard: dict[str, Any]) -> None:
    """Decisions by decision, calls by code, p50/p99, reloads, policies, the risk store."""
    exprs = " ".join(queries(dashboard).values())
    wanted = [
        r"sum by \(decision\) \(rate\(pdp_decisions_total",
        r"sum by \(grpc_code\) \(rate\(grpc_server_handled_total",
        r"histogram_quantile\(0\.5, sum by \(le\) \(rate\(grpc_server_handling_seconds_bucket",
        r"histogram_quantile\(0\.99, sum by \(le\) \(rate\(grpc_server_handling_seconds_bucket",
        r"pdp_policy_reloads_total",
        r"pdp_policies_loaded",
        r"pdp_policy_set_info",
        r"histogram_quantile\(0\.99, sum by \(le\) \(rate\(pdp_risk_store_seconds_bucket",
        r"pdp_risk_store_errors_total",
        r"pdp_risk_degraded_decisions_total",
    ]
    for pattern in wanted:
        assert re.search(pattern, exprs), pattern


def test_dashboard_queries_parse(dashboard: dict[str, Any], tmp_path: Path) -> None:
    """Prometheus parses every dashboard query (promtool, as recording rules)."""
    binary = promtool()
    records = [
        {"record": f"dashboard:query_{index}", "expr": grafana_to_promql(expr)}
        for index, expr in enumerate(queries(dashboard).values())
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    done = subprocess.run(
        [binary, "check", "rules", str(path)], capture_output=True, encoding="utf-8", check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_structure(rules: list[dict[str, Any]]) -> None:
    """Each alert has an expression on known metrics, a severity, a summary and a description."""
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert metric_names(rule["expr"]) <= KNOWN_METRICS, rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}


def test_every_alert_has_a_runbook(rules: list[dict[str, Any]]) -> None:
    """Each runbook_url points at a section of docs/runbooks.md that names the alert."""
    text = RUNBOOKS.read_text("utf-8")
    sections = dict(re.findall(r"^## ([a-z0-9-]+)\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for rule in rules:
        url = rule["annotations"]["runbook_url"]
        path, _, anchor = url.partition("#")
        assert path == "docs/runbooks.md", url
        assert anchor in sections, f"{rule['alert']}: no section '## {anchor}' in {path}"
        assert f"`{rule['alert']}`" in sections[anchor], anchor


def test_alert_rules_pass_promtool_check(alerts_file: Path) -> None:
    """The rules extracted from the PrometheusRule pass `promtool check rules`."""
    done = subprocess.run(
        [promtool(), "check", "rules", str(alerts_file)],
        capture_output=True,
        encoding="utf-8",
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_unit_tests(alerts_file: Path, rules: list[dict[str, Any]]) -> None:
    """Every alert fires on the series of its unit test, and a healthy pdp raises none."""
    done = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        encoding="utf-8",
        check=False,
        cwd=alerts_file.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERT_TESTS.read_text("utf-8")))
    assert tested == {rule["alert"] for rule in rules}, "every alert needs a unit test"
