"""The reference evaluator's own semantics, checked on hand-built sign-in contexts.

The scenarios and the property tests compare it with the fast evaluator; these pin what it
says where the two could share a mistake (special values, doubt about guests, addresses).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reference_evaluator import (
    applicability,
    effective_sign_in_risk,
    level_matches,
    location_contains,
    target_reason,
)

from pdp.context import SignInContext
from pdp.policy.load import load_policy_set
from pdp.policy.model import PolicySet
from pdp.risk.assessment import Assessment

TIME = 1_777_636_800.0


def policy(policy_id: str, state: str = "enabled", **conditions: Any) -> dict[str, Any]:
    """A Graph policy document with All users / All apps unless `conditions` say otherwise."""
    return {
        "id": policy_id,
        "displayName": policy_id,
        "state": state,
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
            **conditions,
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }


def load(tmp_path: Path, *documents: dict[str, Any]) -> PolicySet:
    """Load Graph documents as a policy set (readable ids: objectIds any)."""
    source = tmp_path / "policies.json"
    config = {"pdp": {"objectIds": "any"}}
    source.write_text(json.dumps([config, *documents]), encoding="utf-8")
    return load_policy_set(source)[0]


def context(**fields: Any) -> SignInContext:
    """A user sign-in context with the given fields."""
    return SignInContext(request_id="r", time=TIME, **{"user_id": "u1", **fields})


@pytest.mark.parametrize(
    ("applications", "reason"),
    [
        ({"includeUserActions": ["urn:user:registerdevice"]}, "userActions"),
        (
            {"includeApplications": ["None"], "includeUserActions": ["urn:user:registerdevice"]},
            "userActions",
        ),
        ({"includeAuthenticationContextClassReferences": ["c1"]}, "authenticationContext"),
        (
            {
                "includeUserActions": ["urn:user:registerdevice"],
                "includeAuthenticationContextClassReferences": ["c1"],
            },
            "application",
        ),
        (
            {"includeApplications": ["a1"], "includeUserActions": ["urn:user:registerdevice"]},
            "application",
        ),
        ({"includeApplications": ["a1"]}, "application"),
    ],
)
def test_target_reason_names_what_the_policy_targets_alone(
    tmp_path: Path, applications: dict[str, Any], reason: str
) -> None:
    """The reason is userActions or authenticationContext only if that is all it targets."""
    policy_set = load(tmp_path, policy("p", applications=applications))
    assert target_reason(policy_set.policies[0]) == reason


def test_disabled_policies_are_not_evaluated(tmp_path: Path) -> None:
    """Every policy but the disabled ones is evaluated."""
    policy_set = load(tmp_path, policy("p-on"), policy("p-off", state="disabled"))
    assert applicability(context(), policy_set) == {"p-on": ()}


def test_guest_doubt_matches_include_and_not_exclude(tmp_path: Path) -> None:
    """A guest of unknown type and tenant is in an include rule and not in an exclude rule."""
    rule = {
        "guestOrExternalUserTypes": "serviceProvider",
        "externalTenants": {"membershipKind": "enumerated", "members": ["t1"]},
    }
    policy_set = load(
        tmp_path,
        policy("p-include", users={"includeGuestsOrExternalUsers": rule}),
        policy("p-exclude", users={"includeUsers": ["All"], "excludeGuestsOrExternalUsers": rule}),
    )
    assert applicability(context(guest=True), policy_set) == {"p-include": (), "p-exclude": ()}
    known = context(guest=True, guest_type="serviceProvider", home_tenant_id="t2")
    assert applicability(known, policy_set) == {"p-include": ("users",), "p-exclude": ()}


def test_ipv4_mapped_address_is_read_as_ipv4(tmp_path: Path) -> None:
    """An IPv4-mapped IPv6 address text lies in the IPv4 range holding its IPv4 address."""
    policy_set = load(
        tmp_path,
        {"id": "loc", "displayName": "loc", "ipRanges": [{"cidrAddress": "10.0.0.0/8"}]},
    )
    location = policy_set.locations["loc"]
    assert location_contains(context(ip_address="::ffff:10.1.2.3"), location)
    assert not location_contains(context(ip_address="::ffff:11.1.2.3"), location)
    assert not location_contains(context(ip_address=""), location)
    assert not location_contains(context(ip_address="10.1.2.3"), None)


def test_every_reason_in_what_if_order(tmp_path: Path) -> None:
    """A workload-identity sign-in missing every condition lists them in Graph's order."""
    workload = policy(
        "p",
        users={"includeUsers": ["None"]},
        clientApplications={"includeServicePrincipals": ["sp2"]},
        applications={"includeApplications": ["a1"]},
        platforms={"includePlatforms": ["iOS"]},
        devices={"deviceFilter": {"mode": "include", "rule": 'device.model -eq "x"'}},
        clientAppTypes=["browser"],
        locations={"includeLocations": ["loc-missing"]},
        signInRiskLevels=["high"],
        userRiskLevels=["high"],
        servicePrincipalRiskLevels=["high"],
        insiderRiskLevels="elevated",
        authenticationFlows={"transferMethods": "deviceCodeFlow"},
    )
    workload["grantControls"] = {"operator": "OR", "builtInControls": ["block"]}
    policy_set = load(tmp_path, workload)
    ctx = SignInContext(request_id="r", time=TIME, service_principal_id="sp1")
    assert applicability(ctx, policy_set)["p"] == (
        "workloadIdentities",
        "application",
        "devicePlatform",
        "devices",
        "clientApps",
        "location",
        "signInRisk",
        "userRisk",
        "servicePrincipalRisk",
        "insiderRisk",
        "authenticationFlow",
    )


def test_effective_sign_in_risk_is_the_maximum() -> None:
    """The own assessment raises the upstream sign-in risk and never lowers it."""
    assert effective_sign_in_risk(context(sign_in_risk="low"), Assessment("high")) == "high"
    assert effective_sign_in_risk(context(sign_in_risk="medium"), Assessment("low")) == "medium"
    assert effective_sign_in_risk(context(), Assessment()) == "none"


def test_unset_level_reads_none() -> None:
    """An empty levels condition matches anything; an unset level is `none`."""
    assert level_matches(frozenset(), "high")
    assert level_matches(frozenset({"none"}), "")
    assert not level_matches(frozenset({"low"}), "")
