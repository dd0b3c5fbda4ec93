"""pdp's config document decides whether object ids must be GUIDs; it is read before the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.policy.diagnostics import PolicySetError, Severity
from pdp.policy.load import load_policy_set

POLICY = {
    "id": "p-1",
    "displayName": "MFA for engineers",
    "state": "enabled",
    "conditions": {
        "users": {"includeGroups": ["grp-engineers"]},
        "applications": {"includeApplications": ["All"]},
        "clientAppTypes": ["all"],
    },
    "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
}


def _write(tmp_path: Path, documents: list[Any]) -> Path:
    source = tmp_path / "policies.json"
    source.write_text(json.dumps(documents), encoding="utf-8")
    return source


def test_a_name_where_graph_takes_a_guid_refuses_the_set(tmp_path: Path) -> None:
    """By default a group name in includeGroups is an error naming the value and its path."""
    with pytest.raises(PolicySetError) as refused:
        load_policy_set(_write(tmp_path, [POLICY]))
    [error] = [d for d in refused.value.diagnostics if d.severity is Severity.ERROR]
    assert error.path == "$[0].conditions.users.includeGroups[0]"
    assert "'grp-engineers' is not an object id" in error.message


def test_object_ids_any_accepts_names_even_when_the_config_comes_last(tmp_path: Path) -> None:
    """The config document is read first, wherever it sits in the set."""
    policy_set, diagnostics = load_policy_set(
        _write(tmp_path, [POLICY, {"pdp": {"objectIds": "any"}}])
    )
    assert [d for d in diagnostics if d.severity is Severity.ERROR] == []
    assert policy_set.policies[0].conditions.users.include_groups == {"grp-engineers"}


def test_config_documents_that_disagree_on_object_ids_are_an_error(tmp_path: Path) -> None:
    """Two config documents saying guid and any refuse the set rather than pick one."""
    documents = [{"pdp": {"objectIds": "any"}}, {"pdp": {"objectIds": "guid"}}, POLICY]
    with pytest.raises(PolicySetError) as refused:
        load_policy_set(_write(tmp_path, documents))
    messages = [d.message for d in refused.value.diagnostics if d.severity is Severity.ERROR]
    assert any("disagree on objectIds" in m for m in messages)


def test_an_unknown_object_ids_mode_is_an_error(tmp_path: Path) -> None:
    """The objectIds mode is guid or any; anything else is refused, not read as a default."""
    with pytest.raises(PolicySetError) as refused:
        load_policy_set(_write(tmp_path, [{"pdp": {"objectIds": "names"}}, POLICY]))
    paths = [d.path for d in refused.value.diagnostics if d.severity is Severity.ERROR]
    assert "$[0].pdp.objectIds" in paths


def test_application_groups_stand_in_for_app_ids(tmp_path: Path) -> None:
    """A group defined in the config (or built in) is accepted where an app id is expected."""
    policy = json.loads(json.dumps(POLICY))
    policy["conditions"]["users"] = {"includeUsers": ["All"]}
    policy["conditions"]["applications"] = {"includeApplications": ["Notebooks", "office365"]}
    group = {"pdp": {"applicationGroups": {"Notebooks": ["6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"]}}}
    _, diagnostics = load_policy_set(_write(tmp_path, [policy, group]))
    assert [d for d in diagnostics if d.severity is Severity.ERROR] == []
