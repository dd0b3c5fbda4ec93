"""Device filters: the `conditions.devices.deviceFilter` rule language of Conditional Access.

This module owns turning a device-filter rule (the subset of the dynamic-group rule language
that Microsoft documents in "Conditional Access: Filter for devices") into a compiled
predicate, and evaluating that predicate against one device's properties. A rule is parsed
once, when the policy set is compiled; `DeviceFilter.matches` is on the per-request hot path
and does no parsing, regex compilation or constant normalisation.

Semantics follow the docs: property names, operators and string comparisons are
case-insensitive, and a property the device does not have (every property of an
unregistered device) is null: against null every positive operator (-eq, -startsWith,
-endsWith, -contains, -in, -match) is false and every negative one is true. The rule's
include/exclude `mode` is applied by the caller, not here.

The grammar (tokens, operators, precedence, limits) is shared with application filters,
which Microsoft documents as the same rule syntax over custom security attributes: a
`RuleDialect` says what differs, `DEVICE` is this module's own.

``-match`` and ``-notMatch`` are not among the operators Entra documents for device filters
(they come from the dynamic-group rule language); pdp accepts them as an extension, which
`DeviceFilter.extensions` names so that the parser can warn. Their patterns use RE2 syntax
(github.com/google/re2/wiki/Syntax), matched case-insensitively anywhere in the value
(a search, not anchored), by the RE2 engine: time linear in the value's length whatever the
pattern, so no rule can make a worker backtrack. What RE2 lacks (backreferences,
lookaround) is an error when the policy set is loaded. Both dialects match this way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple, TypeAlias

import re2

DeviceProperties: TypeAlias = Mapping[str, str]
"""A device as a filter sees it: lower-cased property name -> value; an absent key is null.

Collection properties (physicalids, systemlabels) are one comma-separated string.
"""

RulePredicate: TypeAlias = Callable[[Mapping[str, Any]], bool]
"""A compiled rule: properties (lower-cased names; absent is null) -> whether the rule holds."""
_Predicate: TypeAlias = RulePredicate

PROPERTIES: Final[frozenset[str]] = frozenset(
    {
        "deviceid",
        "mdmappid",
        "displayname",
        "enrollmentprofilename",
        "manufacturer",
        "model",
        "operatingsystem",
        "operatingsystemversion",
        "deviceownership",
        "iscompliant",
        "profiletype",
        "trusttype",
        "physicalids",
        "systemlabels",
        *(f"extensionattribute{n}" for n in range(1, 16)),
    }
)
"""The supported device properties, lower-cased (the keys of `DeviceProperties`)."""

_COLLECTIONS: Final = frozenset({"physicalids", "systemlabels"})
_OPERATORS: Final = frozenset(
    {"eq", "ne", "startswith", "notstartswith", "endswith", "notendswith"}
    | {"contains", "notcontains", "in", "notin", "match", "notmatch"}
)
_LIST_OPERATORS: Final = frozenset({"in", "notin"})
_MAX_RULE_LENGTH: Final = 3072
_MAX_NESTING: Final = 50  # parentheses; keeps the recursive-descent parser off the stack limit
_PREFIX: Final = "device."
_PUNCTUATION: Final = frozenset("()[],")
_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


class DeviceFilterError(ValueError):
    """Rule text that cannot be parsed: `reason` says what is wrong, `position` where.

    `position` is a 0-based character offset into the rule (its length for "end of rule").
    """

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"at character {position}: {reason}")
        self.reason = reason
        self.position = position

    def __reduce__(self) -> tuple[type[DeviceFilterError], tuple[str, int]]:
        return (type(self), (self.reason, self.position))


@dataclass(frozen=True, slots=True)
class DeviceFilter:
    """A compiled device-filter rule; build one with `parse_device_filter`."""

    rule: str  # the original rule text
    _predicate: _Predicate = field(repr=False, compare=False)
    # Operators used that Entra documents no device filter with (-match, -notMatch).
    extensions: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def matches(self, device: DeviceProperties) -> bool:
        """Whether `device` satisfies the rule (before the filter's include/exclude mode)."""
        return self._predicate(device)


def parse_device_filter(rule: str) -> DeviceFilter:
    """Parse `rule` once into a `DeviceFilter`; raise `DeviceFilterError` if it is malformed."""
    parser = _parser(rule, DEVICE)
    predicate = parser.parse()
    return DeviceFilter(rule, predicate, tuple(sorted(parser.extensions)))


@dataclass(frozen=True, slots=True)
class RuleDialect:
    """What differs between the rule languages that share this grammar.

    Device filters and application filters (custom security attributes) are both written in
    the dynamic-group rule syntax; they differ in the property prefix, the property names,
    the values they compare and what a property holds (see `pdp.policy.application_filter`).
    """

    prefix: str  # as written in messages, e.g. "device."; matched case-insensitively
    what: str  # the kind of property, for messages: "device property"
    key: Callable[[str], str | None]  # property name as written -> lookup key; None: unknown
    comparison: Callable[[str, str, str], _Predicate]  # (key, operator, casefolded value)
    membership: Callable[[str, bool, frozenset[str]], _Predicate]  # -in / -notIn
    # -match / -notMatch; the pattern is compiled by RE2 (google-re2 ships no types).
    match: Callable[[str, bool, Any], _Predicate]
    booleans: bool = True  # whether True / False are values
    hint: str = ""  # appended to "unknown property" errors: how names are written


def parse_rule(rule: str, dialect: RuleDialect) -> RulePredicate:
    """Parse `rule` in `dialect` into a predicate; raise `DeviceFilterError` if malformed."""
    return _parser(rule, dialect).parse()


def _parser(rule: str, dialect: RuleDialect) -> _Parser:
    """A parser for `rule`, once its length is checked."""
    if len(rule) > _MAX_RULE_LENGTH:
        raise DeviceFilterError(
            f"rule is {len(rule)} characters long, the limit is {_MAX_RULE_LENGTH}",
            _MAX_RULE_LENGTH,
        )
    if not rule.strip():
        raise DeviceFilterError("empty rule", 0)
    return _Parser(rule, dialect)


# --- tokenizer -----------------------------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # "word", "string", "end", or the punctuation character itself
    text: str  # the word as written, the unescaped string value, or the punctuation
    pos: int


def _tokenize(rule: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(rule)
    while i < n:
        c = rule[i]
        if c.isspace():
            i += 1
        elif c in _PUNCTUATION:
            tokens.append(_Token(c, c, i))
            i += 1
        elif c in "\"'":
            text, end = _read_string(rule, i)
            tokens.append(_Token("string", text, i))
            i = end
        elif c in _WORD_CHARS or (c == "-" and i + 1 < n and rule[i + 1] in _WORD_CHARS):
            j = i + 1
            while j < n and rule[j] in _WORD_CHARS:
                j += 1
            tokens.append(_Token("word", rule[i:j], i))
            i = j
        else:
            raise DeviceFilterError(f"unexpected character {c!r}", i)
    tokens.append(_Token("end", "", n))
    return tokens


def _read_string(rule: str, start: int) -> tuple[str, int]:
    """Read the string opened at `start`; return its value and the offset after it.

    The quote inside is written doubled ("") or escaped with a backslash or a backtick
    (the dynamic-group language's escape); every other backslash is literal, so regular
    expressions need no double escaping.
    """
    quote, n = rule[start], len(rule)
    parts: list[str] = []
    i = start + 1
    while i < n:
        c = rule[i]
        nxt = rule[i + 1] if i + 1 < n else ""
        if c == quote and nxt != quote:
            return "".join(parts), i + 1
        if nxt == quote and c in (quote, "\\", "`"):
            parts.append(quote)
            i += 2
        else:
            parts.append(c)
            i += 1
    raise DeviceFilterError("unterminated string", start)


def _describe(tok: _Token) -> str:
    if tok.kind == "end":
        return "end of rule"
    if tok.kind == "string":
        return f"string {tok.text!r}"
    return repr(tok.text)


# --- parser --------------------------------------------------------------------------------


class _Parser:
    """Recursive descent; precedence high to low: comparison, -not, -and, -or."""

    __slots__ = ("_depth", "_dialect", "_i", "_tokens", "extensions")

    def __init__(self, rule: str, dialect: RuleDialect) -> None:
        self._dialect = dialect
        self.extensions: set[str] = set()
        self._tokens = _tokenize(rule)
        self._i = 0
        self._depth = 0

    def parse(self) -> _Predicate:
        pred = self._or()
        tok = self._tokens[self._i]
        if tok.kind == ")":
            raise DeviceFilterError("unbalanced ')'", tok.pos)
        if tok.kind != "end":
            raise DeviceFilterError(
                f"unexpected {_describe(tok)} after a complete expression", tok.pos
            )
        return pred

    def _next(self) -> _Token:
        tok = self._tokens[self._i]
        if tok.kind != "end":
            self._i += 1
        return tok

    def _at_keyword(self, keyword: str) -> bool:
        tok = self._tokens[self._i]
        if tok.kind == "word" and tok.text.lower().removeprefix("-") == keyword:
            self._i += 1
            return True
        return False

    def _or(self) -> _Predicate:
        operands = [self._and()]
        while self._at_keyword("or"):
            operands.append(self._and())
        return _combine(operands, any_of=True)

    def _and(self) -> _Predicate:
        operands = [self._not()]
        while self._at_keyword("and"):
            operands.append(self._not())
        return _combine(operands, any_of=False)

    def _not(self) -> _Predicate:
        negations = 0
        while self._at_keyword("not"):
            negations += 1
        pred = self._primary()
        if negations % 2:
            return lambda d: not pred(d)
        return pred

    def _primary(self) -> _Predicate:
        tok = self._next()
        if tok.kind == "(":
            if self._depth >= _MAX_NESTING:
                raise DeviceFilterError(f"parentheses nested deeper than {_MAX_NESTING}", tok.pos)
            self._depth += 1
            pred = self._or()
            self._depth -= 1
            close = self._next()
            if close.kind != ")":
                reason = f"expected ')' to close the '(' at character {tok.pos}"
                raise DeviceFilterError(f"{reason}, got {_describe(close)}", close.pos)
            return pred
        dialect = self._dialect
        if tok.kind == "word" and tok.text.lower().startswith(dialect.prefix.lower()):
            return self._comparison(tok)
        reason = f"expected a {dialect.what} ({dialect.prefix}<name>) or '(', got {_describe(tok)}"
        raise DeviceFilterError(reason, tok.pos)

    def _comparison(self, prop: _Token) -> _Predicate:
        dialect = self._dialect
        name = prop.text[len(dialect.prefix) :]
        key = dialect.key(name)
        if key is None:
            where = prop.pos + len(dialect.prefix)
            raise DeviceFilterError(f"unknown {dialect.what} {name!r}{dialect.hint}", where)
        op_tok = self._next()
        if op_tok.kind != "word":
            reason = f"expected an operator after {prop.text!r}, got {_describe(op_tok)}"
            raise DeviceFilterError(reason, op_tok.pos)
        op = op_tok.text.lower().removeprefix("-")
        if op not in _OPERATORS:
            raise DeviceFilterError(f"unknown operator {op_tok.text!r}", op_tok.pos)
        if op in _LIST_OPERATORS:
            return dialect.membership(key, op == "notin", self._list(op_tok.text))
        tok = self._next()
        value = self._literal(tok)
        if value is None:
            if tok.kind == "[":
                reason = f"operator {op_tok.text} takes a single value, not a list"
            else:
                reason = f"expected a value after {op_tok.text} (a quoted string or True/False)"
                reason += f", got {_describe(tok)}"
            raise DeviceFilterError(reason, tok.pos)
        if op in ("match", "notmatch"):
            self.extensions.add("-notMatch" if op == "notmatch" else "-match")
            return dialect.match(key, op == "notmatch", _regex(value, tok.pos))
        return dialect.comparison(key, op, value.casefold())

    def _list(self, op: str) -> frozenset[str]:
        tok = self._next()
        if tok.kind != "[":
            reason = f'operator {op} takes a bracketed list like ["a", "b"], got {_describe(tok)}'
            raise DeviceFilterError(reason, tok.pos)
        values: set[str] = set()
        while True:
            tok = self._next()
            value = self._literal(tok)
            if value is None:
                raise DeviceFilterError(f"expected a list value, got {_describe(tok)}", tok.pos)
            values.add(value.casefold())
            tok = self._next()
            if tok.kind == "]":
                return frozenset(values)
            if tok.kind != ",":
                raise DeviceFilterError(f"expected ',' or ']', got {_describe(tok)}", tok.pos)

    def _literal(self, tok: _Token) -> str | None:
        """The value of a string token, or of True/False (as "true"/"false") where allowed."""
        if tok.kind == "string":
            return tok.text
        if tok.kind == "word" and tok.text.lower() in ("true", "false"):
            if not self._dialect.booleans:
                raise DeviceFilterError(f"values are quoted strings, not {tok.text}", tok.pos)
            return tok.text.lower()
        return None


# --- compiled predicates -------------------------------------------------------------------
# Each closure reads one key; None (absent) makes positive operators False, negative ones True.


def _compile_comparison(key: str, op: str, v: str) -> _Predicate:
    if key in _COLLECTIONS and op in ("contains", "notcontains"):
        if op == "contains":
            return lambda d: (
                (x := d.get(key)) is not None and v in [e.strip() for e in x.casefold().split(",")]
            )
        return lambda d: (
            (x := d.get(key)) is None or v not in [e.strip() for e in x.casefold().split(",")]
        )
    match op:
        case "eq":
            return lambda d: (x := d.get(key)) is not None and x.casefold() == v
        case "ne":
            return lambda d: (x := d.get(key)) is None or x.casefold() != v
        case "startswith":
            return lambda d: (x := d.get(key)) is not None and x.casefold().startswith(v)
        case "notstartswith":
            return lambda d: (x := d.get(key)) is None or not x.casefold().startswith(v)
        case "endswith":
            return lambda d: (x := d.get(key)) is not None and x.casefold().endswith(v)
        case "notendswith":
            return lambda d: (x := d.get(key)) is None or not x.casefold().endswith(v)
        case "contains":
            return lambda d: (x := d.get(key)) is not None and v in x.casefold()
        case "notcontains":
            return lambda d: (x := d.get(key)) is None or v not in x.casefold()
    raise AssertionError(op)  # pragma: no cover - _OPERATORS and this table agree


def _compile_in(key: str, negate: bool, values: frozenset[str]) -> _Predicate:
    if negate:
        return lambda d: (x := d.get(key)) is None or x.casefold() not in values
    return lambda d: (x := d.get(key)) is not None and x.casefold() in values


def _regex(pattern: str, position: int) -> Any:
    """`pattern` compiled by RE2 (case-insensitive); DeviceFilterError if RE2 refuses it."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is ours to report, not RE2's to print on stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "not RE2 syntax"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        message = f"invalid regular expression (RE2 syntax): {reason}"
        raise DeviceFilterError(message, position) from None


def _compile_match(key: str, negate: bool, regex: Any) -> _Predicate:
    search = regex.search
    if negate:
        return lambda d: (x := d.get(key)) is None or search(x) is None
    return lambda d: (x := d.get(key)) is not None and search(x) is not None


def _combine(operands: list[_Predicate], *, any_of: bool) -> _Predicate:
    """Join operands left to right into a balanced tree, so evaluation depth stays log(n)."""
    if len(operands) == 1:
        return operands[0]
    mid = len(operands) // 2
    a = _combine(operands[:mid], any_of=any_of)
    b = _combine(operands[mid:], any_of=any_of)
    if any_of:
        return lambda d: a(d) or b(d)
    return lambda d: a(d) and b(d)


def _device_key(name: str) -> str | None:
    key = name.lower()
    return key if key in PROPERTIES else None


DEVICE: Final = RuleDialect(
    prefix=_PREFIX,
    what="device property",
    key=_device_key,
    comparison=_compile_comparison,
    membership=_compile_in,
    match=_compile_match,
)
"""Device filters: `device.<property>` over `DeviceProperties`."""
