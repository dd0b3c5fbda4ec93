"""Application filters: the device-filter grammar over custom security attributes."""

from __future__ import annotations

import pytest

from pdp.policy.application_filter import ApplicationAttributes, parse_application_filter
from pdp.policy.device_filter import DeviceFilterError

ATTR = "CustomSecurityAttribute.Eng_tier"
MULTI = "CustomSecurityAttribute.Eng_tags"
APP: ApplicationAttributes = {"eng_tier": "Production", "eng_tags": ("requireMFA", "gpu")}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (f'{ATTR} -eq "production"', True),  # case-insensitive
        (f'{ATTR} -ne "production"', False),
        (f'{ATTR} -startsWith "Prod"', True),
        (f'{ATTR} -notStartsWith "Prod"', False),
        (f'{ATTR} -endsWith "tion"', True),
        (f'{ATTR} -notEndsWith "tion"', False),
        (f'{ATTR} -contains "duct"', True),  # one string: substring
        (f'{ATTR} -notContains "duct"', False),
        (f'{ATTR} -in ["test", "production"]', True),
        (f'{ATTR} -notIn ["test", "production"]', False),
        (f'{ATTR} -match "^prod"', True),
        (f'{MULTI} -contains "requiremfa"', True),  # several values: whole values
        (f'{MULTI} -contains "MFA"', False),
        (f'{MULTI} -notContains "MFA"', True),
        (f'{MULTI} -eq "gpu"', True),  # any value
        (f'{MULTI} -ne "gpu"', False),
        (f'{MULTI} -startsWith "req"', True),
        (f'{MULTI} -in ["gpu"]', True),
        (f'{MULTI} -notIn ["gpu"]', False),
        (f'{ATTR} -eq "x" -or {MULTI} -contains "gpu"', True),
        (f'{ATTR} -eq "x" -or {MULTI} -contains "gpu" -and {ATTR} -eq "y"', False),
        (f'-not ({ATTR} -eq "x")', True),
        ('customsecurityattribute.ENG_TIER -EQ "production"', True),  # names case-insensitive
    ],
)
def test_operators_on_one_and_several_values(rule: str, expected: bool) -> None:
    """Each operator on a single-valued and a multi-valued attribute."""
    assert parse_application_filter(rule).matches(APP) is expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (f'{ATTR} -eq "x"', False),
        (f'{ATTR} -contains "x"', False),
        (f'{ATTR} -in ["x"]', False),
        (f'{ATTR} -ne "x"', True),
        (f'{ATTR} -notContains "x"', True),
        (f'{ATTR} -notIn ["x"]', True),
        (f'{ATTR} -notMatch "x"', True),
    ],
)
def test_an_absent_attribute_is_null(rule: str, expected: bool) -> None:
    """Without the attribute, positive operators are false and negative ones true."""
    assert parse_application_filter(rule).matches({}) is expected


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            'CustomSecurityAttribute.tier -eq "x"',
            "unknown custom security attribute 'tier' (written <attributeSet>_<attributeName>)",
        ),
        ('CustomSecurityAttribute.Set.Attr -eq "x"', "unknown custom security attribute"),
        (f"{ATTR} -eq True", "values are quoted strings, not True"),
        (f'{ATTR} -in ["a", False]', "values are quoted strings, not False"),
        ('device.model -eq "x"', "expected a custom security attribute"),
        (f'{ATTR} -eq "x" -and', "expected a custom security attribute"),
        (f'{ATTR} -match "("', "invalid regular expression"),
    ],
)
def test_malformed_rules_say_what_is_wrong(rule: str, message: str) -> None:
    """A rule outside the dialect is refused with its reason."""
    with pytest.raises(DeviceFilterError) as info:
        parse_application_filter(rule)
    assert message in str(info.value)


def test_the_device_dialect_does_not_read_attribute_rules() -> None:
    """A device filter naming a custom security attribute is refused (the dialects stay apart)."""
    from pdp.policy.device_filter import parse_device_filter

    with pytest.raises(DeviceFilterError, match="expected a device property"):
        parse_device_filter(f'{ATTR} -eq "x"')
