"""Application filters: `conditions.applications.applicationFilter` over custom security attributes.

A filter for applications tags target resources by the custom security attributes of their
service principals and is evaluated at token issuance. Graph documents its rule as the
dynamic-group rule syntax, the grammar device filters use, so this module only states what
differs (a `RuleDialect` for `pdp.policy.device_filter`'s parser):

- properties are `CustomSecurityAttribute.<attributeSet>_<attributeName>` (for example
  `CustomSecurityAttribute.ConditionalAccessTest_policyRequirement`), case-insensitive;
- values are quoted strings: Conditional Access supports only string attributes;
- an attribute holds one string or, when multi-valued, several. On one string the operators
  mean what they mean for device properties (`-contains` is a substring test); on several,
  `-contains` / `-notContains` compare whole values, and the other positive operators hold
  when any value satisfies them (negative ones when none does);
- an attribute the application does not have is null: positive operators are false and
  negative ones true, as for an unregistered device.

The include/exclude `mode` is applied by the evaluator. Parsed once per policy set;
`ApplicationFilter.matches` is what runs per request, and only for policies with a filter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from pdp.policy.device_filter import RuleDialect, RulePredicate, parse_rule

ApplicationAttributes: TypeAlias = Mapping[str, str | tuple[str, ...]]
"""An application as a filter sees it: lower-cased `set_attribute` -> value(s); absent is null."""

_NAME: Final = re.compile(r"^[A-Za-z0-9]+_[A-Za-z0-9]+$")
_POSITIVE_OF: Final = {
    "ne": "eq",
    "notstartswith": "startswith",
    "notendswith": "endswith",
    "notcontains": "contains",
}


@dataclass(frozen=True, slots=True)
class ApplicationFilter:
    """A compiled application-filter rule; build one with `parse_application_filter`."""

    rule: str
    _predicate: RulePredicate = field(repr=False, compare=False)

    def matches(self, attributes: ApplicationAttributes) -> bool:
        """Whether the application satisfies the rule (before the filter's include/exclude mode)."""
        return self._predicate(attributes)


def _key(name: str) -> str | None:
    return name.lower() if _NAME.match(name) else None


def _test(op: str, v: str) -> Callable[[str], bool]:
    """A positive operator applied to one string value and a casefolded constant."""
    match op:
        case "eq":
            return lambda x: x.casefold() == v
        case "startswith":
            return lambda x: x.casefold().startswith(v)
        case "endswith":
            return lambda x: x.casefold().endswith(v)
    return lambda x: v in x.casefold()  # contains


def _negated(holds: RulePredicate, negate: bool) -> RulePredicate:
    return (lambda attributes: not holds(attributes)) if negate else holds


def _comparison(key: str, op: str, v: str) -> RulePredicate:
    positive = _POSITIVE_OF.get(op, op)
    test = _test(positive, v)
    whole = positive == "contains"  # on several values, -contains compares whole values

    def holds(attributes: Mapping[str, Any]) -> bool:
        x = attributes.get(key)
        if x is None:
            return False
        if isinstance(x, str):
            return test(x)
        if whole:
            return any(item.casefold() == v for item in x)
        return any(test(item) for item in x)

    return _negated(holds, positive != op)


def _membership(key: str, negate: bool, values: frozenset[str]) -> RulePredicate:
    def holds(attributes: Mapping[str, Any]) -> bool:
        x = attributes.get(key)
        if x is None:
            return False
        return any(item.casefold() in values for item in ((x,) if isinstance(x, str) else x))

    return _negated(holds, negate)


def _match(key: str, negate: bool, regex: re.Pattern[str]) -> RulePredicate:
    search = regex.search

    def holds(attributes: Mapping[str, Any]) -> bool:
        x = attributes.get(key)
        if x is None:
            return False
        return any(search(item) is not None for item in ((x,) if isinstance(x, str) else x))

    return _negated(holds, negate)


APPLICATION: Final = RuleDialect(
    prefix="CustomSecurityAttribute.",
    what="custom security attribute",
    key=_key,
    comparison=_comparison,
    membership=_membership,
    match=_match,
    booleans=False,
    hint=" (written <attributeSet>_<attributeName>)",
)
"""Application filters: `CustomSecurityAttribute.<set>_<attribute>` over `ApplicationAttributes`."""


def parse_application_filter(rule: str) -> ApplicationFilter:
    """Parse `rule` once; raise `DeviceFilterError` (the shared grammar's error) if malformed."""
    return ApplicationFilter(rule, parse_rule(rule, APPLICATION))
