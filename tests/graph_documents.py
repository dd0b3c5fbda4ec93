"""Small Graph documents the tests build policy folders from."""

from __future__ import annotations

from typing import Any

POLICY_ID = "7a3c0000-0000-4000-8000-000000000001"


def mfa_policy(policy_id: str = POLICY_ID, display_name: str = "MFA") -> dict[str, Any]:
    """An enabled policy requiring MFA of all users on all applications."""
    return {
        "id": policy_id,
        "displayName": display_name,
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": {"includeApplications": ["All"]},
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }
