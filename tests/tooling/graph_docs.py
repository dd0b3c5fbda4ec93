"""Small Graph documents for lint tests: policies and named locations, written as a set."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

ALL_USERS = {"includeUsers": ["All"]}
ALL_APPS = {"includeApplications": ["All"]}
BREAK_GLASS = "b9a55000-0000-4000-8000-0000000000bb"
ENGINEERS = "e9e00000-0000-4000-8000-000000000001"
CONTRACTORS = "c0c00000-0000-4000-8000-000000000002"
OFFICE = "0ff1ce00-0000-4000-8000-000000000001"
ALLOWED_COUNTRIES = "c0c0c0c0-0000-4000-8000-000000000001"
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
_ids = itertools.count(1)


def policy(
    name: str,
    *,
    users: dict[str, Any] | None = None,
    apps: dict[str, Any] | None = None,
    grant: list[str] | None = None,
    operator: str = "OR",
    strength: str = "",
    state: str = "enabled",
    **conditions: Any,
) -> dict[str, Any]:
    """A conditionalAccessPolicy; `grant` lists builtInControls, `strength` a strength id."""
    controls: dict[str, Any] = {"operator": operator, "builtInControls": grant or []}
    if strength:
        controls["authenticationStrength"] = {"id": strength}
    return {
        "id": f"a0000000-0000-4000-8000-{next(_ids):012d}",
        "displayName": name,
        "state": state,
        "conditions": {
            "users": users or ALL_USERS,
            "applications": apps or ALL_APPS,
            "clientAppTypes": conditions.pop("clientAppTypes", ["all"]),
            **conditions,
        },
        "grantControls": controls,
    }


def all_users_except(*groups: str) -> dict[str, Any]:
    """conditions.users: everyone but members of `groups`."""
    return {"includeUsers": ["All"], "excludeGroups": list(groups)}


def office() -> dict[str, Any]:
    """A trusted IP named location (203.0.113.0/24)."""
    return {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": OFFICE,
        "displayName": "Office",
        "isTrusted": True,
        "ipRanges": [{"cidrAddress": "203.0.113.0/24"}],
    }


def countries(*codes: str) -> dict[str, Any]:
    """A country named location."""
    return {
        "@odata.type": "#microsoft.graph.countryNamedLocation",
        "id": ALLOWED_COUNTRIES,
        "displayName": "Allowed countries",
        "countriesAndRegions": list(codes),
        "includeUnknownCountriesAndRegions": False,
    }


def write_set(folder: Path, *documents: dict[str, Any]) -> Path:
    """Write `documents` as one Graph list file in `folder` and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policies.json").write_text(
        json.dumps({"value": list(documents)}, indent=2), encoding="utf-8"
    )
    return folder
