"""Synthetic tenants for benchmarks: Graph JSON policy sets and sign-in contexts, from a seed.

The mix imitates a tenant running ML infrastructure (workspaces, model endpoints, training
pipelines) and the value frequencies of real exports (conditional-access.md section 9): about
half the policies target All users with a break-glass group excluded, block is the most
common grant, locations exclude AllTrusted, and so on. Everything is drawn from
`random.Random` instances seeded from the seed given, so a seed always gives the same files
and the same requests. Policy sets are written as Graph JSON and meant to be read back
through the real loader; requests are `SignInContext`s built as the transport builds them.

How a set grows: the first `BASELINE` policies are the tenant-wide mix above (Entra allows
195 per tenant, and real tenants keep their broad rules to a few dozen). Beyond that, a
larger deployment has more *resources*, not more global rules: every further policy
belongs to one ML workspace (its app and its team group), four policies per workspace
(team MFA, compliant device, network restriction, session lifetime). Requests reach a
workspace app half the time, mostly as a member of its team. So the number of policies
that apply to one sign-in stays roughly flat as the set grows, as it does in practice.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pdp.context import SignInContext
from pdp.policy.vocabulary import DEFAULT_APPLICATION_GROUPS

T = TypeVar("T")

# Directory role template ids (Graph roleTemplateId) of commonly targeted admin roles.
ADMIN_ROLES = (
    "62e90394-69f5-4237-9190-012177145e10",  # Global Administrator
    "194ae4cb-b126-40b2-bd5b-6091b380977d",  # Security Administrator
    "29232cdf-9323-42fd-ade2-1d097af3e4de",  # Exchange Administrator
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",  # SharePoint Administrator
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",  # Conditional Access Administrator
    "fe930be7-5e62-47db-91af-98c3a49a38b1",  # User Administrator
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",  # Application Administrator
    "158c047a-c907-4556-b7ef-446551a6b5f7",  # Cloud Application Administrator
    "729827e3-9c14-49f7-bb1b-9608f156bbb8",  # Helpdesk Administrator
    "e8611ab8-c189-46e8-94e1-60213ab1f814",  # Privileged Role Administrator
    "c4e39bd9-1100-46d3-8c65-fb160da0071f",  # Authentication Administrator
    "3a2c62db-5318-420d-8d74-23affee5d9d5",  # Intune Administrator
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451",  # Global Reader
)
PHISHING_RESISTANT = "00000000-0000-0000-0000-000000000004"
COUNTRIES: dict[str, float] = {"US": 30, "GB": 8, "DE": 8, "IN": 6, "NL": 5, "FR": 5, "JP": 4}
COUNTRIES |= {"CA": 4, "AU": 3, "BR": 3, "SG": 2, "IE": 2, "CN": 2, "RU": 1, "IR": 0.5}
COUNTRIES |= {"KP": 0.2, "": 3}
COUNTRY_LOCATIONS = (  # (name, countries, includeUnknownCountriesAndRegions)
    ("Allowed countries", ("US", "GB", "DE", "NL", "FR", "IE", "CA"), False),
    ("Blocked countries", ("RU", "KP", "IR", "BY", "CN"), True),
    ("EU", ("DE", "NL", "FR", "IE", "BE", "LU", "ES", "IT"), False),
    ("APAC offices", ("JP", "SG", "AU", "IN"), False),
    ("Service accounts", ("NL",), False),
)
GUEST_TYPES = ("b2bCollaborationGuest", "b2bCollaborationMember", "b2bDirectConnectUser")
DEVICE_FILTERS = (
    'device.isCompliant -eq True -and device.deviceOwnership -eq "Company"',
    'device.extensionAttribute1 -eq "SAW"',
    'device.extensionAttribute2 -in ["ml-workstation", "gpu-node"]',
    'device.trustType -eq "ServerAD" -or device.trustType -eq "AzureAD"',
    'device.model -startsWith "Surface" -and device.operatingSystem -eq "Windows"',
)
CLIENT_APP_TYPES = (
    ["exchangeActiveSync", "other"],
    ["browser"],
    ["mobileAppsAndDesktopClients"],
    ["browser", "mobileAppsAndDesktopClients"],
)
PLATFORMS: tuple[tuple[list[str], list[str]], ...] = (  # (include, exclude)
    (["android", "iOS"], []),
    (["all"], ["windows", "macOS"]),
    (["windows"], []),
    (["linux"], []),
    (["macOS", "windows", "linux"], []),
)
METHODS: tuple[tuple[frozenset[str], int], ...] = (  # (methods, weight)
    (frozenset({"password"}), 25),
    (frozenset({"password", "microsoftAuthenticatorPush"}), 30),
    (frozenset({"windowsHelloForBusiness"}), 15),
    (frozenset({"fido2"}), 8),
    (frozenset({"password", "softwareOath"}), 7),
    (frozenset({"password", "sms"}), 5),
    (frozenset({"x509CertificateMultiFactor"}), 2),
    (frozenset(), 8),
)
BASELINE = 40  # tenant-wide policies; the rest of a set is per-workspace
WORKSPACES = 600  # ML workspaces in the universe (enough for 2,000 policies at 4 each)
POLICIES_PER_WORKSPACE = 4
BASE_TIME = 1_767_225_600.0  # 2026-01-01T00:00:00Z: requests are spread over the next day


@dataclass(frozen=True, slots=True)
class IpLocation:
    """An ipNamedLocation to generate: id, trust and CIDRs (v4 and v6)."""

    id: str
    name: str
    trusted: bool
    cidrs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Universe:
    """The directory a tenant's policies and sign-ins draw from (ids lower-case)."""

    groups: tuple[str, ...]  # groups[0:2] are the break-glass groups
    apps: tuple[str, ...]
    service_principals: tuple[str, ...]
    users: tuple[str, ...]
    guest_tenants: tuple[str, ...]
    ip_locations: tuple[IpLocation, ...]
    country_locations: tuple[tuple[str, str, tuple[str, ...], bool], ...]  # id, name, ...
    workspaces: tuple[tuple[str, str], ...]  # (app id, team group id) per ML workspace

    @property
    def break_glass(self) -> tuple[str, ...]:
        """The emergency-access groups excluded from most policies."""
        return self.groups[:2]


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _skewed(rng: random.Random, values: Sequence[T], k: int) -> list[T]:
    """`k` distinct values, earlier ones far more likely (Zipf-like, s = 1)."""
    weights = list(itertools.accumulate(1 / (i + 1) for i in range(len(values))))
    picked: dict[T, None] = {}
    while len(picked) < min(k, len(values)):
        picked[rng.choices(values, cum_weights=weights)[0]] = None
    return list(picked)


def _cidr(rng: random.Random, v6: bool) -> str:
    if v6:
        prefix = rng.choice((32, 40, 48, 56, 64))
        address = (0x2001 << 112 | rng.getrandbits(112)) >> (128 - prefix) << (128 - prefix)
        return str(ipaddress.IPv6Network((address, prefix)))
    prefix = rng.choice((16, 20, 22, 24, 24, 26, 28, 29, 30))
    first = rng.choice([o for o in range(20, 224) if o not in (100, 127, 169, 172, 192)])
    address = (first << 24 | rng.getrandbits(24)) >> (32 - prefix) << (32 - prefix)
    return str(ipaddress.IPv4Network((address, prefix)))


def make_universe(seed: int) -> Universe:
    """About 500 groups, 300 apps, 40 service principals, 5,000 users, 35 named locations."""
    rng = random.Random(f"{seed}:universe")
    ip_locations = tuple(
        IpLocation(
            id=_guid(rng),
            name=f"{rng.choice(('Office', 'Datacenter', 'GPU cluster', 'VPN egress'))} {i}",
            trusted=rng.random() < 0.4,
            cidrs=tuple(_cidr(rng, rng.random() < 0.25) for _ in range(rng.randint(1, 20))),
        )
        for i in range(30)
    )
    return Universe(
        groups=tuple(_guid(rng) for _ in range(500)),
        apps=tuple(_guid(rng) for _ in range(300)),
        service_principals=tuple(_guid(rng) for _ in range(40)),
        users=tuple(_guid(rng) for _ in range(5000)),
        guest_tenants=tuple(_guid(rng) for _ in range(10)),
        ip_locations=ip_locations,
        country_locations=tuple((_guid(rng), *location) for location in COUNTRY_LOCATIONS),
        workspaces=tuple((_guid(rng), _guid(rng)) for _ in range(WORKSPACES)),
    )


def location_documents(universe: Universe) -> list[dict[str, Any]]:
    """The tenant's named locations as Graph ipNamedLocation / countryNamedLocation objects."""
    docs: list[dict[str, Any]] = [
        {
            "@odata.type": "#microsoft.graph.ipNamedLocation",
            "id": loc.id,
            "displayName": loc.name,
            "isTrusted": loc.trusted,
            "ipRanges": [
                {
                    "@odata.type": "#microsoft.graph."
                    + ("iPv6CidrRange" if ":" in cidr else "iPv4CidrRange"),
                    "cidrAddress": cidr,
                }
                for cidr in loc.cidrs
            ],
        }
        for loc in universe.ip_locations
    ]
    docs += [
        {
            "@odata.type": "#microsoft.graph.countryNamedLocation",
            "id": location_id,
            "displayName": name,
            "countriesAndRegions": list(countries),
            "includeUnknownCountriesAndRegions": unknown,
            "countryLookupMethod": "clientIpAddress",
        }
        for location_id, name, countries, unknown in universe.country_locations
    ]
    return docs


def _users(rng: random.Random, u: Universe, roll: float) -> tuple[str, dict[str, Any], Any]:
    """(persona, conditions.users, conditions.clientApplications) for one policy."""
    users: dict[str, Any] = {"includeUsers": [], "excludeUsers": [], "includeGroups": []}
    users |= {"excludeGroups": list(u.break_glass), "includeRoles": [], "excludeRoles": []}
    if roll < 0.50:
        users["includeUsers"] = ["All"]
        users["excludeGroups"] += _skewed(rng, u.groups[2:], rng.randint(0, 3))
        return "AllUsers", users, None
    if roll < 0.80:
        groups = _skewed(rng, u.groups[2:], rng.randint(1, 5))
        users["includeGroups"] = [g.upper() if rng.random() < 0.1 else g for g in groups]
        return "Groups", users, None
    if roll < 0.90:
        users["includeRoles"] = _skewed(rng, ADMIN_ROLES, rng.randint(1, 4))
        return "Admins", users, None
    if roll < 0.95:
        users["excludeGroups"] = []
        if rng.random() < 0.5:
            users["includeUsers"] = ["GuestsOrExternalUsers"]
        else:
            users["includeGuestsOrExternalUsers"] = {
                "guestOrExternalUserTypes": ",".join(rng.sample(GUEST_TYPES, 2)),
                "externalTenants": {"membershipKind": "all"},
            }
        return "Guests", users, None
    users = {"includeUsers": ["None"]}
    if rng.random() < 0.5:
        sps = ["ServicePrincipalsInMyTenant"]
    else:
        sps = rng.sample(u.service_principals, rng.randint(1, 3))
    return "WorkloadIdentities", users, {"includeServicePrincipals": sps}


def _applications(rng: random.Random, u: Universe, workload: bool) -> dict[str, Any]:
    apps: dict[str, Any] = {"includeApplications": ["All"], "excludeApplications": []}
    roll = rng.random()
    if workload or roll < 0.40:
        if not workload and rng.random() < 0.2:
            apps["excludeApplications"] = _skewed(rng, u.apps, rng.randint(1, 2))
    elif roll < 0.45:
        apps["includeApplications"] = ["Office365"]
    elif roll < 0.47:
        apps["includeApplications"] = []
        apps["includeUserActions"] = ["urn:user:registersecurityinfo"]
    elif roll < 0.48:
        apps["includeApplications"] = []
        apps["includeAuthenticationContextClassReferences"] = [f"c{rng.randint(1, 3)}"]
    else:
        apps["includeApplications"] = _skewed(rng, u.apps, rng.randint(1, 5))
    return apps


def _locations(rng: random.Random, u: Universe) -> dict[str, Any]:
    ip_ids = [loc.id for loc in u.ip_locations]
    country_ids = [loc[0] for loc in u.country_locations]
    roll = rng.random()
    if roll < 0.4:
        return {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}
    if roll < 0.7:
        named = rng.sample(ip_ids + country_ids[:1], rng.randint(1, 3))
        return {"includeLocations": ["All"], "excludeLocations": named}
    if roll < 0.9:
        return {"includeLocations": [country_ids[1]], "excludeLocations": []}
    return {"includeLocations": rng.sample(ip_ids, rng.randint(1, 2)), "excludeLocations": []}


def _grant(rng: random.Random, persona: str, legacy: bool, user_risk: bool) -> Any:
    """grantControls, or None for a session-only policy."""
    grant: dict[str, Any] = {"operator": "OR", "builtInControls": [], "termsOfUse": []}
    grant |= {"customAuthenticationFactors": [], "authenticationStrength": None}
    roll = rng.random()
    if legacy or persona == "WorkloadIdentities" or roll < 0.20:
        grant["builtInControls"] = ["block"]
    elif user_risk:
        grant |= {"operator": "AND", "builtInControls": ["mfa", "passwordChange"]}
    elif roll < 0.30:
        return None
    elif roll < 0.55:
        grant["builtInControls"] = ["mfa"]
    elif roll < 0.65:
        grant["builtInControls"] = ["compliantDevice"]
    elif roll < 0.78:
        grant["builtInControls"] = ["compliantDevice", "domainJoinedDevice"]
    elif roll < 0.90:
        grant["authenticationStrength"] = {"id": PHISHING_RESISTANT}
    elif roll < 0.96:
        grant["builtInControls"] = ["mfa", "compliantDevice"]
    else:
        grant |= {"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]}
    return grant


def _session(rng: random.Random, session_only: bool) -> Any:
    if not session_only and rng.random() >= 0.1:
        return None
    if rng.random() < 0.7:
        if rng.random() < 0.15:
            frequency = {"frequencyInterval": "everyTime", "isEnabled": True}
        else:
            value, unit = rng.choice(((1, "hours"), (12, "hours"), (1, "days"), (7, "days")))
            frequency = {"value": value, "type": unit, "frequencyInterval": "timeBased"}
            frequency["isEnabled"] = True
        return {"signInFrequency": frequency}
    return {"persistentBrowser": {"mode": "never", "isEnabled": True}}


def policy_document(rng: random.Random, u: Universe, index: int) -> dict[str, Any]:
    """One conditionalAccessPolicy in Graph JSON, with the realistic mix of the module doc."""
    persona, users, client_apps = _users(rng, u, rng.random())
    workload = client_apps is not None
    conditions: dict[str, Any] = {"users": users, "clientApplications": client_apps}
    conditions["applications"] = _applications(rng, u, workload)
    conditions["clientAppTypes"] = ["all"]
    legacy = False
    if not workload and rng.random() < 0.25:
        choice = rng.choice(CLIENT_APP_TYPES)
        conditions["clientAppTypes"] = choice
        legacy = choice[0] == "exchangeActiveSync"
    if rng.random() < 0.15:
        conditions["locations"] = _locations(rng, u)
    if not workload and rng.random() < 0.15:
        include, exclude = rng.choice(PLATFORMS)
        conditions["platforms"] = {"includePlatforms": include, "excludePlatforms": exclude}
    if workload:
        if rng.random() < 0.3:
            conditions["servicePrincipalRiskLevels"] = ["high"]
    elif rng.random() < 0.10:
        conditions["signInRiskLevels"] = rng.choice((["high"], ["medium", "high"]))
    user_risk = not workload and rng.random() < 0.05
    if user_risk:
        conditions["userRiskLevels"] = ["high"]
    if not workload and rng.random() < 0.05:
        conditions["devices"] = {
            "deviceFilter": {"mode": "exclude", "rule": rng.choice(DEVICE_FILTERS)}
        }
    grant = _grant(rng, persona, legacy, user_risk)
    if grant and grant["builtInControls"] == ["block"] and not workload:
        _narrow_block(rng, u, conditions)
    session = _session(rng, grant is None)
    _as_entra_saves_it(conditions, grant, session)
    roll = rng.random()
    state = "enabled" if roll < 0.6 else "disabled" if roll >= 0.9 else ""
    controls = "+".join(grant["builtInControls"] or ["AuthStrength"]) if grant else "Session"
    return {
        "id": _guid(rng),
        "displayName": f"CA{index:04d}-{persona}-{controls}",
        "state": state or "enabledForReportingButNotEnforced",
        "conditions": conditions,
        "grantControls": grant,
        "sessionControls": session,
    }


def _as_entra_saves_it(conditions: dict[str, Any], grant: Any, session: Any) -> None:
    """Keep to what Entra saves (pdp refuses the rest).

    Persistent browser and password change need All resources, and a password change policy
    has no conditions besides users and user risk.
    """
    apps = conditions["applications"]
    if session and "persistentBrowser" in session:
        apps["includeApplications"] = ["All"]
    if grant and "passwordChange" in grant["builtInControls"]:
        conditions["applications"] = {"includeApplications": ["All"], "excludeApplications": []}
        conditions["clientAppTypes"] = ["all"]
        for key in ("locations", "platforms", "signInRiskLevels", "devices"):
            conditions.pop(key, None)


def workspace_policy(rng: random.Random, u: Universe, index: int) -> dict[str, Any]:
    """Policy `index` (>= BASELINE): one of the four policies of one ML workspace."""
    workspace, kind = divmod(index - BASELINE, POLICIES_PER_WORKSPACE)
    app, team = u.workspaces[workspace % len(u.workspaces)]
    users: dict[str, Any] = {"includeUsers": [], "includeGroups": [team]}
    users["excludeGroups"] = list(u.break_glass)
    conditions: dict[str, Any] = {"users": users, "clientAppTypes": ["all"]}
    conditions["applications"] = {"includeApplications": [app], "excludeApplications": []}
    grant: dict[str, Any] | None = {"operator": "OR", "builtInControls": ["mfa"]}
    session = None
    name = "TeamMFA"
    if kind == 1:
        users |= {"includeUsers": ["All"], "includeGroups": []}
        grant = {"operator": "OR", "builtInControls": ["compliantDevice", "domainJoinedDevice"]}
        name = "CompliantDevice"
    elif kind == 2:
        users |= {"includeUsers": ["All"], "includeGroups": []}
        trusted = rng.sample([loc.id for loc in u.ip_locations], 2)
        conditions["locations"] = {"includeLocations": ["All"], "excludeLocations": trusted}
        grant = {"operator": "OR", "builtInControls": ["block"]}
        name = "NetworkRestriction"
    elif kind == 3:
        grant = None
        hours = rng.choice((4, 8, 12, 24))
        frequency = {"value": hours, "type": "hours", "frequencyInterval": "timeBased"}
        session = {"signInFrequency": frequency | {"isEnabled": True}}
        name = "Session"
    roll = rng.random()
    return {
        "id": _guid(rng),
        "displayName": f"WS{workspace:03d}-{name}",
        "state": "enabled" if roll < 0.8 else "enabledForReportingButNotEnforced",
        "conditions": conditions,
        "grantControls": grant,
        "sessionControls": session,
    }


def _narrow_block(rng: random.Random, u: Universe, conditions: dict[str, Any]) -> None:
    """Real block policies are narrow (legacy clients, countries, risk): make sure of one."""
    narrowing = ("locations", "platforms", "signInRiskLevels", "userRiskLevels")
    if conditions["clientAppTypes"] != ["all"] or any(k in conditions for k in narrowing):
        return
    roll = rng.random()
    if roll < 0.5:
        conditions["clientAppTypes"] = ["exchangeActiveSync", "other"]
    elif roll < 0.8:
        blocked = u.country_locations[1][0]
        conditions["locations"] = {"includeLocations": [blocked], "excludeLocations": []}
    else:
        conditions["signInRiskLevels"] = ["high"]


def write_policy_set(folder: Path, universe: Universe, size: int, seed: int) -> None:
    """Write `size` policies (one file each, as exported) and the named locations."""
    rng = random.Random(f"{seed}:policies:{size}")
    (folder / "policies").mkdir(parents=True)
    (folder / "namedLocations").mkdir()
    for i in range(size):
        if i < BASELINE:
            doc = policy_document(rng, universe, i)
        else:
            doc = workspace_policy(rng, universe, i)
        (folder / "policies" / f"CA{i:04d}.json").write_text(json.dumps(doc, indent=2), "utf-8")
    locations = {"value": location_documents(universe)}
    (folder / "namedLocations" / "all.json").write_text(json.dumps(locations, indent=2), "utf-8")


def _ip(rng: random.Random, u: Universe) -> str:
    roll = rng.random()
    if roll < 0.05:
        return ""
    if roll < 0.50:  # inside a named location (offices, clusters, VPN egress)
        network = ipaddress.ip_network(rng.choice(rng.choice(u.ip_locations).cidrs))
        return str(network[rng.randrange(network.num_addresses)])
    if rng.random() < 0.2:
        return str(ipaddress.IPv6Address(0x2400 << 112 | rng.getrandbits(112)))
    return str(ipaddress.IPv4Address(rng.randrange(0x14000000, 0xDF000000)))


def _device(rng: random.Random, ctx: dict[str, Any]) -> None:
    roll = rng.random()
    ctx["platform"] = rng.choices(
        ("windows", "macOS", "iOS", "android", "linux", ""), (40, 20, 15, 12, 8, 5)
    )[0]
    if roll < 0.5:
        return  # unregistered: no device properties at all
    trust = rng.choice(("AzureAD", "ServerAD", "Workplace"))
    compliant = rng.random() < 0.7
    ctx |= {"device_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
    ctx |= {"trust_type": trust, "compliant": compliant}
    props = {"deviceid": ctx["device_id"], "trusttype": trust, "iscompliant": str(compliant)}
    props["deviceownership"] = "Company" if rng.random() < 0.8 else "Personal"
    props["operatingsystem"] = ctx["platform"].capitalize() or "Unknown"
    props["model"] = rng.choice(("Surface Laptop 5", "MacBookPro18,3", "ThinkPad P1", "DGX"))
    props["displayname"] = f"ws-{rng.randrange(10_000)}"
    if rng.random() < 0.2:
        props["extensionattribute1"] = "SAW"
    if rng.random() < 0.3:
        props["extensionattribute2"] = rng.choice(("ml-workstation", "gpu-node", "laptop"))
    ctx["device_properties"] = props


def make_request(rng: random.Random, u: Universe, index: int) -> SignInContext:
    """One sign-in as the transport would build it (ids lower-case, canonical enums)."""
    ip = _ip(rng, u)
    address = ipaddress.ip_address(ip) if ip else None
    office = sorted(DEFAULT_APPLICATION_GROUPS["Office365"])
    ctx: dict[str, Any] = {
        "request_id": f"bench-{index}",
        "time": BASE_TIME + rng.randrange(86_400),
        "application_id": rng.choice(office) if rng.random() < 0.1 else _skewed(rng, u.apps, 1)[0],
        "ip_address": ip,
        "ip_value": int(address) if address else None,
        "ip_version": address.version if address else 0,
        "country": rng.choices(list(COUNTRIES), list(COUNTRIES.values()))[0],
    }
    if rng.random() < 0.06:
        ctx["service_principal_id"] = rng.choice(u.service_principals)
        ctx["service_principal_risk"] = "high" if rng.random() < 0.05 else "none"
        return SignInContext(**ctx)
    ctx["user_id"] = rng.choice(u.users)
    if rng.random() < 0.05:
        ctx |= {"guest": True, "guest_type": rng.choice(GUEST_TYPES)}
        ctx |= {"home_tenant_id": rng.choice(u.guest_tenants)}
        groups = _skewed(rng, u.groups[2:], rng.randint(0, 5))
    else:
        groups = _skewed(rng, u.groups[2:], rng.randint(5, 60))
        if rng.random() < 0.005:
            groups.append(u.break_glass[0])
        if rng.random() < 0.08:
            ctx["role_ids"] = frozenset(_skewed(rng, ADMIN_ROLES, rng.randint(1, 2)))
    if rng.random() < 0.5:  # a workspace sign-in, mostly by a member of its team
        app, team = rng.choice(u.workspaces)
        ctx["application_id"] = app
        if rng.random() < 0.8:
            groups.append(team)
    groups += [team for _, team in rng.sample(u.workspaces, rng.randint(0, 3))]
    ctx["group_ids"] = frozenset(groups)
    if rng.random() < 0.01:
        ctx |= {"application_id": "", "user_action": "urn:user:registersecurityinfo"}
    if rng.random() < 0.02:
        ctx["authentication_contexts"] = frozenset({f"c{rng.randint(1, 3)}"})
    _device(rng, ctx)
    ctx["client_app_type"] = rng.choices(
        ("browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other", ""),
        (45, 45, 3, 2, 5),
    )[0]
    ctx["methods"] = rng.choices([m for m, _ in METHODS], [w for _, w in METHODS])[0]
    if rng.random() < 0.7:
        ctx["authenticated_at"] = ctx["time"] - rng.randrange(3 * 86_400)
    if rng.random() < 0.03:
        ctx["satisfied_controls"] = frozenset({"approvedApplication"})
    if rng.random() < 0.02:
        ctx["flow"] = "deviceCodeFlow"
    levels = ("none", "low", "medium", "high")
    ctx["sign_in_risk"] = rng.choices(levels, (85, 8, 5, 2))[0]
    ctx["user_risk"] = rng.choices(levels, (90, 5, 3, 2))[0]
    return SignInContext(**ctx)


def make_requests(
    universe: Universe, count: int, seed: int, stream: str = "requests"
) -> list[SignInContext]:
    """A pool of `count` varied sign-ins (users, guests, service principals).

    Each `stream` name gives different requests from the same seed (e.g. a warm-up pool).
    """
    rng = random.Random(f"{seed}:{stream}")
    return [make_request(rng, universe, i) for i in range(count)]
