"""Shared fixtures: a small policy set (Graph JSON, written inline) and sign-ins against it.

The set: MFA for all users on all apps except from the trusted office range; a block for
one group; a compliant device (with an 8-hour sign-in frequency) for the payroll app; a
disabled policy. Each sign-in is proto3 JSON whose name says the decision it gets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests check properties, not speed: on a shared machine (and in CI) one slow
# example or a slow draw must not fail a run. Every test's own @settings build on this.
settings.register_profile(
    "pdp", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("pdp")

BLOCKED_GROUP = "b10c0000-0000-0000-0000-000000000001"
PAYROLL_APP = "a0000000-0000-0000-0000-00000000c0de"
OTHER_APP = "a0000000-0000-0000-0000-000000000001"


def _policy(number: int, name: str, conditions: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {
        "id": f"0000000a-0000-0000-0000-00000000000{number}",
        "displayName": name,
        "state": rest.pop("state", "enabled"),
        "conditions": {"clientAppTypes": ["all"], **conditions},
        **rest,
    }


ALL_USERS = {"includeUsers": ["All"]}
ALL_APPS = {"includeApplications": ["All"]}
POLICIES = [
    _policy(
        1,
        "Require MFA for all users",
        {
            "users": ALL_USERS,
            "applications": ALL_APPS,
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        },
        grantControls={"operator": "OR", "builtInControls": ["mfa"]},
    ),
    _policy(
        2,
        "Block contractors",
        {"users": {"includeGroups": [BLOCKED_GROUP.upper()]}, "applications": ALL_APPS},
        grantControls={"operator": "OR", "builtInControls": ["block"]},
    ),
    _policy(
        3,
        "Compliant device for payroll",
        {"users": ALL_USERS, "applications": {"includeApplications": [PAYROLL_APP]}},
        grantControls={"operator": "OR", "builtInControls": ["compliantDevice"]},
        sessionControls={"signInFrequency": {"isEnabled": True, "value": 8, "type": "hours"}},
    ),
    _policy(
        4,
        "Old block",
        {"users": ALL_USERS, "applications": ALL_APPS},
        state="disabled",
        grantControls={"operator": "OR", "builtInControls": ["block"]},
    ),
]
OFFICE = {
    "@odata.type": "#microsoft.graph.ipNamedLocation",
    "id": "0ff1ce00-0000-0000-0000-000000000001",
    "displayName": "Office",
    "isTrusted": True,
    "ipRanges": [{"cidrAddress": "203.0.113.0/24"}],
}
_BASE = {"time": "2025-03-01T09:30:00.250Z", "clientAppType": "CLIENT_APP_TYPE_BROWSER"}
SIGN_INS: dict[str, dict[str, Any]] = {
    "challenge_mfa": {
        **_BASE,
        "requestId": "challenge-1",
        "subject": {"userId": "U-1"},
        "target": {"applicationId": OTHER_APP},
        "network": {"ipAddress": "198.51.100.7"},
        "authentication": {"methods": ["password"]},
    },
    "allow_after_mfa": {
        **_BASE,
        "requestId": "allow-1",
        "subject": {"userId": "U-1"},
        "target": {"applicationId": OTHER_APP},
        "network": {"ipAddress": "2001:db8::7"},
        "authentication": {"methods": ["password", "microsoftAuthenticatorPush"]},
        "explain": True,
    },
    "allow_from_office": {
        **_BASE,
        "requestId": "allow-2",
        "subject": {"userId": "U-1"},
        "target": {"applicationId": OTHER_APP},
        "network": {"ipAddress": "::ffff:203.0.113.10"},
        "authentication": {"methods": ["password"]},
    },
    "deny_blocked_group": {
        **_BASE,
        "requestId": "deny-1",
        "subject": {"userId": "U-2", "groupIds": [BLOCKED_GROUP]},
        "target": {"applicationId": OTHER_APP},
        "authentication": {"methods": ["fido2"]},
    },
    "deny_noncompliant_payroll": {
        **_BASE,
        "requestId": "deny-2",
        "subject": {"userId": "U-1"},
        "target": {"applicationId": PAYROLL_APP},
        "device": {"deviceId": "D-1", "platform": "PLATFORM_WINDOWS", "compliant": False},
        "authentication": {"methods": ["fido2"]},
        "explain": True,
    },
}


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    """A folder holding the shared policy set and its trusted office location."""
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "policies.json").write_text(json.dumps(POLICIES, indent=2), encoding="utf-8")
    (folder / "office.json").write_text(json.dumps(OFFICE), encoding="utf-8")
    return folder


@pytest.fixture
def sign_ins() -> dict[str, dict[str, Any]]:
    """Named sign-ins (proto3 JSON EvaluateRequests); each name starts with its decision."""
    return json.loads(json.dumps(SIGN_INS))  # a deep copy per test
