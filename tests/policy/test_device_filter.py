"""Tests for pdp.policy.device_filter: the Conditional Access device-filter rule language."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from pdp.policy.device_filter import (
    PROPERTIES,
    DeviceFilter,
    DeviceFilterError,
    DeviceProperties,
    parse_device_filter,
)


def matches(rule: str, device: DeviceProperties) -> bool:
    """Parse `rule` and evaluate it against `device`."""
    return parse_device_filter(rule).matches(device)


SURFACE: dict[str, str] = {
    "displayname": "Alice-Surface-Laptop",
    "model": "Surface Laptop 5",
    "trusttype": "AzureAD",
    "iscompliant": "True",
    "deviceownership": "Company",
    "physicalids": "[OrderId]:PO-1, [ZTDID]:abc-123,[USER-GID]:x",
    "systemlabels": "AzureResource, M365Managed",
    "extensionattribute1": "SAW",
}

# --- operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('device.model -eq "Surface Laptop 5"', True),
        ('device.model -eq "Surface Laptop"', False),
        ('device.model -ne "Surface Laptop 5"', False),
        ('device.model -ne "Surface Laptop"', True),
        ('device.model -startsWith "Surface"', True),
        ('device.model -startsWith "Laptop"', False),
        ('device.model -notStartsWith "Surface"', False),
        ('device.model -notStartsWith "Laptop"', True),
        ('device.model -endsWith "Laptop 5"', True),
        ('device.model -endsWith "Surface"', False),
        ('device.model -notEndsWith "Laptop 5"', False),
        ('device.model -notEndsWith "Surface"', True),
        ('device.model -contains "Lap"', True),
        ('device.model -contains "Book"', False),
        ('device.model -notContains "Lap"', False),
        ('device.model -notContains "Book"', True),
        ('device.trustType -in ["ServerAD", "AzureAD"]', True),
        ('device.trustType -in ["ServerAD", "Workplace"]', False),
        ('device.trustType -notIn ["ServerAD", "AzureAD"]', False),
        ('device.trustType -notIn ["ServerAD", "Workplace"]', True),
        ('device.model -match "laptop \\d$"', True),
        ('device.model -match "^laptop"', False),
        ('device.model -notMatch "laptop \\d$"', False),
        ('device.model -notMatch "^laptop"', True),
    ],
)
def test_operator_on_present_value(rule: str, expected: bool) -> None:
    """Each operator compares a present property value as the docs describe."""
    assert matches(rule, SURFACE) is expected


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("-eq", '"x"', False),
        ("-startsWith", '"x"', False),
        ("-endsWith", '"x"', False),
        ("-contains", '"x"', False),
        ("-in", '["x"]', False),
        ("-match", '".*"', False),
        ("-ne", '"x"', True),
        ("-notStartsWith", '"x"', True),
        ("-notEndsWith", '"x"', True),
        ("-notContains", '"x"', True),
        ("-notIn", '["x"]', True),
        ("-notMatch", '".*"', True),
    ],
)
@pytest.mark.parametrize("prop", ["model", "extensionAttribute15", "physicalIds", "isCompliant"])
@pytest.mark.parametrize("device", [{}, {"displayname": "other"}], ids=["unregistered", "unset"])
def test_null_property(
    operator: str, value: str, expected: bool, prop: str, device: DeviceProperties
) -> None:
    """An absent property makes every positive operator false and every negative one true."""
    assert matches(f"device.{prop} {operator} {value}", device) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('device.model -eq ""', True),
        ('device.model -ne ""', False),
        ('device.model -startsWith ""', True),
        ('device.model -contains ""', True),
        ('device.model -match "^$"', True),
    ],
)
def test_empty_string_is_a_value_not_null(rule: str, expected: bool) -> None:
    """A present empty string is compared as a value; only an absent key is null."""
    assert matches(rule, {"model": ""}) is expected


# --- case-insensitivity -------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        'device.deviceOwnership -eq "Company"',
        'device.DEVICEOWNERSHIP -eq "Company"',
        'Device.deviceownership -eq "Company"',
        'device.deviceOwnership -EQ "Company"',
        'device.deviceOwnership -Eq "Company"',
        'device.deviceOwnership eq "Company"',
        'device.deviceOwnership -eq "company"',
        'device.deviceOwnership -eq "COMPANY"',
        "device.deviceOwnership -eq 'Company'",
        'device.model -STARTSWITH "surface"',
        'device.model startswith "SURFACE"',
        'device.model -NotContains "book"',
        'device.trustType -IN ["azuread"]',
        'device.trustType notin ["serverad"]',
        'device.model -MATCH "SURFACE"',
        'device.model -eq "x" OR device.model -eq "SURFACE LAPTOP 5"',
        'device.model -eq "x" -Or device.model -eq "surface laptop 5"',
        'device.model -ne "x" AND device.model -ne "y"',
        'NOT device.model -eq "x"',
        '-NOT device.model -eq "x"',
    ],
)
def test_case_insensitive(rule: str) -> None:
    """Property names, operators (with or without hyphen) and values ignore case."""
    assert matches(rule, SURFACE) is True


@pytest.mark.parametrize(
    ("rule", "device", "expected"),
    [
        ("device.isCompliant -eq True", {"iscompliant": "True"}, True),
        ("device.isCompliant -eq True", {"iscompliant": "true"}, True),
        ("device.isCompliant -eq True", {"iscompliant": "TRUE"}, True),
        ("device.isCompliant -eq true", {"iscompliant": "True"}, True),
        ("device.isCompliant -eq True", {"iscompliant": "False"}, False),
        ("device.isCompliant -eq False", {"iscompliant": "false"}, True),
        ("device.isCompliant -ne True", {"iscompliant": "false"}, True),
        ("device.isCompliant -ne False", {"iscompliant": "false"}, False),
        ('device.isCompliant -eq "True"', {"iscompliant": "true"}, True),
        ("device.isCompliant -eq True", {}, False),
        ("device.isCompliant -ne True", {}, True),
        ("device.isCompliant -ne False", {}, True),
    ],
)
def test_boolean_values(rule: str, device: DeviceProperties, expected: bool) -> None:
    """Unquoted True/False compare as the strings "true"/"false", case-insensitively."""
    assert matches(rule, device) is expected


# --- boolean structure --------------------------------------------------------------------

A_TRUE = 'device.model -eq "a"'
B_TRUE = 'device.displayName -eq "b"'
C_FALSE = 'device.trustType -eq "nope"'
ABC: dict[str, str] = {"model": "a", "displayname": "b", "trusttype": "c"}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (f"{A_TRUE} -or {B_TRUE} -and {C_FALSE}", True),  # A or (B and C)
        (f"({A_TRUE} -or {B_TRUE}) -and {C_FALSE}", False),
        (f"{C_FALSE} -and {A_TRUE} -or {B_TRUE}", True),  # (C and A) or B
        (f"{C_FALSE} -and ({A_TRUE} -or {B_TRUE})", False),
        (f"-not {A_TRUE} -and {C_FALSE}", False),  # (not A) and C
        (f"-not {C_FALSE} -and {A_TRUE}", True),  # (not C) and A
        (f"-not ({C_FALSE} -and {A_TRUE})", True),
        (f"-not {A_TRUE} -or {B_TRUE}", True),  # (not A) or B
        (f"-not ({A_TRUE} -or {B_TRUE})", False),
        (f"-not -not {A_TRUE}", True),
        (f"-not -not -not {A_TRUE}", False),
        (f"not ({A_TRUE}) and ({C_FALSE})", False),
        (f"((({A_TRUE})))", True),
        (f"({A_TRUE}) -and (-not ({C_FALSE}))", True),
        (" -or ".join([C_FALSE] * 5 + [A_TRUE]), True),
        (" -and ".join([A_TRUE] * 5 + [C_FALSE]), False),
        (f"{A_TRUE}-and({B_TRUE})", True),  # no whitespace needed around strings and parens
    ],
)
def test_precedence_and_parentheses(rule: str, expected: bool) -> None:
    """Comparisons bind tightest, then -not, then -and, then -or; parentheses regroup."""
    assert matches(rule, ABC) is expected


def test_long_flat_chains_evaluate() -> None:
    """A maximal-length chain of -or operands parses and evaluates without deep recursion."""
    operand = 'device.model -eq "x"'
    count = 3072 // len(operand + " -or ")
    rule = " -or ".join([operand] * (count - 1) + ['device.model -eq "y"'])
    compiled = parse_device_filter(rule)
    assert compiled.matches({"model": "Y"}) is True
    assert compiled.matches({"model": "z"}) is False


@pytest.mark.parametrize(("depth", "ok"), [(50, True), (51, False)])
def test_nesting_limit(depth: int, ok: bool) -> None:
    """Parentheses may nest 50 deep; deeper is refused rather than overflowing the stack."""
    rule = "(" * depth + 'device.model -eq "a"' + ")" * depth
    if ok:
        assert matches(rule, {"model": "a"}) is True
    else:
        with pytest.raises(DeviceFilterError, match="nested deeper than 50") as info:
            parse_device_filter(rule)
        assert info.value.position == 50


# --- values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ('device.displayName -in ["a", "b"]', "B", True),
        ('device.displayName -in ["a","b"]', "c", False),
        ("device.displayName -in ['a', \"b\"]", "a", True),
        ('device.displayName -in [ "only" ]', "ONLY", True),
        ('device.displayName -in ["a b", "c"]', "a", False),
        ('device.displayName -notIn ["a", "b"]', "c", True),
        ('device.displayName -notIn ["a", "b"]', "A", False),
        ("device.displayName -in [True]", "true", True),
    ],
)
def test_in_lists(rule: str, value: str, expected: bool) -> None:
    """-in/-notIn test whole-value membership in a bracket list, case-insensitively."""
    assert matches(rule, {"displayname": value}) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ('device.physicalIds -contains "[ZTDID]:abc-123"', True),
        ('device.physicalIds -contains "[ztdid]:ABC-123"', True),
        ('device.physicalIds -contains "[OrderId]:PO-1"', True),
        ('device.physicalIds -contains "[USER-GID]:x"', True),
        ('device.physicalIds -contains "[ZTDID]"', False),
        ('device.physicalIds -contains "abc"', False),
        ('device.physicalIds -notContains "[ZTDID]"', True),
        ('device.physicalIds -notContains "[ZTDID]:abc-123"', False),
        ('device.systemLabels -contains "M365Managed"', True),
        ('device.systemLabels -contains "m365"', False),
        ('device.systemLabels -notContains "AzureResource"', False),
        ('device.displayName -contains "surface"', True),
        ('device.displayName -contains "e-S"', True),
        ('device.extensionAttribute1 -contains "A"', True),
    ],
)
def test_collection_contains_is_element_match(rule: str, expected: bool) -> None:
    """-contains is whole-element on physicalIds/systemLabels and substring elsewhere."""
    assert matches(rule, SURFACE) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("surface", "My Surface Pro", True),  # re.search: not anchored
        ("^surface", "My Surface Pro", False),
        ("^SURFACE (pro|laptop)", "surface laptop 7", True),
        (r"\d+$", "Model 7", True),
        (r"^[a-z]+-\d{3}$", "ABC-123", True),
        (r"^[a-z]+-\d{3}$", "ABC-12", False),
        (r"\.", "a.b", True),
        (r"\.", "ab", False),
    ],
)
def test_match_is_case_insensitive_search(pattern: str, value: str, expected: bool) -> None:
    """-match is an RE2 search, case-insensitive; backslashes in the rule reach it as is."""
    assert matches(f'device.model -match "{pattern}"', {"model": value}) is expected
    assert matches(f'device.model -notMatch "{pattern}"', {"model": value}) is not expected


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        (r'"say \"hi\""', 'say "hi"'),
        ('"say ""hi"""', 'say "hi"'),
        ('"say `"hi`""', 'say "hi"'),
        ("'it''s'", "it's"),
        (r"'it\'s'", "it's"),
        ("'say \"hi\"'", 'say "hi"'),
        ('"it\'s"', "it's"),
        (r'"C:\temp"', r"C:\temp"),
        ('""', ""),
    ],
)
def test_string_escapes(literal: str, value: str) -> None:
    """Quotes inside strings are escaped by doubling, backslash or backtick; others are literal."""
    assert matches(f"device.displayName -eq {literal}", {"displayname": value}) is True


def test_matches_does_no_regex_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regexes are compiled at parse time; matches() never compiles or parses again."""
    compiled = parse_device_filter('device.model -match "^surface" -and device.model -ne "x"')

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("regex work at evaluation time")

    for name in ("compile", "search", "match", "fullmatch"):
        monkeypatch.setattr(re2, name, refuse)
    assert compiled.matches({"model": "Surface Go"}) is True


# --- the policy corpus ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "device", "expected"),
    [
        (
            'device.isCompliant -eq True -or device.trustType -eq "ServerAD"',
            {"iscompliant": "False", "trusttype": "ServerAD"},
            True,
        ),
        (
            'device.isCompliant -eq True -or device.trustType -eq "ServerAD"',
            {"iscompliant": "False", "trusttype": "AzureAD"},
            False,
        ),
        ('device.isCompliant -eq True -or device.trustType -eq "ServerAD"', {}, False),
        (
            'device.isCompliant -eq True -and device.deviceOwnership -eq "Company"',
            {"iscompliant": "true", "deviceownership": "company"},
            True,
        ),
        (
            'device.isCompliant -eq True -and device.deviceOwnership -eq "Company"',
            {"iscompliant": "true", "deviceownership": "Personal"},
            False,
        ),
        (
            'device.isCompliant -eq True -and device.deviceOwnership -eq "Company"',
            {"iscompliant": "true"},
            False,
        ),
        (
            'device.deviceOwnership -eq "Company" -or device.isCompliant -eq True',
            {"deviceownership": "Personal", "iscompliant": "True"},
            True,
        ),
        (
            'device.deviceOwnership -eq "Company" -or device.isCompliant -eq True',
            {"deviceownership": "Personal", "iscompliant": "False"},
            False,
        ),
        ('device.deviceOwnership -eq "Company" -or device.isCompliant -eq True', {}, False),
    ],
)
def test_corpus_rules(rule: str, device: DeviceProperties, expected: bool) -> None:
    """The device filters used by the real policy corpus evaluate as Entra would."""
    assert matches(rule, device) is expected


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "position", "reason"),
    [
        ("", 0, "empty rule"),
        ("   \n\t", 0, "empty rule"),
        ('device.foo -eq "a"', 7, "unknown device property 'foo'"),
        ('device.extensionAttribute16 -eq "a"', 7, "unknown device property"),
        ('device. -eq "a"', 7, "unknown device property ''"),
        ('model -eq "a"', 0, "expected a device property"),
        ('user.department -eq "a"', 0, "expected a device property"),
        ("device.isCompliant -eqq True", 19, "unknown operator '-eqq'"),
        ('device.model -le "a"', 13, "unknown operator '-le'"),
        ('device.model -any "a"', 13, "unknown operator '-any'"),
        ('device.model "a"', 13, "expected an operator after 'device.model'"),
        ("device.model", 12, "expected an operator after 'device.model', got end of rule"),
        ("device.model -eq", 16, "expected a value after -eq"),
        ("device.model -eq -and", 17, "expected a value after -eq"),
        ("device.model -eq Company", 17, "expected a value after -eq"),
        ('device.model -eq ["a"]', 17, "operator -eq takes a single value, not a list"),
        ('device.model -in "a"', 17, "operator -in takes a bracketed list"),
        ("device.model -in []", 18, "expected a list value, got ']'"),
        ('device.model -in ["a",]', 22, "expected a list value"),
        ('device.model -in ["a" "b"]', 22, "expected ',' or ']'"),
        ('device.model -in ["a"', 21, "expected ',' or ']', got end of rule"),
        ('(device.model -eq "a"', 21, "expected ')' to close the '(' at character 0"),
        ('((device.model -eq "a")', 23, "expected ')' to close the '(' at character 0"),
        ('device.model -eq "a")', 20, "unbalanced ')'"),
        ("()", 1, "expected a device property"),
        ('device.model -eq "a" device.model', 21, "unexpected 'device.model' after a complete"),
        ('device.model -eq "a" "b"', 21, "unexpected string 'b' after a complete expression"),
        ('device.model -eq "a" -and', 25, "or '(', got end of rule"),
        ('device.model -eq "a" -or -not', 29, "got end of rule"),
        ('device.model -eq "a', 17, "unterminated string"),
        ('device.model -eq "a" & device.model -eq "b"', 21, "unexpected character '&'"),
        ('device.model -match "("', 20, "invalid regular expression"),
        ('device.model -notMatch "[a-"', 23, "invalid regular expression"),
    ],
)
def test_parse_errors(rule: str, position: int, reason: str) -> None:
    """Malformed rules raise DeviceFilterError with the offending offset and a clear reason."""
    with pytest.raises(DeviceFilterError) as info:
        parse_device_filter(rule)
    assert info.value.position == position
    assert reason in info.value.reason
    assert str(info.value) == f"at character {position}: {info.value.reason}"


def test_rule_length_limit() -> None:
    """A rule of 3072 characters is accepted; one character more is refused."""
    base = 'device.model -eq "a"'
    assert parse_device_filter(base + " " * (3072 - len(base))).matches({"model": "a"})
    with pytest.raises(DeviceFilterError, match="limit is 3072") as info:
        parse_device_filter(base + " " * (3073 - len(base)))
    assert info.value.position == 3072


def test_error_type() -> None:
    """DeviceFilterError is a ValueError with the documented message and survives pickling."""
    error = DeviceFilterError("unknown operator '-eqq'", 17)
    assert isinstance(error, ValueError)
    assert str(error) == "at character 17: unknown operator '-eqq'"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert (copy.reason, copy.position, str(copy)) == (error.reason, 17, str(error))


# --- the public surface ---------------------------------------------------------------------


def test_device_filter_value_semantics() -> None:
    """A DeviceFilter keeps its original text and compares and hashes by it."""
    text = 'device.Model -EQ "X"'
    first, second = parse_device_filter(text), parse_device_filter(text)
    assert isinstance(first, DeviceFilter)
    assert first.rule == text
    assert first == second
    assert hash(first) == hash(second)
    assert first != parse_device_filter('device.model -eq "x"')
    assert repr(first) == f"DeviceFilter(rule={text!r})"


def test_properties() -> None:
    """PROPERTIES lists the 29 documented properties, lower-cased, and each one parses."""
    assert len(PROPERTIES) == 29
    assert {"iscompliant", "extensionattribute1", "extensionattribute15"} <= PROPERTIES
    assert all(name == name.lower() for name in PROPERTIES)
    for name in PROPERTIES:
        assert matches(f'device.{name} -eq "v"', {name: "V"}) is True


# --- properties -----------------------------------------------------------------------------

NEGATIONS = {
    "eq": "ne",
    "startsWith": "notStartsWith",
    "endsWith": "notEndsWith",
    "contains": "notContains",
    "in": "notIn",
    "match": "notMatch",
}
KEYS = ["model", "displayName", "trustType", "physicalIds"]
TEXT = st.text(alphabet="abAB ,", max_size=4)
DEVICES = st.dictionaries(st.sampled_from([key.lower() for key in KEYS]), TEXT)


@st.composite
def comparisons(draw: st.DrawFn, *, positive: bool | None = None) -> tuple[str, str, str, str]:
    """Draw (property, positive operator, operator used, value text) for one comparison."""
    prop = draw(st.sampled_from(KEYS))
    base = draw(st.sampled_from(sorted(NEGATIONS)))
    negate = draw(st.booleans()) if positive is None else not positive
    operator = NEGATIONS[base] if negate else base
    words = draw(st.lists(st.text(alphabet="abAB", max_size=3), min_size=1, max_size=3))
    quoted = [f'"{word}"' for word in words]
    value = f"[{', '.join(quoted)}]" if base == "in" else quoted[0]
    return prop, base, operator, value


def render(comparison: tuple[str, str, str, str]) -> str:
    """Write a drawn comparison as rule text."""
    prop, _base, operator, value = comparison
    return f"device.{prop} -{operator} {value}"


@settings(max_examples=300, database=None)
@given(a=comparisons(), b=comparisons(), device=DEVICES)
def test_boolean_connectives_compose(
    a: tuple[str, str, str, str], b: tuple[str, str, str, str], device: DeviceProperties
) -> None:
    """-or, -and and -not agree with Python's or/and/not over their operands' results."""
    ra, rb = render(a), render(b)
    ma, mb = matches(ra, device), matches(rb, device)
    assert matches(f"{ra} -or {rb}", device) == (ma or mb)
    assert matches(f"{ra} -and {rb}", device) == (ma and mb)
    assert matches(f"-not ({ra})", device) == (not ma)
    assert matches(f"-not {ra}", device) == (not ma)


@settings(max_examples=300, database=None)
@given(comparison=comparisons(positive=True), device=DEVICES)
def test_negative_operator_is_complement(
    comparison: tuple[str, str, str, str], device: DeviceProperties
) -> None:
    """Every negative operator is exactly the complement of its positive one, null included."""
    prop, base, _operator, value = comparison
    positive = matches(f"device.{prop} -{base} {value}", device)
    assert matches(f"device.{prop} -{NEGATIONS[base]} {value}", device) is not positive


def oracle(prop: str, base: str, value: str, device: DeviceProperties) -> bool:
    """Evaluate a positive comparison the slow, obvious way (reference for the compiler)."""
    actual = device.get(prop.lower())
    if actual is None:
        return False
    x = actual.lower()
    if base == "in":
        return x in [w.strip(' "').lower() for w in value.strip("[]").split(",")]
    v = value.strip('"').lower()
    if base == "contains" and prop.lower() == "physicalids":
        return v in [element.strip() for element in x.split(",")]
    results = {
        "eq": x == v,
        "startsWith": x.startswith(v),
        "endsWith": x.endswith(v),
        "contains": v in x,
        "match": re.search(v, actual, re.IGNORECASE) is not None,
    }
    return results[base]


@settings(max_examples=300, database=None)
@given(comparison=comparisons(positive=True), device=DEVICES)
def test_comparison_agrees_with_oracle(
    comparison: tuple[str, str, str, str], device: DeviceProperties
) -> None:
    """A compiled positive comparison agrees with a naive reference evaluation."""
    prop, base, _operator, value = comparison
    assert matches(render(comparison), device) is oracle(prop, base, value, device)


# --- regular expressions: RE2, linear time ------------------------------------------------


def test_a_backtracking_pattern_matches_in_linear_time() -> None:
    """`^(a+)+$` took 7.8 s on 29 characters with a backtracking engine; RE2 is linear.

    In a child process with a deadline: a backtracking engine holds the interpreter lock
    for the whole match, so a regression fails this test instead of hanging the suite.
    """
    code = (
        "from pdp.policy.device_filter import parse_device_filter\n"
        "f = parse_device_filter('device.displayName -match \"^(a+)+$\"')\n"
        "print(f.matches({'displayname': 'a' * 50_000 + '!'}))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the match did not end in 30 s: the engine backtracks")
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (r"^(a)\1$", "invalid escape sequence"),  # backreference
        ("^(?=x)", "invalid perl operator"),  # lookahead
        ("(?<!x)y", "invalid perl operator"),  # lookbehind
        ("a{1001}", "invalid repetition size"),
    ],
)
def test_what_re2_lacks_is_refused_when_the_rule_is_parsed(pattern: str, problem: str) -> None:
    """A pattern RE2 cannot run is an error naming RE2 and the reason, at its position."""
    rule = f'device.model -match "{pattern}"'
    with pytest.raises(DeviceFilterError, match="invalid regular expression") as info:
        parse_device_filter(rule)
    assert "RE2 syntax" in info.value.reason
    assert problem in info.value.reason
    assert info.value.position == rule.index('"')


def test_match_operators_are_named_as_extensions() -> None:
    """Entra documents no -match for device filters: the compiled filter says it uses one."""
    assert parse_device_filter('device.model -eq "x"').extensions == ()
    rule = 'device.model -match "x" -or device.model -notMatch "y"'
    assert parse_device_filter(rule).extensions == ("-match", "-notMatch")
