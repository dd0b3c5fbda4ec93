"""Microsoft's application bundles: their data files, and every member through both evaluators."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from reference_evaluator import reference_evaluate

from pdp.context import SignInContext
from pdp.engine.decision import Result
from pdp.engine.evaluate import evaluate
from pdp.policy.app_bundles import BUNDLES, Bundle
from pdp.policy.compile import compile_policy_set
from pdp.policy.diagnostics import PolicySetError
from pdp.policy.load import load_policy_set
from pdp.policy.model import PolicySet

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
WASMA = "797f4846-ba00-4fd7-ba43-dac1f8f63013"
ID_SOURCES = ("learn-first-party-app-ids", "microsoft-info:")


def test_the_three_documented_bundles_ship() -> None:
    """Office365, MicrosoftAdminPortals and the Service Management API bundle are shipped."""
    assert set(BUNDLES) == {"Office365", "MicrosoftAdminPortals", WASMA}


@pytest.mark.parametrize("name", sorted(BUNDLES))
def test_bundle_file_names_its_sources_and_every_id(name: str) -> None:
    """Each bundle cites https pages with the date read; members are unique GUIDs with a source."""
    bundle = BUNDLES[name]
    assert bundle.sources
    for source in bundle.sources:
        assert source.url.startswith("https://"), source
        assert date.fromisoformat(source.read) <= datetime.now(tz=UTC).date(), source
    ids = [m.app_id for m in bundle.members]
    assert len(ids) == len(set(ids)), "an app id is listed twice"
    for member in bundle.members:
        assert GUID.match(member.app_id), member
        assert member.name.strip(), member
        assert member.id_source.startswith(ID_SOURCES), member


def _names(bundle: Bundle) -> set[str]:
    return {m.name for m in bundle.members} | set(bundle.unresolved)


def test_office365_holds_the_apps_the_learn_page_lists() -> None:
    """Forms, Planner, Sway, Viva Engage, OneNote, Exchange, SharePoint, Teams are members."""
    office = BUNDLES["Office365"]
    member_names = {m.name for m in office.members}
    for app in (
        "Microsoft Forms",
        "Microsoft Planner",
        "Sway",
        "Viva Engage",
        "OneNote",
        "Office 365 Exchange Online",
        "Office 365 SharePoint Online",
        "Microsoft Teams",
    ):
        assert app in member_names, app
    assert len(_names(office)) >= 120  # the page lists about 130 names


def test_admin_portals_cover_the_eight_documented_portals() -> None:
    """Every portal the Learn page names is a member or listed as unresolved (no public id)."""
    assert _names(BUNDLES["MicrosoftAdminPortals"]) >= {
        "Azure portal",
        "Exchange admin center",
        "Microsoft 365 admin center",
        "Microsoft 365 Defender portal",
        "Microsoft Entra admin center",
        "Microsoft Intune admin center",
        "Microsoft Purview portal",
        "Microsoft Teams admin center",
    }


def test_service_management_api_covers_portal_arm_cli_and_powershell() -> None:
    """The Service Management API bundle holds itself, the Azure portal, Azure CLI, PowerShell."""
    ids = BUNDLES[WASMA].app_ids
    assert {
        WASMA,
        "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",  # Azure portal
        "04b07795-8ddb-461a-bbee-02f9e1bf7b46",  # Azure CLI
        "1950a258-227b-4e31-a9cf-717495945fc2",  # Azure PowerShell
    } <= ids


def _policy(policy_id: str, applications: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": policy_id,
        "displayName": policy_id,
        "state": "enabled",
        "conditions": {
            "users": {"includeUsers": ["All"]},
            "applications": applications,
            "clientAppTypes": ["all"],
        },
        "grantControls": {"operator": "OR", "builtInControls": ["mfa"]},
    }


def _load(tmp_path: Path, documents: list[dict[str, Any]]) -> PolicySet:
    source = tmp_path / "policies.json"
    readable_ids = {"pdp": {"objectIds": "any"}}  # "app-new", "a1": names, not GUIDs
    source.write_text(json.dumps([readable_ids, *documents]), encoding="utf-8")
    policy_set, _ = load_policy_set(source)
    return policy_set


@pytest.fixture(scope="module")
def bundle_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PolicySet]:
    """Per bundle: one policy including it and one taking it out of All resources."""
    out = {}
    for name in BUNDLES:
        documents = [
            _policy("p-include", {"includeApplications": [name]}),
            _policy("p-exclude", {"includeApplications": ["All"], "excludeApplications": [name]}),
        ]
        out[name] = _load(tmp_path_factory.mktemp("bundle"), documents)
    return out


MEMBERS = [(name, member.app_id) for name, bundle in BUNDLES.items() for member in bundle.members]


@pytest.mark.parametrize(("name", "app_id"), MEMBERS, ids=[f"{n}:{a}" for n, a in MEMBERS])
def test_every_member_is_in_the_bundle_for_both_evaluators(
    name: str, app_id: str, bundle_sets: dict[str, PolicySet]
) -> None:
    """A sign-in to each member meets a policy including the bundle, and not one excluding it."""
    policy_set = bundle_sets[name]
    compiled = compile_policy_set(policy_set)
    ctx = SignInContext(
        request_id="r",
        time=0.0,
        user_id="u1",
        application_id=app_id,
        client_app_type="browser",
        explain=True,
    )
    for decision in (evaluate(ctx, compiled), reference_evaluate(ctx, policy_set, compiled)):
        results = {p.id: p.result for p in decision.policies}
        assert results == {"p-include": Result.FAILURE, "p-exclude": Result.NOT_APPLIED}


def test_an_app_outside_every_bundle_meets_neither(bundle_sets: dict[str, PolicySet]) -> None:
    """An app no bundle holds is outside the include policy and inside All-but-bundle."""
    for policy_set in bundle_sets.values():
        ctx = SignInContext(request_id="r", time=0.0, user_id="u1", application_id="app-x")
        decision = evaluate(ctx, compile_policy_set(policy_set))
        assert [p.id for p in decision.policies] == ["p-exclude"]


def test_config_document_extends_a_bundle(tmp_path: Path) -> None:
    """A list in pdp config adds app ids to a built-in bundle and keeps its members."""
    policy_set = _load(tmp_path, [{"pdp": {"applicationGroups": {"office365": ["app-new"]}}}])
    groups = {k.lower(): v for k, v in policy_set.application_groups.items()}
    assert groups["office365"] == BUNDLES["Office365"].app_ids | {"app-new"}


def test_config_document_replaces_a_bundle(tmp_path: Path) -> None:
    """`{"replace": [...]}` in pdp config replaces a built-in bundle's members."""
    documents = [{"pdp": {"applicationGroups": {"MicrosoftAdminPortals": {"replace": ["a1"]}}}}]
    policy_set = _load(tmp_path, documents)
    assert policy_set.application_groups["MicrosoftAdminPortals"] == frozenset({"a1"})


def test_replacement_applies_before_extension_whatever_the_order(tmp_path: Path) -> None:
    """One document extending and another replacing give the replacement plus the extension."""
    documents = [
        {"pdp": {"applicationGroups": {"Office365": ["a2"]}}},
        {"pdp": {"applicationGroups": {"Office365": {"replace": ["a1"]}}}},
    ]
    policy_set = _load(tmp_path, documents)
    assert policy_set.application_groups["Office365"] == frozenset({"a1", "a2"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"replace": []}, "$.pdp.applicationGroups.Office365.replace: an application group needs"),
        ({"extend": ["a"]}, "$.pdp.applicationGroups.Office365.extend: unknown key"),
        ([], "$.pdp.applicationGroups.Office365: an application group needs app ids"),
    ],
)
def test_bad_group_configuration_is_refused(tmp_path: Path, value: Any, message: str) -> None:
    """An empty or misspelt group configuration is an error naming its path."""
    source = tmp_path / "config.json"
    source.write_text(json.dumps({"pdp": {"applicationGroups": {"Office365": value}}}))
    with pytest.raises(PolicySetError) as info:
        load_policy_set(source)
    assert message in str(info.value)
