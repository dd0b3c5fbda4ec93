"""Properties of the decision over random policy sets and random sign-ins (hypothesis).

Policies are Graph documents drawn over a small universe (three users, two groups, two
roles, three apps and an app group, application filters over two custom security
attributes, five named locations of every kind, every platform, client app type, risk level
and flow), so random requests hit them often. Each example goes
the whole way: documents -> `load_policy_set` -> `compile_policy_set`, and an
EvaluateRequest -> `to_context`, as in production.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import pprint
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf.json_format import ParseDict
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_evaluator import reference_evaluate

from pdp.context import ContentMemo
from pdp.engine.decision import Decision, Result, Verdict
from pdp.engine.evaluate import evaluate
from pdp.policy.compile import CompiledPolicySet, compile_policy_set
from pdp.policy.load import load_policy_set
from pdp.policy.model import PolicySet
from pdp.risk.assessment import Assessment
from pdp.server.convert_in import to_context
from pdp.v1 import pdp_pb2

SETTINGS = settings(max_examples=200, deadline=None, database=None)
TIME = 1_777_636_800  # 2026-05-01T12:00:00Z

USERS = ["u1", "u2", "u3"]
GROUPS = ["g1", "g2"]
ROLES = ["r1", "r2"]
APPS = ["a1", "a2", "a3", "00000003-0000-0ff1-ce00-000000000000"]
SERVICE_PRINCIPALS = ["sp1", "sp2"]
TENANTS = ["t1", "t2"]
GUEST_TYPES = ["b2bCollaborationGuest", "internalGuest", "serviceProvider", "b2bDirectConnectUser"]
USER_ACTIONS = ["urn:user:registersecurityinfo", "urn:user:registerdevice"]
CONTEXTS = ["c1", "c2"]
LEVELS = ["none", "low", "medium", "high"]
INSIDER_LEVELS = ["minor", "moderate", "elevated"]
METHODS = [
    "password",
    "sms",
    "fido2",
    "microsoftAuthenticatorPush",
    "hardwareOath",
    "email",
    "temporaryAccessPassOneTime",
    "windowsHelloForBusiness",
]
CONTROLS = [
    "mfa",
    "compliantDevice",
    "domainJoinedDevice",
    "approvedApplication",
    "compliantApplication",
    "passwordChange",
]
SATISFIABLE = [*CONTROLS, "termsOfUse:tou1", "custom1", "authenticationStrength:s-custom"]
RULES = [
    'device.extensionAttribute1 -eq "SAW"',
    "device.isCompliant -eq True",
    'device.trustType -ne "ServerAD"',
    'device.deviceOwnership -eq "Company" -or device.isCompliant -eq True',
]
FIXED_DOCUMENTS: list[dict[str, Any]] = [
    {"pdp": {"objectIds": "any", "applicationGroups": {"Grp": ["a1", "a2"]}}},
    {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": "loc-a",
        "displayName": "A",
        "isTrusted": True,
        "ipRanges": [{"cidrAddress": "10.0.0.0/8"}],
    },
    {
        "@odata.type": "#microsoft.graph.ipNamedLocation",
        "id": "loc-b",
        "displayName": "B",
        "ipRanges": [{"cidrAddress": "10.1.0.0/16"}, {"cidrAddress": "fd00::/16"}],
    },
    {
        "@odata.type": "#microsoft.graph.countryNamedLocation",
        "id": "loc-c",
        "displayName": "C",
        "countriesAndRegions": ["NL", "DE"],
        "includeUnknownCountriesAndRegions": True,
    },
    {
        "@odata.type": "#microsoft.graph.countryNamedLocation",
        "id": "loc-d",
        "displayName": "D",
        "countriesAndRegions": ["US"],
    },
    {
        "@odata.type": "#microsoft.graph.compliantNetworkNamedLocation",
        "id": "loc-e",
        "displayName": "E",
        "compliantNetworkType": "allTenantCompliantNetworks",
        "isTrusted": True,
    },
    {
        "@odata.type": "#microsoft.graph.authenticationStrengthPolicy",
        "id": "s-custom",
        "displayName": "Custom",
        "allowedCombinations": ["password,hardwareOath", "fido2"],
    },
]
APP_RULES = [
    'CustomSecurityAttribute.S_tier -eq "high"',
    'CustomSecurityAttribute.S_tags -contains "mfa"',
    'CustomSecurityAttribute.S_tier -ne "low" -and CustomSecurityAttribute.S_tags -notContains "x"',
]
APP_ATTRIBUTES: list[dict[str, Any]] = [
    {},
    {"S_tier": "high"},
    {"S_tags": ["mfa", "x"]},
    {"S": {"tier": "low", "tags": ["mfa"]}},
]
LOCATION_IDS = ["All", "AllTrusted", "loc-a", "loc-b", "loc-c", "loc-d", "loc-e", "loc-missing"]


def subset(values: list[str], max_size: int = 2) -> st.SearchStrategy[list[str]]:
    """A small list of distinct values from `values`."""
    return st.lists(st.sampled_from(values), max_size=max_size, unique=True)


@st.composite
def guests_rule(draw: st.DrawFn) -> dict[str, Any]:
    """A conditionalAccessGuestsOrExternalUsers object."""
    types = draw(st.lists(st.sampled_from(GUEST_TYPES), min_size=1, max_size=2, unique=True))
    tenants: dict[str, Any] = {"membershipKind": "all"}
    if draw(st.booleans()):
        tenants = {"membershipKind": "enumerated", "members": draw(subset(TENANTS, 1))}
    return {"guestOrExternalUserTypes": ",".join(types), "externalTenants": tenants}


@st.composite
def conditions(draw: st.DrawFn) -> dict[str, Any]:
    """A conditionalAccessConditionSet over the small universe."""
    users: dict[str, Any] = {
        "includeUsers": draw(subset([*USERS, "All", "None", "GuestsOrExternalUsers"])),
        "excludeUsers": draw(subset([*USERS, "GuestsOrExternalUsers"], 1)),
        "includeGroups": draw(subset(GROUPS, 1)),
        "excludeGroups": draw(subset(GROUPS, 1)),
        "includeRoles": draw(subset(ROLES, 1)),
        "excludeRoles": draw(subset(ROLES, 1)),
    }
    if draw(st.integers(0, 3)) == 0:
        users["includeGuestsOrExternalUsers"] = draw(guests_rule())
    if draw(st.integers(0, 3)) == 0:
        users["excludeGuestsOrExternalUsers"] = draw(guests_rule())
    out: dict[str, Any] = {
        "users": users,
        "applications": {
            "includeApplications": draw(subset([*APPS, "All", "None", "Grp", "Office365"])),
            "excludeApplications": draw(subset([*APPS, "Grp"], 1)),
            "includeUserActions": draw(subset(USER_ACTIONS, 1)),
            "includeAuthenticationContextClassReferences": draw(subset(CONTEXTS, 1)),
        },
        "clientAppTypes": draw(
            subset(["all", "browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"])
        ),
    }
    if draw(st.integers(0, 3)) == 0:
        out["applications"]["applicationFilter"] = {
            "mode": draw(st.sampled_from(["include", "exclude"])),
            "rule": draw(st.sampled_from(APP_RULES)),
        }
    if draw(st.integers(0, 3)) == 0:
        out["clientApplications"] = {
            "includeServicePrincipals": draw(
                subset([*SERVICE_PRINCIPALS, "ServicePrincipalsInMyTenant"])
            ),
            "excludeServicePrincipals": draw(subset(SERVICE_PRINCIPALS, 1)),
        }
    if draw(st.booleans()):
        out["platforms"] = {
            "includePlatforms": draw(subset(["all", "windows", "iOS", "android", "linux"])),
            "excludePlatforms": draw(subset(["windows", "iOS", "macOS"])),
        }
    if draw(st.booleans()):
        out["locations"] = {
            "includeLocations": draw(subset(LOCATION_IDS)),
            "excludeLocations": draw(subset(LOCATION_IDS[1:])),
        }
    device_kind = draw(st.sampled_from(["none", "none", "filter", "states"]))
    if device_kind == "filter":
        out["devices"] = {
            "deviceFilter": {
                "mode": draw(st.sampled_from(["include", "exclude"])),
                "rule": draw(st.sampled_from(RULES)),
            }
        }
    elif device_kind == "states":
        out["devices"] = {
            "includeDeviceStates": ["All"],
            "excludeDeviceStates": draw(subset(["Compliant", "DomainJoined"])),
        }
    for key in ("signInRiskLevels", "userRiskLevels", "servicePrincipalRiskLevels"):
        out[key] = draw(subset(LEVELS))
    insider = draw(subset(INSIDER_LEVELS))
    if insider:
        out["insiderRiskLevels"] = ",".join(insider)
    flows = draw(subset(["deviceCodeFlow", "authenticationTransfer"], 1))
    if flows:
        out["authenticationFlows"] = {"transferMethods": ",".join(flows)}
    return out


@st.composite
def grant_controls(draw: st.DrawFn) -> dict[str, Any] | None:
    """A conditionalAccessGrantControls object, a block, or None (session-only)."""
    kind = draw(st.sampled_from(["none", "block", "controls", "controls"]))
    if kind == "none":
        return None
    if kind == "block":
        return {"operator": "OR", "builtInControls": ["block"]}
    grant: dict[str, Any] = {
        "operator": draw(st.sampled_from(["AND", "OR"])),
        "builtInControls": draw(st.lists(st.sampled_from(CONTROLS), max_size=2, unique=True)),
    }
    extra = draw(st.sampled_from(["", "tou", "custom", "strength", "phish", "missing"]))
    if extra == "tou":
        grant["termsOfUse"] = ["tou1"]
    elif extra == "custom":
        grant["customAuthenticationFactors"] = ["custom1"]
    elif extra == "strength":
        grant["authenticationStrength"] = {"id": "s-custom"}
    elif extra == "phish":
        grant["authenticationStrength"] = {"id": "00000000-0000-0000-0000-000000000004"}
    elif extra == "missing":
        grant["authenticationStrength"] = {"id": "s-missing"}
    if not grant["builtInControls"] and not extra:
        grant["builtInControls"] = ["mfa"]
    return grant


@st.composite
def session_controls(draw: st.DrawFn) -> dict[str, Any] | None:
    """A conditionalAccessSessionControls object or None."""
    session: dict[str, Any] = {}
    frequency = draw(st.sampled_from([None, "everyTime", 1, 12]))
    if frequency == "everyTime":
        session["signInFrequency"] = {"isEnabled": True, "frequencyInterval": "everyTime"}
    elif frequency is not None:
        session["signInFrequency"] = {
            "isEnabled": True,
            "value": frequency,
            "type": "hours",
            "frequencyInterval": "timeBased",
        }
    if frequency is not None:
        session["signInFrequency"]["authenticationType"] = draw(
            st.sampled_from(["primaryAndSecondaryAuthentication", "secondaryAuthentication"])
        )
    mode = draw(st.sampled_from([None, "always", "never"]))
    if mode is not None:
        session["persistentBrowser"] = {"isEnabled": True, "mode": mode}
    if draw(st.booleans()):
        session["applicationEnforcedRestrictions"] = {"isEnabled": True}
    return session or None


@st.composite
def policy(draw: st.DrawFn, policy_id: str, state: str | None = None) -> dict[str, Any]:
    """One conditionalAccessPolicy document."""
    doc: dict[str, Any] = {
        "id": policy_id,
        "displayName": f"Policy {policy_id}",
        "state": state
        or draw(
            st.sampled_from(["enabled", "enabled", "enabledForReportingButNotEnforced", "disabled"])
        ),
        "conditions": draw(conditions()),
        "grantControls": draw(grant_controls()),
        "sessionControls": draw(session_controls()),
    }
    if doc["grantControls"] is None and doc["sessionControls"] is None:
        doc["grantControls"] = {"operator": "OR", "builtInControls": ["mfa"]}
    return doc


@st.composite
def policy_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One to five random policies."""
    count = draw(st.integers(1, 5))
    return [draw(policy(f"p{i}")) for i in range(count)]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """An EvaluateRequest in proto3 JSON: a user (sometimes a guest) or a service principal."""
    if draw(st.integers(0, 5)) == 0:
        subject: dict[str, Any] = {"servicePrincipalId": draw(st.sampled_from(SERVICE_PRINCIPALS))}
    else:
        subject = {
            "userId": draw(st.sampled_from(USERS)),
            "groupIds": draw(subset(GROUPS)),
            "roleIds": draw(subset(ROLES, 1)),
        }
        if draw(st.booleans()):
            subject["guest"] = True
            if draw(st.booleans()):
                subject["guestType"] = draw(st.sampled_from(GUEST_TYPES))
            if draw(st.booleans()):
                subject["homeTenantId"] = draw(st.sampled_from(TENANTS))
    if draw(st.integers(0, 4)) == 0:
        target: dict[str, Any] = {"userAction": draw(st.sampled_from(USER_ACTIONS))}
    else:
        target = {"applicationId": draw(st.sampled_from(APPS))}
    target["authenticationContexts"] = draw(subset(CONTEXTS, 1))
    target["customSecurityAttributes"] = draw(st.sampled_from(APP_ATTRIBUTES))
    network: dict[str, Any] = {
        "ipAddress": draw(
            st.sampled_from(
                ["", "10.1.2.3", "10.200.0.1", "192.0.2.1", "fd00::1", "::ffff:10.1.2.3"]
            )
        ),
        "compliantNetwork": draw(st.booleans()),
    }
    country = draw(st.sampled_from(["", "NL", "US", "FR"]))
    if country:
        network["geo"] = {"country": country}
    device: dict[str, Any] = {
        "platform": draw(
            st.sampled_from(
                ["PLATFORM_UNSPECIFIED", "PLATFORM_WINDOWS", "PLATFORM_IOS", "PLATFORM_MACOS"]
            )
        ),
        "compliant": draw(st.booleans()),
    }
    if draw(st.booleans()):
        device["deviceId"] = "d1"
        device["trustType"] = draw(
            st.sampled_from(["TRUST_TYPE_AZURE_AD", "TRUST_TYPE_SERVER_AD", "TRUST_TYPE_WORKPLACE"])
        )
        device["attributes"] = draw(
            st.sampled_from([{}, {"extensionAttribute1": "SAW"}, {"deviceOwnership": "Company"}])
        )
    authentication: dict[str, Any] = {
        "methods": draw(subset(METHODS, 3)),
        "satisfiedControls": draw(subset(SATISFIABLE, 1)),
        "flow": draw(
            st.sampled_from(
                [
                    "AUTHENTICATION_FLOW_UNSPECIFIED",
                    "AUTHENTICATION_FLOW_DEVICE_CODE_FLOW",
                    "AUTHENTICATION_FLOW_AUTHENTICATION_TRANSFER",
                ]
            )
        ),
    }
    age = draw(st.sampled_from([None, 60, 400, 5000, 50_000]))
    if age is not None:
        authentication["authenticatedAt"] = _rfc3339(TIME - age)
    second = draw(st.sampled_from([None, 60, 400, 5000]))
    if second is not None:
        authentication["secondaryAuthenticatedAt"] = _rfc3339(TIME - second)
    if "servicePrincipalId" in subject:
        client = "CLIENT_APP_TYPE_UNSPECIFIED"
    else:
        client = draw(
            st.sampled_from(
                [
                    "CLIENT_APP_TYPE_BROWSER",
                    "CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS",
                    "CLIENT_APP_TYPE_EXCHANGE_ACTIVE_SYNC",
                    "CLIENT_APP_TYPE_OTHER",
                    "CLIENT_APP_TYPE_UNSPECIFIED",
                ]
            )
        )
    level = st.sampled_from(
        ["RISK_LEVEL_UNSPECIFIED", "RISK_LEVEL_LOW", "RISK_LEVEL_MEDIUM", "RISK_LEVEL_HIGH"]
    )
    risk = {
        "signIn": draw(level),
        "user": draw(level),
        "servicePrincipal": draw(level),
        "insider": draw(
            st.sampled_from(
                [
                    "INSIDER_RISK_LEVEL_UNSPECIFIED",
                    "INSIDER_RISK_LEVEL_MINOR",
                    "INSIDER_RISK_LEVEL_MODERATE",
                    "INSIDER_RISK_LEVEL_ELEVATED",
                ]
            )
        ),
    }
    return {
        "requestId": "r1",
        "time": _rfc3339(TIME),
        "subject": subject,
        "target": target,
        "network": network,
        "device": device,
        "clientAppType": client,
        "authentication": authentication,
        "risk": risk,
        "explain": draw(st.booleans()),
    }


def _rfc3339(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


ASSESSMENTS = st.builds(Assessment, sign_in_risk=st.sampled_from(LEVELS))


def entra_valid(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of a random policy changed just enough that Entra would save it.

    The generators combine fields freely; Entra refuses some combinations (and so does pdp,
    see `pdp.policy.entra_rules`), so each broken rule is repaired the smallest way.
    """
    doc = copy.deepcopy(document)
    cond, grant = doc["conditions"], doc["grantControls"]
    apps = cond["applications"]
    workload = bool(cond.get("clientApplications", {}).get("includeServicePrincipals"))
    if grant is not None:
        builtin = [c for c in grant.get("builtInControls", []) if c != "passwordChange"]
        if "mfa" in builtin and grant.get("authenticationStrength"):
            builtin.remove("mfa")
        grant["builtInControls"] = builtin
        if workload:
            builtin = ["block"]
            doc["grantControls"] = grant = {"operator": "OR", "builtInControls": builtin}
        if "urn:user:registerdevice" in apps.get("includeUserActions", []):
            if "block" in builtin:
                apps["includeUserActions"] = []
            else:
                grant["builtInControls"] = [c for c in builtin if c == "mfa"]
                grant.pop("termsOfUse", None)
                grant.pop("customAuthenticationFactors", None)
                if not grant["builtInControls"] and not grant.get("authenticationStrength"):
                    grant["builtInControls"] = ["mfa"]
    if "urn:user:registerdevice" in apps.get("includeUserActions", []):
        cond["clientAppTypes"] = ["all"]
        cond.pop("devices", None)
    if workload:
        apps["includeAuthenticationContextClassReferences"] = []
    session = doc["sessionControls"]
    if session and "All" not in apps.get("includeApplications", []):
        session.pop("persistentBrowser", None)
    if (
        doc["grantControls"] is not None
        and not any(
            doc["grantControls"].get(key)
            for key in ("builtInControls", "authenticationStrength", "termsOfUse")
        )
        and not doc["grantControls"].get("customAuthenticationFactors")
    ):
        doc["grantControls"] = {"operator": "OR", "builtInControls": ["mfa"]}
    return doc


def compile_documents(documents: list[dict[str, Any]]) -> tuple[PolicySet, CompiledPolicySet]:
    """Load and compile Graph documents (plus the fixed locations and groups) from a file.

    Every policy is first made one Entra would save (`entra_valid`).
    """
    valid = [entra_valid(d) for d in documents]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "policies.json"
        source.write_text(json.dumps([*FIXED_DOCUMENTS, *valid]), encoding="utf-8")
        policy_set, _ = load_policy_set(source)
    return policy_set, compile_policy_set(policy_set)


def decide(documents: list[dict[str, Any]], request: dict[str, Any], risk: Assessment) -> Decision:
    """The fast evaluator's decision for documents and a proto3-JSON request."""
    _, compiled = compile_documents(documents)
    ctx = to_context(ParseDict(request, pdp_pb2.EvaluateRequest()), float(TIME))
    return evaluate(ctx, compiled, risk, float(TIME))


ORDER = {Verdict.ALLOW: 0, Verdict.CHALLENGE: 1, Verdict.DENY: 2}
APPLIED = {
    Result.SUCCESS,
    Result.FAILURE,
    Result.REPORT_ONLY_SUCCESS,
    Result.REPORT_ONLY_FAILURE,
    Result.REPORT_ONLY_INTERRUPTED,
}


@SETTINGS
@given(
    documents=policy_sets(),
    request=requests(),
    risk=ASSESSMENTS,
    unknown=st.tuples(st.booleans(), st.booleans()),
)
def test_fast_evaluator_equals_reference_evaluator(
    documents: list[dict[str, Any]],
    request: dict[str, Any],
    risk: Assessment,
    unknown: tuple[bool, bool],
) -> None:
    """The compiled evaluator and the plain reference evaluator return the same Decision."""
    policy_set, compiled = compile_documents(documents)
    ctx = to_context(ParseDict(request, pdp_pb2.EvaluateRequest()), float(TIME))
    ctx = dataclasses.replace(ctx, groups_unknown=unknown[0], roles_unknown=unknown[1])
    fast = evaluate(ctx, compiled, risk, float(TIME))
    reference = reference_evaluate(ctx, policy_set, compiled, risk, float(TIME))
    assert fast == reference, (
        "fast:\n"
        + pprint.pformat(dataclasses.asdict(fast))
        + "\nreference:\n"
        + pprint.pformat(dataclasses.asdict(reference))
    )


@SETTINGS
@given(
    documents=policy_sets(),
    request=requests(),
    risks=st.lists(ASSESSMENTS, min_size=1, max_size=3),
    later=st.lists(st.integers(0, 10 * 86_400), min_size=1, max_size=3),
)
def test_contexts_sharing_a_content_memo_decide_as_fresh_ones(
    documents: list[dict[str, Any]],
    request: dict[str, Any],
    risks: list[Assessment],
    later: list[int],
) -> None:
    """Repeats of one content (one ContentMemo) decide exactly as fresh contexts do.

    The memo keeps what depends on the content; the time (sign-in frequencies) and the
    risk assessment vary between the repeats and must still be taken into account.
    """
    _, compiled = compile_documents(documents)
    memo = ContentMemo()
    fresh = to_context(ParseDict(request, pdp_pb2.EvaluateRequest()), float(TIME))
    for risk in risks:
        for seconds in later:
            now = float(TIME + seconds)
            shared = dataclasses.replace(fresh, memo=memo, time=now)
            plain = dataclasses.replace(fresh, time=now)
            assert evaluate(shared, compiled, risk, now) == evaluate(plain, compiled, risk, now)


@SETTINGS
@given(
    documents=policy_sets(),
    request=requests().filter(lambda r: "userId" in r["subject"]),
    data=st.data(),
)
def test_excluding_the_user_or_a_group_never_makes_a_policy_apply(
    documents: list[dict[str, Any]], request: dict[str, Any], data: st.DataObject
) -> None:
    """Adding the signing-in user, or one of its groups, to a policy's excludes takes it out."""
    index = data.draw(st.integers(0, len(documents) - 1), label="policy index")
    subject = request["subject"]
    choices = [("excludeUsers", subject["userId"])]
    choices += [("excludeGroups", group) for group in subject["groupIds"]]
    key, value = data.draw(st.sampled_from(choices), label="exclusion")
    changed = copy.deepcopy(documents)
    users = changed[index]["conditions"]["users"]
    users[key] = [*users.get(key, []), value]
    decision = decide(changed, {**request, "explain": True}, Assessment())
    outcome = next(p for p in decision.policies if p.id == changed[index]["id"])
    assert outcome.result not in APPLIED


@SETTINGS
@given(
    documents=policy_sets(),
    request=requests(),
    risk=ASSESSMENTS,
    block=policy("p-block", state="enabled"),
)
def test_adding_an_enforced_block_never_relaxes_the_decision(
    documents: list[dict[str, Any]],
    request: dict[str, Any],
    risk: Assessment,
    block: dict[str, Any],
) -> None:
    """With one more enforced block policy the decision stays or gets stricter."""
    block["grantControls"] = {"operator": "OR", "builtInControls": ["block"]}
    before = decide(documents, request, risk)
    after = decide([*documents, block], request, risk)
    assert ORDER[after.verdict] >= ORDER[before.verdict]


@SETTINGS
@given(documents=policy_sets(), request=requests(), risk=ASSESSMENTS)
def test_report_only_policies_never_change_the_outcome(
    documents: list[dict[str, Any]], request: dict[str, Any], risk: Assessment
) -> None:
    """Removing every report-only policy leaves decision, requirements and session as they were."""
    enforced_only = [d for d in documents if d["state"] != "enabledForReportingButNotEnforced"]
    with_report_only = decide(documents, request, risk)
    without = decide(enforced_only, request, risk)
    assert with_report_only.verdict == without.verdict
    assert with_report_only.requirements == without.requirements
    assert with_report_only.session == without.session
    assert with_report_only.messages == without.messages


@SETTINGS
@given(
    documents=policy_sets(),
    request=requests(),
    risk=ASSESSMENTS,
    control=st.sampled_from(SATISFIABLE),
)
def test_a_satisfied_control_never_worsens_the_decision(
    documents: list[dict[str, Any]], request: dict[str, Any], risk: Assessment, control: str
) -> None:
    """Reporting one more control as satisfied never makes the decision stricter."""
    more = copy.deepcopy(request)
    satisfied = more["authentication"]["satisfiedControls"]
    if control not in satisfied:
        satisfied.append(control)
    before = decide(documents, request, risk)
    after = decide(documents, more, risk)
    assert ORDER[after.verdict] <= ORDER[before.verdict]
