"""Run policy test suites: evaluate each named sign-in with the engine, compare, explain.

Each suite's policy set is loaded and compiled once (and shared by suites naming the same
path); every sign-in is evaluated with `explain`, so that policies that did not apply can
be expected too (`notApplied`, `reportOnlyNotApplied`, `notEnabled`). A failed test
carries one `Mismatch` per field that differs, with a line diff of expected and actual
written the way the suite writes them (policies by the name the suite used for them).
"""

from __future__ import annotations

import dataclasses
import difflib
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pdp.engine.decision import Decision, Session
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet, compile_policy_set
from pdp.policy.diagnostics import Diagnostic, PolicySetError, Severity
from pdp.policy.load import load_policy_set
from pdp.policy.model import Policy
from pdp.tooling.suite import (
    Expectation,
    Suite,
    SuiteError,
    TestCase,
    find_suites,
    load_suite,
    policy_refs,
)


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One field whose actual value differs from the expected one."""

    field: str  # decision, requirements, session, messages, policies.<reference>
    expected: Any
    actual: Any

    def summary(self) -> str:
        """One line: the field, what was expected and what came."""
        return f"{self.field}: expected {_inline(self.expected)}, got {_inline(self.actual)}"

    def diff(self) -> list[str]:
        """Expected and actual as lines, `-` expected, `+` actual, ` ` common."""
        lines = difflib.ndiff(_lines(self.expected), _lines(self.actual))
        return [line for line in lines if not line.startswith("? ")]


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one test."""

    case: TestCase
    mismatches: tuple[Mismatch, ...]
    seconds: float

    @property
    def passed(self) -> bool:
        """Whether every expected field matched."""
        return not self.mismatches


@dataclass(frozen=True, slots=True)
class SuiteResult:
    """The outcome of one suite file: its tests, or why it could not run."""

    file: str
    name: str
    policies: str  # the policy path as shown
    cases: tuple[CaseResult, ...]
    errors: tuple[Diagnostic, ...]  # the suite (or its policy set) could not be run
    seconds: float

    @property
    def failed(self) -> int:
        """How many tests failed."""
        return sum(not c.passed for c in self.cases)


def run_path(root: Path, clock: float | None = None) -> list[SuiteResult]:
    """Run every suite under `root` (a file or a folder)."""
    clock = time.time() if clock is None else clock
    sets: dict[Path, CompiledPolicySet | PolicySetError] = {}
    results = []
    for path in find_suites(root):
        shown = path.as_posix()
        started = time.perf_counter()
        try:
            suite = load_suite(path, shown, clock)
        except SuiteError as exc:
            elapsed = time.perf_counter() - started
            results.append(SuiteResult(shown, path.stem, "", (), tuple(exc.diagnostics), elapsed))
            continue
        results.append(run_suite(suite, sets))
    return results


def run_suite(
    suite: Suite, sets: dict[Path, CompiledPolicySet | PolicySetError] | None = None
) -> SuiteResult:
    """Run one suite; `sets` caches compiled policy sets by path across suites."""
    started = time.perf_counter()
    sets = {} if sets is None else sets
    key = suite.policies.resolve()
    compiled = sets.get(key)
    if compiled is None:
        try:
            compiled = compile_policy_set(load_policy_set(suite.policies)[0])
        except PolicySetError as exc:
            compiled = exc
        except OSError as exc:
            compiled = PolicySetError(
                [Diagnostic(Severity.ERROR, suite.policies.as_posix(), "$", str(exc))]
            )
        sets[key] = compiled
    shown = suite.policies.as_posix()

    def failed(errors: Iterable[Diagnostic]) -> SuiteResult:
        elapsed = time.perf_counter() - started
        return SuiteResult(suite.file, suite.name, shown, (), tuple(errors), elapsed)

    if isinstance(compiled, PolicySetError):
        refused = Diagnostic(
            Severity.ERROR,
            suite.file,
            "$.policies",
            f"the policy set {shown} is not valid: see the errors below",
        )
        return failed([refused, *(d for d in compiled.diagnostics if d.severity == "error")])
    names = _PolicyNames([cp.policy for cp in compiled.policies] + list(compiled.disabled))
    problems = [
        Diagnostic(Severity.ERROR, f"{suite.file}:{suite.source.line(path)}", path, message)
        for ref, path in policy_refs(suite)
        if (message := names.problem(ref))
    ]
    if problems:
        return failed(problems)
    cases = tuple(_run_case(case, compiled, names) for case in suite.cases)
    return SuiteResult(suite.file, suite.name, shown, cases, (), time.perf_counter() - started)


class _PolicyNames:
    """Resolves a suite's policy references (id, any case, or exact displayName) to ids."""

    def __init__(self, policies: Sequence[Policy]) -> None:
        self.ids = {p.id for p in policies}
        self.by_name: dict[str, list[str]] = {}
        self.names = {p.id: p.display_name for p in policies}
        for p in policies:
            self.by_name.setdefault(p.display_name, []).append(p.id)

    def resolve(self, ref: str) -> str:
        if ref.lower() in self.ids:
            return ref.lower()
        return self.by_name[ref][0]

    def problem(self, ref: str) -> str:
        if ref.lower() in self.ids:
            return ""
        found = self.by_name.get(ref)
        if not found:
            return f"no policy has the id or displayName {ref!r}"
        if len(found) > 1:
            return f"{len(found)} policies are named {ref!r}: name it by id ({', '.join(found)})"
        return ""


def _run_case(case: TestCase, compiled: CompiledPolicySet, names: _PolicyNames) -> CaseResult:
    started = time.perf_counter()
    ctx = dataclasses.replace(case.sign_in, explain=True)
    decision = evaluate(ctx, compiled, now=ctx.time)
    mismatches = compare(case.expect, decision, names)
    return CaseResult(case, tuple(mismatches), time.perf_counter() - started)


def compare(expect: Expectation, decision: Decision, names: _PolicyNames) -> list[Mismatch]:
    """The fields of `decision` that differ from `expect` (unchecked parts are skipped)."""
    label = _labels(expect, names)
    out: list[Mismatch] = []
    if decision.verdict is not expect.decision:
        out.append(Mismatch("decision", expect.decision.value, decision.verdict.value))
    if expect.requirements is not None:
        with_policies = any(r.policies is not None for r in expect.requirements)
        wanted = [
            _requirement(r.any_of, [names.resolve(p) for p in r.policies or ()], label)
            if r.policies is not None
            else _requirement(r.any_of, None, label)
            for r in expect.requirements
        ]
        got = []
        for i, r in enumerate(decision.requirements):
            # Policies are compared where the suite names them (else by the suite's habit).
            named = expect.requirements[i].policies is not None if i < len(wanted) else None
            show = with_policies if named is None else named
            got.append(_requirement(r.any_of, list(r.policy_ids) if show else None, label))
        if wanted != got:
            out.append(Mismatch("requirements", wanted, got))
    if expect.session is not None:
        wanted_session = _session_text(expect.session)
        got_session = _session_text(session_dict(decision.session))
        if wanted_session != got_session:
            out.append(Mismatch("session", wanted_session, got_session))
    results = {p.id: p.result for p in decision.policies}
    for ref, result in expect.policies:
        actual = results.get(names.resolve(ref))
        actual_text = actual.value if actual is not None else "(not reported)"
        if actual is not result:
            out.append(Mismatch(f"policies.{ref}", result.value, actual_text))
    if expect.messages is not None and tuple(decision.messages) != expect.messages:
        out.append(Mismatch("messages", list(expect.messages), list(decision.messages)))
    return out


def _labels(expect: Expectation, names: _PolicyNames) -> dict[str, str]:
    """How to show each policy: as the suite names it, else by its displayName."""
    label = dict(names.names)
    for requirement in expect.requirements or ():
        for ref in requirement.policies or ():
            label[names.resolve(ref)] = ref
    for ref, _ in expect.policies:
        label[names.resolve(ref)] = ref
    return label


def _requirement(
    any_of: Iterable[str], policy_ids: list[str] | None, label: Mapping[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {"anyOf": list(any_of)}
    if policy_ids is not None:
        out["policies"] = [label.get(p, p) for p in policy_ids]
    return out


def session_dict(session: Session) -> dict[str, Any]:
    """The session controls a decision enforces, keyed as in suites (unset ones left out)."""
    out: dict[str, Any] = {}
    if session.sign_in_frequency is not None:
        out["signInFrequency"] = session.sign_in_frequency
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


def _session_text(session: Mapping[str, Any]) -> dict[str, Any]:
    """A session with its frequency written as a person would (4h, everyTime)."""
    out = {k: v for k, v in session.items() if v is not False}
    seconds = out.get("signInFrequency")
    if isinstance(seconds, int):
        out["signInFrequency"] = _duration(seconds)
    return dict(sorted(out.items()))


def _duration(seconds: int) -> str:
    if seconds < 0:
        return "everyTime"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _inline(value: Any) -> str:
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _lines(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    text = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, width=10_000)
    return text.rstrip("\n").splitlines() or [""]
