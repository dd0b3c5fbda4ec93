"""Policy test suites: the YAML files `pdp test` runs, read and validated like policies.

A suite names the policy set it tests, shared request parts (fixtures) and named sign-ins
with the decision each must get::

    name: Workspace access                # optional; default: the file name
    description: what this suite pins     # optional
    policies: ../ai-workspace             # the policy file or folder, relative to this file
    now: "2026-11-21T09:00:00Z"           # optional: the time of sign-ins that give none
    fixtures:                             # optional: named parts of an EvaluateRequest
      ada: {subject: {userId: ada@contoso.example}}
    tests:
      - name: Ada needs MFA on the dev workspace from home
        fixtures: [ada]                   # merged in order, then `signIn` over them
        signIn:                           # an EvaluateRequest in proto3 JSON
          target: {applicationId: 8a4f0c1e-...}
        expect:
          decision: challenge             # allow | challenge | deny (required)
          requirements:                   # optional; exact and in order
            - {anyOf: [mfa], policies: [AI01 ..., a1000000-...]}
          session: {signInFrequency: 24h, persistentBrowser: always}  # optional; exact
          policies: {AI03 ...: success}   # optional; only the policies listed are checked
          messages: [...]                 # optional; exact and in order

Merging: mappings merge key by key, anything else (lists included) is replaced. Policies
are named by id or by displayName. Every key is checked (unknown keys are errors, with the
line), sign-ins are validated as the server validates requests, and a sign-in that says
when its user last signed in interactively must also say when it happens (its own `time`
or the suite's `now`): otherwise sign-in frequency would depend on the day the suite runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pdp.context import SignInContext
from pdp.engine.decision import Result, Verdict
from pdp.policy.diagnostics import Diagnostic, Severity
from pdp.tooling.request_json import sign_in_from_json
from pdp.tooling.yaml_file import YamlFile, YamlFileError, parse_yaml, unknown_keys

SUFFIXES = (".yaml", ".yml")
SUITE_KEYS = ("name", "description", "policies", "now", "fixtures", "tests")
TEST_KEYS = ("name", "description", "fixtures", "signIn", "expect")
EXPECT_KEYS = ("decision", "requirements", "session", "policies", "messages")
REQUIREMENT_KEYS = ("anyOf", "policies")
SESSION_KEYS = (
    "signInFrequency",
    "persistentBrowser",
    "applicationEnforcedRestrictions",
    "cloudAppSecurity",
    "continuousAccessEvaluation",
    "secureSignInSession",
    "disableResilienceDefaults",
)
EVERY_TIME = "everyTime"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class ExpectedRequirement:
    """One expected unmet requirement; `policies` None means they are not checked."""

    any_of: tuple[str, ...]
    policies: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a sign-in must get. None: that part is not checked."""

    decision: Verdict
    requirements: tuple[ExpectedRequirement, ...] | None
    session: Mapping[str, Any] | None  # canonical: see `session_value`
    policies: tuple[tuple[str, Result], ...]  # (policy id or displayName, result)
    messages: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class TestCase:
    """One named sign-in of a suite and its expectation."""

    name: str
    path: str  # JSON-like path in the suite file, e.g. $.tests[2]
    line: int
    sign_in: SignInContext
    expect: Expectation


@dataclass(frozen=True, slots=True)
class Suite:
    """One validated suite file."""

    file: str  # as shown to the user
    name: str
    policies: Path
    cases: tuple[TestCase, ...]
    source: YamlFile  # for line numbers of later messages (policy references)


class SuiteError(Exception):
    """A suite file that cannot be run: every problem found, as diagnostics."""

    def __init__(self, file: str, diagnostics: list[Diagnostic]) -> None:
        self.file = file
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))


def find_suites(root: Path) -> list[Path]:
    """The suite files under `root` (a file, or a folder searched recursively), sorted."""
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix in SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def load_suite(path: Path, shown: str, clock: float) -> Suite:
    """Read and validate one suite file; raise SuiteError naming every problem.

    `clock` is the time of sign-ins when neither they nor the suite give one.
    """
    errors = _Errors(shown)
    try:
        source = parse_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, YamlFileError) as exc:
        raise SuiteError(shown, [_diagnostic(shown, "$", str(exc))]) from None
    errors.source = source
    data = source.data
    if not isinstance(data, dict):
        errors.add("$", "a suite is a mapping with policies and tests")
        raise errors.raised()
    for key in unknown_keys(data, SUITE_KEYS):
        errors.add(f"$.{key}", f"unknown key (known: {', '.join(SUITE_KEYS)})")
    name = _text(data, "name", "$", errors) or path.stem
    _text(data, "description", "$", errors)
    policies_text = _text(data, "policies", "$", errors)
    if not policies_text:
        errors.add("$.policies", "missing: the policy file or folder this suite tests")
    now = clock
    if "now" in data:
        parsed = _time(data["now"], "$.now", errors)
        now = clock if parsed is None else parsed
    fixtures = _fixtures(data.get("fixtures"), errors)
    cases = _cases(data.get("tests"), fixtures, now, timed="now" in data, errors=errors)
    if errors.found:
        raise errors.raised()
    return Suite(
        file=shown,
        name=name,
        policies=Path(os.path.normpath(path.parent / str(policies_text))),
        cases=tuple(cases),
        source=source,
    )


class _Errors:
    """Collects the problems of one file (with lines) so that all are reported at once."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.found: list[Diagnostic] = []
        self.source: YamlFile | None = None

    def add(self, path: str, message: str) -> None:
        self.found.append(_diagnostic(self.file, path, message, self.source))

    def raised(self) -> SuiteError:
        return SuiteError(self.file, self.found)


def _diagnostic(file: str, path: str, message: str, source: YamlFile | None = None) -> Diagnostic:
    where = f"{file}:{source.line(path)}" if source is not None else file
    return Diagnostic(Severity.ERROR, where, path, message)


def _text(obj: Mapping[str, Any], key: str, path: str, errors: _Errors) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.add(f"{path}.{key}", f"expected non-empty text, found {value!r}")
        return None
    return value.strip()


def parse_time(text: str) -> float:
    """Epoch seconds of an RFC 3339 time with its offset (e.g. 2026-11-21T09:00:00Z)."""
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        raise ValueError("no offset: write Z or +hh:mm")
    return stamp.timestamp()


def _time(value: Any, path: str, errors: _Errors) -> float | None:
    try:
        return parse_time(str(value))
    except ValueError as exc:
        errors.add(path, f"not an RFC 3339 time: {value!r} ({exc})")
        return None


def _fixtures(raw: Any, errors: _Errors) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        errors.add("$.fixtures", "expected a mapping of fixture names to request parts")
        return {}
    fixtures: dict[str, dict[str, Any]] = {}
    for name, part in raw.items():
        if not isinstance(part, dict):
            errors.add(f"$.fixtures.{name}", "expected a mapping: part of an EvaluateRequest")
            continue
        fixtures[str(name)] = part
    return fixtures


def _cases(
    raw: Any, fixtures: dict[str, dict[str, Any]], now: float, *, timed: bool, errors: _Errors
) -> list[TestCase]:
    if not isinstance(raw, list) or not raw:
        errors.add("$.tests", "expected a non-empty list of tests")
        return []
    cases: list[TestCase] = []
    names: dict[str, str] = {}
    used: set[str] = set()
    for i, item in enumerate(raw):
        path = f"$.tests[{i}]"
        if not isinstance(item, dict):
            errors.add(path, "expected a mapping with name, signIn and expect")
            continue
        for key in unknown_keys(item, TEST_KEYS):
            errors.add(f"{path}.{key}", f"unknown key (known: {', '.join(TEST_KEYS)})")
        name = _text(item, "name", path, errors)
        if name is None:
            errors.add(f"{path}.name", "missing: every test has a name")
            name = f"test {i + 1}"
        elif name in names:
            errors.add(f"{path}.name", f"duplicate test name {name!r} (also {names[name]})")
        names.setdefault(name, path)
        _text(item, "description", path, errors)
        request = _merged_request(item, fixtures, path, used, errors)
        sign_in = _sign_in(request, now, timed=timed, path=path, errors=errors)
        expect = _expectation(item.get("expect"), f"{path}.expect", errors)
        if sign_in is not None and expect is not None:
            line = errors.source.line(path) if errors.source else 1
            cases.append(TestCase(name, path, line, sign_in, expect))
    for name in fixtures:
        if name not in used:
            errors.add(f"$.fixtures.{name}", "fixture is used by no test")
    return cases


def _merged_request(
    item: Mapping[str, Any],
    fixtures: dict[str, dict[str, Any]],
    path: str,
    used: set[str],
    errors: _Errors,
) -> dict[str, Any]:
    request: dict[str, Any] = {}
    names = item.get("fixtures", [])
    if not isinstance(names, list):
        errors.add(f"{path}.fixtures", "expected a list of fixture names")
        names = []
    for j, name in enumerate(names):
        part = fixtures.get(str(name))
        if part is None:
            known = ", ".join(fixtures) or "none defined"
            errors.add(f"{path}.fixtures[{j}]", f"unknown fixture {name!r} (known: {known})")
            continue
        used.add(str(name))
        request = merge(request, part)
    sign_in = item.get("signIn", {})
    if not isinstance(sign_in, dict):
        errors.add(f"{path}.signIn", "expected a mapping: an EvaluateRequest in proto3 JSON")
    elif not sign_in and not names:
        errors.add(f"{path}.signIn", "missing: the sign-in to decide (or fixtures)")
    else:
        request = merge(request, sign_in)
    return request


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged onto `base`: mappings key by key, anything else replaced."""
    out = dict(base)
    for key, value in over.items():
        below = out.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            out[key] = merge(below, value)
        else:
            out[key] = value
    return out


def _sign_in(
    request: dict[str, Any], now: float, *, timed: bool, path: str, errors: _Errors
) -> SignInContext | None:
    authentication = request.get("authentication")
    at_given = isinstance(authentication, Mapping) and "authenticatedAt" in authentication
    if at_given and "time" not in request and not timed:
        errors.add(
            f"{path}.signIn.time",
            "the sign-in gives authentication.authenticatedAt but no time, and the suite no "
            "`now`: its sign-in frequency would depend on when the suite runs",
        )
    try:
        return sign_in_from_json(request, now)
    except ValueError as exc:
        errors.add(f"{path}.signIn", f"not a valid EvaluateRequest: {exc}")
        return None


def _expectation(raw: Any, path: str, errors: _Errors) -> Expectation | None:
    if not isinstance(raw, dict):
        errors.add(path, "missing: every test has an expect mapping with at least a decision")
        return None
    for key in unknown_keys(raw, EXPECT_KEYS):
        errors.add(f"{path}.{key}", f"unknown key (known: {', '.join(EXPECT_KEYS)})")
    decision: Verdict | None = None
    text = raw.get("decision")
    try:
        decision = Verdict(str(text).lower())
    except ValueError:
        errors.add(f"{path}.decision", f"expected allow, challenge or deny, found {text!r}")
    requirements = _requirements(raw.get("requirements"), f"{path}.requirements", errors)
    session = _session(raw.get("session"), f"{path}.session", errors)
    policies = _policy_results(raw.get("policies"), f"{path}.policies", errors)
    messages = None
    if "messages" in raw:
        messages = tuple(_strings(raw["messages"], f"{path}.messages", errors))
    if decision is None:
        return None
    return Expectation(decision, requirements, session, policies, messages)


def _strings(value: Any, path: str, errors: _Errors) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.add(path, f"expected a list of text, found {value!r}")
        return []
    return list(value)


def _requirements(raw: Any, path: str, errors: _Errors) -> tuple[ExpectedRequirement, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        errors.add(path, "expected a list of {anyOf, policies}")
        return None
    out: list[ExpectedRequirement] = []
    for i, item in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(item, dict):
            errors.add(where, "expected a mapping with anyOf (and optionally policies)")
            continue
        for key in unknown_keys(item, REQUIREMENT_KEYS):
            errors.add(f"{where}.{key}", f"unknown key (known: {', '.join(REQUIREMENT_KEYS)})")
        any_of = _strings(item.get("anyOf"), f"{where}.anyOf", errors)
        policies = None
        if "policies" in item:
            policies = tuple(_strings(item["policies"], f"{where}.policies", errors))
        out.append(ExpectedRequirement(tuple(any_of), policies))
    return tuple(out)


def _session(raw: Any, path: str, errors: _Errors) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        errors.add(path, "expected a mapping of session controls")
        return None
    for key in unknown_keys(raw, SESSION_KEYS):
        errors.add(f"{path}.{key}", f"unknown key (known: {', '.join(SESSION_KEYS)})")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "signInFrequency":
            seconds = frequency_seconds(value)
            if seconds is None:
                errors.add(
                    f"{path}.{key}",
                    f"expected everyTime or a duration such as 4h, 1d, 90m, 3600 (seconds), "
                    f"found {value!r}",
                )
                continue
            out[key] = seconds
        elif key in SESSION_KEYS:
            out[key] = value
    return out


def frequency_seconds(value: Any) -> int | None:
    """A sign-in frequency as seconds (-1 for everyTime), or None when not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text == EVERY_TIME:
        return -1
    number, unit = text[:-1], text[-1:]
    if unit.isdigit():
        number, unit = text, "s"
    if not number.isdigit() or unit not in _UNITS or int(number) <= 0:
        return None
    return int(number) * _UNITS[unit]


def _policy_results(raw: Any, path: str, errors: _Errors) -> tuple[tuple[str, Result], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        errors.add(path, "expected a mapping of policy (id or displayName) to result")
        return ()
    known = ", ".join(r.value for r in Result)
    out: list[tuple[str, Result]] = []
    for ref, value in raw.items():
        try:
            out.append((str(ref), Result(str(value))))
        except ValueError:
            errors.add(f"{path}.{ref}", f"unknown result {value!r} (known: {known})")
    return tuple(out)


def policy_refs(suite: Suite) -> Sequence[tuple[str, str]]:
    """Every policy reference in a suite with its path: (reference, path)."""
    refs: list[tuple[str, str]] = []
    for case in suite.cases:
        expect = case.expect
        for ref, _ in expect.policies:
            refs.append((ref, f"{case.path}.expect.policies.{ref}"))
        for i, requirement in enumerate(expect.requirements or ()):
            for j, ref in enumerate(requirement.policies or ()):
                refs.append((ref, f"{case.path}.expect.requirements[{i}].policies[{j}]"))
    return refs
