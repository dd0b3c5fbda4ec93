"""EvaluateRequest.target.custom_security_attributes -> SignInContext.application_attributes."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format

from pdp.errors import InvalidRequest
from pdp.server.convert_in import MAX_APPLICATION_ATTRIBUTES, MAX_ATTRIBUTE_VALUES, to_context
from pdp.v1 import pdp_pb2 as pb


def _attributes(value: Any) -> dict[str, Any]:
    request = {"target": {"applicationId": "app-1", "customSecurityAttributes": value}}
    ctx = to_context(json_format.ParseDict(request, pb.EvaluateRequest()), 0.0)
    return dict(ctx.application_attributes)


def test_flat_keys_are_lower_cased_and_lists_become_tuples() -> None:
    """`Set_attribute` keys are read as rules name them; a list is a multi-valued attribute."""
    got = _attributes({"Eng_Tier": " Production ", "CAT_policyRequirement": ["requireMFA", "x"]})
    assert got == {"eng_tier": "Production", "cat_policyrequirement": ("requireMFA", "x")}


def test_graph_nested_form_is_flattened_and_annotations_skipped() -> None:
    """Graph's {set: {attribute: value}} lands on the same keys; @odata keys are ignored."""
    got = _attributes(
        {
            "@odata.type": "#x",
            "ConditionalAccessTest": {
                "@odata.type": "#microsoft.graph.customSecurityAttributeValue",
                "policyRequirement@odata.type": "#Collection(String)",
                "policyRequirement": ["requireMFA"],
            },
        }
    )
    assert got == {"conditionalaccesstest_policyrequirement": ("requireMFA",)}


def test_unset_means_no_attributes() -> None:
    """A request without the field carries no attributes (every rule property is null)."""
    ctx = to_context(pb.EvaluateRequest(), 0.0)
    assert dict(ctx.application_attributes) == {}


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"Eng_tier": True}, "target.custom_security_attributes['Eng_tier']", "string or a list"),
        ({"Eng_tier": 3}, "target.custom_security_attributes['Eng_tier']", "string or a list"),
        ({"Eng_tags": ["a", 1]}, "target.custom_security_attributes['Eng_tags'][1]", "strings"),
        (
            {"Eng_tier": "a", "ENG_TIER": "b"},
            "target.custom_security_attributes[",
            "given twice",
        ),
        ({"": "a"}, "target.custom_security_attributes['']", "cannot be empty"),
        (
            {"Eng": {"tier": {"deeper": "x"}}},
            "target.custom_security_attributes['Eng']['tier']",
            "string or a list",
        ),
        (
            {"Eng_tags": ["v"] * (MAX_ATTRIBUTE_VALUES + 1)},
            "target.custom_security_attributes['Eng_tags']",
            "more than",
        ),
        (
            {f"S_a{i}": "v" for i in range(MAX_APPLICATION_ATTRIBUTES + 1)},
            "target.custom_security_attributes",
            "more than",
        ),
    ],
)
def test_bad_attributes_are_invalid_argument_naming_the_field(
    value: Any, field: str, message: str
) -> None:
    """A value that is not a string or strings, a duplicate or too much is refused by name."""
    with pytest.raises(InvalidRequest) as info:
        _attributes(value)
    assert info.value.field.startswith(field)
    assert message in str(info.value)
