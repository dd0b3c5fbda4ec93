"""benchmarks/peers: the Cerbos comparison cannot rot, with or without Cerbos installed.

Without Cerbos: the script's pdp and null-server part runs end to end; the Cerbos policy
reads only attributes the request mapping sets; the script installs nothing unless asked.
With Cerbos in the benchmark cache (`cerbos_bench.py --install`; .ci/run installs it):
every request decides the same in Cerbos as in pdp, and a tiny run reports the peer goal.
No figure is asserted.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from bench_tools import BENCHMARKS, require_h2pool
from google.protobuf import json_format
from system_tools import in_ci, require_tool

from pdp.v1 import pdp_pb2 as pb

import drivers  # isort: skip - from benchmarks/, put on the path by bench_tools
import load  # isort: skip

sys.path.insert(0, str(BENCHMARKS / "peers"))
import cerbos  # isort: skip

SCRIPT = BENCHMARKS / "peers" / "cerbos_bench.py"
ROOT = BENCHMARKS.parent
TINY = ["--rounds", "1", "--duration", "0.3", "--warm-up", "0.1", "--streams", "1"]


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        encoding="utf-8",
        check=False,
        timeout=300,
        env=env,
    )


def _policy() -> dict[str, object]:
    document = yaml.safe_load((cerbos.POLICIES / "application.yaml").read_text("utf-8"))
    policy: dict[str, object] = document["resourcePolicy"]
    return policy


def test_policy_uses_only_what_the_mapping_sends() -> None:
    """Every P.attr the policy reads is set for every request; every V.name is defined."""
    policy = _policy()
    assert policy["resource"] == cerbos.KIND
    variables: dict[str, str] = policy["variables"]["local"]  # type: ignore[index]
    rules: list[dict[str, object]] = policy["rules"]  # type: ignore[assignment]
    expressions = [*variables.values()]
    for rule in rules:
        assert set(rule["actions"]) <= set(cerbos.ACTIONS), rule  # type: ignore[arg-type]
        if "condition" in rule:
            expressions.append(rule["condition"]["match"]["expr"])  # type: ignore[index]
    text = "\n".join(expressions)
    used_variables = set(re.findall(r"\bV\.(\w+)", text))
    assert used_variables <= set(variables), used_variables - set(variables)
    read = set(re.findall(r"\bP\.attr\.(\w+)", text))
    optional = set(re.findall(r"has\(P\.attr\.(\w+)\)", text))
    assert optional == {"authenticatedAt"}
    requests = load.load_requests(load.REQUESTS) + load.pool_requests(200, 1)
    for request in requests:
        attr = cerbos.principal_of(request)["attr"]
        assert read - optional <= set(attr), (request.request_id, read - set(attr))
    with_time = [r for r in requests if r.authentication.HasField("authenticated_at")]
    assert with_time
    assert all("authenticatedAt" in cerbos.principal_of(r)["attr"] for r in with_time)


def test_check_request_carries_the_sign_in() -> None:
    """A request becomes one CheckResources call: principal, application, the two actions."""
    request = load.load_requests(load.REQUESTS)[3]  # an analyst at medium sign-in risk
    check = cerbos.check_request(request)
    assert check.principal.id == "grace@contoso.example"
    assert list(check.principal.roles) == ["user"]
    attr = check.principal.attr
    assert attr["signInRisk"].string_value == "medium"
    assert attr["clientAppType"].string_value == "browser"
    assert [v.string_value for v in attr["methods"].list_value.values] == ["password"]
    assert [v.string_value for v in attr["groups"].list_value.values] == [
        "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e02"
    ]
    assert attr["ip"].string_value == "203.0.113.80"
    assert attr["time"].string_value == "2026-11-21T09:00:00Z"
    words = {cerbos.enum_word(pb.ClientAppType, v) for v in pb.ClientAppType.values()}
    legacy = _policy()["variables"]["local"]["legacy_client"]  # type: ignore[index]
    assert set(re.findall(r'"(\w+)"', legacy)) <= words, legacy
    risks = {cerbos.enum_word(pb.RiskLevel, v) for v in pb.RiskLevel.values()}
    assert risks >= {"low", "medium", "high"}
    (entry,) = check.resources
    assert list(entry.actions) == list(cerbos.ACTIONS)
    assert entry.resource.kind == cerbos.KIND
    assert entry.resource.id == "8a4f0c1e-2d3b-4c5a-9e7f-00000000de01"
    assert cerbos.decision_of({"signIn": cerbos.ALLOW, "signInWithoutChallenge": cerbos.DENY}) == (
        "DECISION_CHALLENGE"
    )
    assert cerbos.decision_of({"signIn": cerbos.DENY}) == "DECISION_DENY"


EFFECTS = {cerbos.ALLOW: "EFFECT_ALLOW", cerbos.DENY: "EFFECT_DENY"}


def _result(effects: dict[str, int], reports: list[dict[str, object]]) -> Any:
    _, response_class = cerbos.messages()
    data = {
        "results": [
            {
                "actions": {
                    a: ("EFFECT_ALLOW" if e == 1 else "EFFECT_DENY") for a, e in effects.items()
                },
                "outputs": [{"src": "r", "action": "report", "val": r} for r in reports],
            }
        ]
    }
    return json_format.ParseDict(data, response_class()).results[0]


ALLOWED = {"signIn": cerbos.ALLOW, "signInWithoutChallenge": cerbos.DENY, "report": cerbos.ALLOW}


def test_cerbos_outputs_merge_as_pdp_merges() -> None:
    """Unmet controls group by control, frequencies keep the shortest, `never` wins."""
    answer = cerbos.cerbos_answer(
        _result(
            ALLOWED,
            [
                {"policy": "p1", "grant": "mfa", "met": False},
                {"policy": "p5", "grant": "mfa", "met": False},
                {"policy": "p3", "grant": "compliantDevice", "met": True},
                {
                    "policy": "p6",
                    "signInFrequencyS": 14400,
                    "persistentBrowser": "never",
                    "met": False,
                },
                {
                    "policy": "p7",
                    "signInFrequencyS": 86400,
                    "persistentBrowser": "always",
                    "met": True,
                },
            ],
        )
    )
    assert answer.decision == "DECISION_CHALLENGE"
    assert answer.requirements == {
        ("mfa", frozenset({"p1", "p5"})),
        ("reauthentication", frozenset({"p6"})),
    }
    assert answer.session == (14400, "never")
    assert answer.policies == {
        ("p1", False),
        ("p5", False),
        ("p3", True),
        ("p6", False),
        ("p7", True),
    }


def test_a_block_leaves_no_requirements() -> None:
    """As in pdp, a policy that blocks denies with no requirement to meet."""
    denied = {**ALLOWED, "signIn": cerbos.DENY}
    answer = cerbos.cerbos_answer(
        _result(
            denied,
            [
                {"policy": "p4", "grant": "block", "met": False},
                {"policy": "p1", "grant": "mfa", "met": False},
            ],
        )
    )
    assert answer.decision == "DECISION_DENY"
    assert answer.requirements == frozenset()
    assert answer.session == (None, "")


def test_pdp_answer_reads_the_evaluate_response() -> None:
    """Pdp's response gives the same fields; report-only policies are left out."""
    response = json_format.ParseDict(
        {
            "decision": "DECISION_CHALLENGE",
            "requirements": [{"anyOf": ["mfa"], "policyIds": ["p1", "p5"]}],
            "session": {
                "signInFrequency": {"period": "86400s"},
                "persistentBrowser": "PERSISTENT_BROWSER_ALWAYS",
            },
            "policies": [
                {"id": "p1", "state": "POLICY_STATE_ENABLED", "result": "POLICY_RESULT_FAILURE"},
                {"id": "p7", "state": "POLICY_STATE_ENABLED", "result": "POLICY_RESULT_SUCCESS"},
                {
                    "id": "p10",
                    "state": "POLICY_STATE_ENABLED_FOR_REPORTING_BUT_NOT_ENFORCED",
                    "result": "POLICY_RESULT_REPORT_ONLY_FAILURE",
                },
            ],
        },
        pb.EvaluateResponse(),
    )
    answer = cerbos.pdp_answer(response)
    assert answer == cerbos.Answer(
        "DECISION_CHALLENGE",
        frozenset({("mfa", frozenset({"p1", "p5"}))}),
        (86400, "always"),
        frozenset({("p1", False), ("p7", True)}),
    )
    assert answer.differences(answer) == []
    other = dataclasses.replace(answer, session=(3600, "always"))
    assert answer.differences(other) == ["session: (86400, 'always') != (3600, 'always')"]


def test_nothing_is_installed_unless_asked(tmp_path: Path) -> None:
    """Without Cerbos in the cache the script says how to install it and installs nothing."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = _run("--agreement-only", "--pool", "0", env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "is not installed" in done.stderr
    assert "run with --install" in done.stderr
    assert not (tmp_path / "pdp-bench" / "cerbos").exists()


def test_script_without_cerbos_prints_its_report(tmp_path: Path) -> None:
    """`--without-cerbos` runs pdp and the null server through both request sets, pinned."""
    require_tool("h2load", "nghttp2-client")
    require_h2pool(drivers.cache_dir())
    can_pin = len(os.sched_getaffinity(0)) >= 2 and shutil.which("taskset")
    pin = ["--pin"] if can_pin else []
    done = _run("--without-cerbos", *TINY, "--pool", "1000", *pin)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    if pin:
        assert "servers on CPU 0, load on CPU 1" in out
    assert "Cerbos: not run (--without-cerbos)" in out
    assert "## 12 requests (deploy/ghz/requests.json), h2load" in out
    assert "## 1,000 distinct requests (request_pool.py, seed 1), h2pool" in out
    assert out.count("| pdp | saturation | 12x1 | 1 | ") == 2
    assert "| cerbos |" not in out
    assert out.count("goal: CPU per call null / pdp = ") == 2
    assert "failed requests (load generators): 0" in out


def _require_cerbos() -> Path:
    found = cerbos.binary(drivers.cache_dir())
    if found is None:
        reason = f"Cerbos is not installed: python {SCRIPT.relative_to(ROOT)} --install"
        if in_ci():
            pytest.fail(f"{reason}: .ci/run installs it", pytrace=False)
        pytest.skip(reason)
    return found


def test_cerbos_agrees_with_pdp_and_reports_the_peer_goal() -> None:
    """With Cerbos: same decision on every request of both sets, then all three under load."""
    _require_cerbos()
    require_tool("h2load", "nghttp2-client")
    require_h2pool(drivers.cache_dir())
    done = _run(*TINY, "--pool", "1000")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "agreement, requests: Cerbos answered 12 of 12 as pdp did" in out
    assert "agreement, pool: Cerbos answered 1,000 of 1,000 as pdp did" in out
    for decision in ("ALLOW", "CHALLENGE", "DENY"):
        assert f"'DECISION_{decision}': " in out
    assert out.count("| cerbos | saturation | 12x1 | 1 | ") == 2
    assert re.search(r"\| cerbos \| [\d,]+ req/s \| 12x1 \| 1 \| ", out)
    assert out.count("goal: CPU per decision pdp / cerbos = ") == 2
    assert "failed requests (load generators): 0" in out


def test_ci_installs_the_version_the_script_uses() -> None:
    """.ci/run installs the Cerbos version cerbos.py expects, where it looks for it."""
    script = (ROOT / ".ci" / "run").read_text("utf-8")
    assert f"{cerbos.PACKAGE}@{cerbos.VERSION}" in script
    assert f"pdp-bench/cerbos/{cerbos.VERSION}" in script
