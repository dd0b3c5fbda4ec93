"""Policies Entra saves load; the documented shapes next to each refused one are accepted.

The refusals themselves are pinned with their exact messages by the golden files
(`golden/refuse_*.json`); these tests pin the other side of each rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.policy.diagnostics import PolicySetError, Severity
from pdp.policy.load import load_policy_set

SERVICE_PRINCIPAL = "5e000000-0000-4000-8000-000000000001"
APP = "a0000000-0000-4000-8000-000000000001"


def _policy(**parts: Any) -> dict[str, Any]:
    conditions = {
        "users": {"includeUsers": ["All"]},
        "applications": {"includeApplications": ["All"]},
        "clientAppTypes": ["all"],
    }
    conditions.update(parts.pop("conditions", {}))
    return {"id": "p1", "displayName": "p1", "state": "enabled", "conditions": conditions, **parts}


def _load(tmp_path: Path, document: dict[str, Any]) -> list[str]:
    source = tmp_path / "policy.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    _, diagnostics = load_policy_set(source)
    return [d.message for d in diagnostics if d.severity is Severity.WARNING]


ACCEPTED = {
    "workload identity blocked outside trusted locations": _policy(
        conditions={
            "users": {"includeUsers": ["None"]},
            "clientApplications": {"includeServicePrincipals": ["ServicePrincipalsInMyTenant"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        },
        grantControls={"operator": "and", "builtInControls": ["block"]},
    ),
    "workload identity blocked on an authentication context": _policy(
        conditions={
            "users": {"includeUsers": ["None"]},
            "clientApplications": {"includeServicePrincipals": [SERVICE_PRINCIPAL]},
            "applications": {"includeAuthenticationContextClassReferences": ["c1"]},
        },
        grantControls={"operator": "OR", "builtInControls": ["block"]},
    ),
    "persistent browser on All resources with an exclusion": _policy(
        conditions={"applications": {"includeApplications": ["All"], "excludeApplications": [APP]}},
        sessionControls={"persistentBrowser": {"isEnabled": True, "mode": "never"}},
    ),
    "password change with mfa for risky users": _policy(
        conditions={"userRiskLevels": ["high"]},
        grantControls={"operator": "AND", "builtInControls": ["mfa", "passwordChange"]},
    ),
    "password change with the MFA strength for risky users": _policy(
        conditions={"userRiskLevels": ["high"]},
        grantControls={
            "operator": "AND",
            "builtInControls": ["passwordChange"],
            "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000002"},
        },
        sessionControls={"signInFrequency": {"isEnabled": True, "frequencyInterval": "everyTime"}},
    ),
    "register device with a strength outside trusted locations": _policy(
        conditions={
            "applications": {"includeUserActions": ["urn:user:registerdevice"]},
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        },
        grantControls={
            "operator": "OR",
            "authenticationStrength": {"id": "00000000-0000-0000-0000-000000000004"},
        },
    ),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_documented_shape_loads_without_a_refusal(name: str, tmp_path: Path) -> None:
    """Each documented shape next to a refusal rule loads, with no Entra-rule warning either."""
    warnings = _load(tmp_path, ACCEPTED[name])
    assert not [w for w in warnings if "source: https://" in w]


def test_a_refusal_refuses_the_whole_set_and_names_its_source(tmp_path: Path) -> None:
    """One refused policy refuses the set, with the rule and its Learn page in the message."""
    bad = _policy(
        conditions={"applications": {"includeApplications": [APP]}},
        sessionControls={"persistentBrowser": {"isEnabled": True, "mode": "never"}},
    )
    good = {**_policy(grantControls={"operator": "OR", "builtInControls": ["mfa"]}), "id": "p2"}
    source = tmp_path / "set.json"
    source.write_text(json.dumps([good, bad]), encoding="utf-8")
    with pytest.raises(PolicySetError) as info:
        load_policy_set(source)
    message = str(info.value)
    assert "$[1].sessionControls.persistentBrowser" in message
    assert "(source: https://learn.microsoft.com/" in message
