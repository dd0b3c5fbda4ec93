"""Decision scenarios: one YAML file per case in tests/scenarios, run through both evaluators.

Each file pins one behaviour end to end: Graph policy documents in, an EvaluateRequest in,
and the decision, unmet requirements, session controls and per-policy results out. Every
case runs through the fast evaluator (`pdp.engine.evaluate`) and the reference evaluator
(`tests/reference_evaluator.py`); the two must return equal Decisions before the expectations are
checked.

File format (unknown keys at the top level, in `risk`, in `expect` and below it are errors,
so a typo cannot pass silently; JSON-path-like names are Graph's and the proto's):

    description: one sentence: what this scenario pins
    source: https://learn.microsoft.com/...   # optional: the page that documents the rule
    policies:            # Graph documents, written to one JSON file and loaded as a set:
      - {...}            #   conditionalAccessPolicy, ipNamedLocation, countryNamedLocation,
                         #   compliantNetworkNamedLocation, authenticationStrengthPolicy
                         #   objects, or pdp config {"pdp": {"applicationGroups": {...}}}
    risk:                # optional: pdp's own risk assessment (pdp.risk.assessment.Assessment)
      signInRisk: high
    now: "2026-05-01T12:00:00Z"   # optional: evaluation time; default request.time
    request:             # an EvaluateRequest in proto3 JSON (lowerCamelCase field names,
      subject: {...}     #   enum values by name, e.g. PLATFORM_WINDOWS)
    expect:
      decision: allow | challenge | deny
      requirements:      # exact and in order; default []
        - {anyOf: [mfa], policyIds: [p1]}
      session:           # exact; absent keys mean unset: signInFrequency (seconds or
        signInFrequency: 3600   # everyTime), secondarySignInFrequency (the same, for the second
                                # factor only), persistentBrowser, applicationEnforcedRestrictions,
                                # cloudAppSecurity, continuousAccessEvaluation,
                                # secureSignInSession, disableResilienceDefaults
      policies:          # exact: every policy the engine reports, and only those (ids as
        p1: {result: success}   # the engine reports them: lower-case); reasons default []
        p2: {result: notApplied, reasons: [users]}
      messages: [...]    # optional; when given, exact and in order

Time stamps may be written quoted or bare; both are read as text. A request without
`time` and a scenario without `now` are evaluated at 2026-05-01T12:00:00Z.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import pprint
from collections.abc import Hashable, Set
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.json_format import ParseDict
from reference_evaluator import reference_evaluate

from pdp.engine.decision import Decision, Session
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import compile_policy_set
from pdp.policy.load import load_policy_set
from pdp.policy.model import EVERY_TIME
from pdp.risk.assessment import NO_RISK, Assessment
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT_NOW = "2026-05-01T12:00:00Z"

TOP_KEYS = {"description", "source", "policies", "risk", "now", "request", "expect"}
TOP_REQUIRED = {"description", "policies", "request", "expect"}
RISK_KEYS = {"signInRisk"}
EXPECT_KEYS = {"decision", "requirements", "session", "policies", "messages"}
EXPECT_REQUIRED = {"decision", "policies"}
REQUIREMENT_KEYS = {"anyOf", "policyIds"}
POLICY_KEYS = {"result", "reasons"}
SESSION_KEYS = {
    "signInFrequency",
    "secondarySignInFrequency",
    "persistentBrowser",
    "applicationEnforcedRestrictions",
    "cloudAppSecurity",
    "continuousAccessEvaluation",
    "secureSignInSession",
    "disableResilienceDefaults",
}
DECISIONS = {"allow", "challenge", "deny"}


class ScenarioError(Exception):
    """A scenario file that does not follow the format."""


class _Loader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys and keeps time stamps as text."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        """Build a mapping, failing on a key written twice."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One validated scenario file."""

    path: Path
    description: str
    policies: list[Any]
    risk: Assessment
    now: str | None
    request: dict[str, Any]
    expect: dict[str, Any]

    @property
    def name(self) -> str:
        """The file name, as shown in failures."""
        return self.path.relative_to(SCENARIOS.parent.parent).as_posix()


def _keys(where: str, obj: Any, allowed: Set[str], required: Set[str] = frozenset()) -> None:
    if not isinstance(obj, dict):
        raise ScenarioError(f"{where}: expected a mapping, found {type(obj).__name__}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {unknown} (known: {sorted(allowed)})")
    missing = sorted(required - set(obj))
    if missing:
        raise ScenarioError(f"{where}: missing key(s) {missing}")


def _string_list(where: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{where}: expected a list of strings, found {value!r}")
    return value


def load_scenario(path: Path) -> Scenario:
    """Read and validate one scenario file; raise ScenarioError naming the file and key."""
    name = path.name
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - SafeLoader
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{name}: invalid YAML: {exc}") from None
    _keys(name, data, TOP_KEYS, TOP_REQUIRED)
    if not isinstance(data["description"], str) or not data["description"].strip():
        raise ScenarioError(f"{name}: description must be a non-empty sentence")
    source = data.get("source")
    if source is not None and not (isinstance(source, str) and source.startswith("https://")):
        raise ScenarioError(f"{name}: source must be the https:// address of the page it cites")
    if not isinstance(data["policies"], list):
        raise ScenarioError(f"{name}: policies must be a list of Graph documents")
    if not isinstance(data["request"], dict):
        raise ScenarioError(f"{name}: request must be an EvaluateRequest mapping")
    risk = NO_RISK
    if "risk" in data:
        _keys(f"{name}: risk", data["risk"], RISK_KEYS)
        risk = Assessment(sign_in_risk=data["risk"].get("signInRisk", "none"))
    now = data.get("now")
    if now is not None and not isinstance(now, str):
        raise ScenarioError(f"{name}: now must be an RFC 3339 time stamp")
    expect = data["expect"]
    _keys(f"{name}: expect", expect, EXPECT_KEYS, EXPECT_REQUIRED)
    if expect["decision"] not in DECISIONS:
        raise ScenarioError(f"{name}: expect.decision must be one of {sorted(DECISIONS)}")
    requirements = expect.get("requirements", [])
    if not isinstance(requirements, list):
        raise ScenarioError(f"{name}: expect.requirements must be a list")
    for i, requirement in enumerate(requirements):
        where = f"{name}: expect.requirements[{i}]"
        _keys(where, requirement, REQUIREMENT_KEYS, REQUIREMENT_KEYS)
        _string_list(f"{where}.anyOf", requirement["anyOf"])
        _string_list(f"{where}.policyIds", requirement["policyIds"])
    _keys(f"{name}: expect.session", expect.get("session", {}), SESSION_KEYS)
    policies = expect["policies"]
    if not isinstance(policies, dict):
        raise ScenarioError(f"{name}: expect.policies must map policy ids to results")
    for policy_id, outcome in policies.items():
        _keys(f"{name}: expect.policies.{policy_id}", outcome, POLICY_KEYS, {"result"})
        _string_list(f"{name}: expect.policies.{policy_id}.reasons", outcome.get("reasons", []))
    if "messages" in expect:
        _string_list(f"{name}: expect.messages", expect["messages"])
    return Scenario(path, data["description"], data["policies"], risk, now, data["request"], expect)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_scenario(scenario: Scenario, tmp_path: Path) -> tuple[Decision, Decision]:
    """Evaluate a scenario with the fast and the reference evaluator."""
    source = tmp_path / "policies.json"
    # Scenarios name users, groups and apps readably ("user-alice"), not by GUID.
    documents = [{"pdp": {"objectIds": "any"}}, *scenario.policies]
    source.write_text(json.dumps(documents, indent=2), encoding="utf-8")
    policy_set, _ = load_policy_set(source)
    compiled = compile_policy_set(policy_set)
    request = ParseDict(scenario.request, pdp_pb2.EvaluateRequest())
    if scenario.now is not None:
        now = _epoch(scenario.now)
    elif request.HasField("time"):
        now = request.time.seconds + request.time.nanos / 1e9
    else:
        now = _epoch(DEFAULT_NOW)
    ctx = to_context(request, now)
    fast = evaluate(ctx, compiled, scenario.risk, now)
    reference = reference_evaluate(ctx, policy_set, compiled, scenario.risk, now)
    return fast, reference


def session_view(session: Session) -> dict[str, Any]:
    """Session controls as a scenario writes them: only what is set."""
    out: dict[str, Any] = {}
    if session.sign_in_frequency is not None:
        frequency = session.sign_in_frequency
        out["signInFrequency"] = "everyTime" if frequency == EVERY_TIME else frequency
    if session.secondary_sign_in_frequency is not None:
        frequency = session.secondary_sign_in_frequency
        out["secondarySignInFrequency"] = "everyTime" if frequency == EVERY_TIME else frequency
    if session.persistent_browser is not None:
        out["persistentBrowser"] = session.persistent_browser
    if session.application_enforced_restrictions:
        out["applicationEnforcedRestrictions"] = True
    if session.cloud_app_security is not None:
        out["cloudAppSecurity"] = session.cloud_app_security
    if session.continuous_access_evaluation is not None:
        out["continuousAccessEvaluation"] = session.continuous_access_evaluation
    if session.secure_sign_in_session:
        out["secureSignInSession"] = True
    if session.disable_resilience_defaults:
        out["disableResilienceDefaults"] = True
    return out


def decision_view(decision: Decision, *, messages: bool) -> dict[str, Any]:
    """A Decision in the shape of a scenario's `expect` section."""
    out: dict[str, Any] = {
        "decision": decision.verdict.value,
        "requirements": [
            {"anyOf": list(r.any_of), "policyIds": list(r.policy_ids)}
            for r in decision.requirements
        ],
        "session": session_view(decision.session),
        "policies": {
            p.id: {"result": p.result.value, "reasons": [str(r) for r in p.reasons]}
            for p in decision.policies
        },
    }
    if messages:
        out["messages"] = list(decision.messages)
    return out


def expected_view(expect: dict[str, Any]) -> dict[str, Any]:
    """A scenario's `expect` section with its defaults filled in."""
    out: dict[str, Any] = {
        "decision": expect["decision"],
        "requirements": expect.get("requirements", []),
        "session": expect.get("session", {}),
        "policies": {
            str(policy_id): {"result": o["result"], "reasons": o.get("reasons", [])}
            for policy_id, o in expect["policies"].items()
        },
    }
    if "messages" in expect:
        out["messages"] = expect["messages"]
    return out


def _diff(expected: str, actual: str, labels: tuple[str, str]) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), *labels, lineterm="", n=3
    )
    return "\n".join(lines)


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=True, default_flow_style=False, width=100)


SCENARIO_FILES = sorted(SCENARIOS.glob("*.yaml"))


def test_the_corpus_has_scenarios() -> None:
    """The scenario folder is found and holds the corpus (a wrong path must not pass)."""
    assert len(SCENARIO_FILES) >= 60


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=[p.stem for p in SCENARIO_FILES])
def test_scenario(path: Path, tmp_path: Path) -> None:
    """Both evaluators agree on the scenario, and the decision is the one it expects."""
    scenario = load_scenario(path)
    fast, reference = run_scenario(scenario, tmp_path)
    if fast != reference:
        fast_text = pprint.pformat(dataclasses.asdict(fast), width=100)
        reference_text = pprint.pformat(dataclasses.asdict(reference), width=100)
        pytest.fail(
            f"{scenario.name}: the fast and the reference evaluator disagree\n"
            + _diff(reference_text, fast_text, ("reference", "fast")),
            pytrace=False,
        )
    expected = expected_view(scenario.expect)
    actual = decision_view(fast, messages="messages" in scenario.expect)
    if actual != expected:
        pytest.fail(
            f"{scenario.name}: {scenario.description}\n"
            + _diff(_dump(expected), _dump(actual), ("expected", "actual")),
            pytrace=False,
        )


_VALID = {
    "description": "A valid scenario.",
    "policies": [],
    "request": {},
    "expect": {"decision": "allow", "policies": {}},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"descripton": "typo"}, "unknown key(s) ['descripton']"),
        ({"expect": {"decision": "allow", "policies": {}, "sesion": {}}}, "unknown key(s)"),
        ({"expect": {"decision": "permit", "policies": {}}}, "expect.decision"),
        ({"expect": {"decision": "allow"}}, "missing key(s) ['policies']"),
        ({"expect": {"decision": "allow", "policies": {"p": {"reslt": "x"}}}}, "expect.policies.p"),
        (
            {"expect": {"decision": "allow", "policies": {}, "session": {"signInFreq": 1}}},
            "expect.session",
        ),
        (
            {"expect": {"decision": "allow", "policies": {}, "requirements": [{"any": []}]}},
            "expect.requirements[0]",
        ),
        ({"risk": {"signinRisk": "high"}}, "risk: unknown key(s)"),
        ({"source": "learn.microsoft.com/page"}, "source must be the https:// address"),
    ],
)
def test_scenario_format_rejects_typos(
    change: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """A misspelt or unknown key anywhere in a scenario is an error naming the file and key."""
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump({**_VALID, **change}), encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"case\.yaml") as info:
        load_scenario(path)
    assert message in str(info.value)


def test_scenario_format_rejects_duplicate_keys(tmp_path: Path) -> None:
    """A key written twice in a scenario file is an error, not a silent override."""
    path = tmp_path / "case.yaml"
    path.write_text("description: a\ndescription: b\n", encoding="utf-8")
    with pytest.raises(ScenarioError, match=r"case\.yaml: invalid YAML: duplicate key"):
        load_scenario(path)


def test_scenario_format_accepts_the_minimal_file(tmp_path: Path) -> None:
    """The minimal scenario (no risk, now, requirements, session, messages) is accepted."""
    path = tmp_path / "case.yaml"
    path.write_text(yaml.safe_dump(_VALID), encoding="utf-8")
    assert load_scenario(path).expect == _VALID["expect"]
