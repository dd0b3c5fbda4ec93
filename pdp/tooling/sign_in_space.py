"""The sign-ins a policy set distinguishes, built as `SignInContext`s for `pdp lint`.

A policy set only tells apart what its conditions name: the users, groups, roles and guest
types it includes or excludes, the applications it names, the IP intervals and countries
of its named locations, platforms, client app types, risk levels, flows and device states.
`SignInSpace` lists one candidate value per distinction in each of these dimensions and
records, with the engine's own `condition_masks`, which policies each candidate matches.

Two facts make small sweeps exact (both follow from the combining rule in
`pdp.engine.combine`): the conditions of a policy are independent of each other, so a
policy can apply iff every dimension has a candidate that matches it; and applying more
enforced policies never turns a denied or challenged sign-in into an allowed one, so to
find whether *any* sign-in gets through it is enough to try, per dimension, the
candidates that match a minimal set of enforced policies (`minimal`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pdp.context import SignInContext
from pdp.engine.evaluate import condition_masks, device_matches
from pdp.policy.compile import CompiledPolicySet
from pdp.policy.model import PolicySet
from pdp.vocabulary import (
    AUTHENTICATION_METHOD_MODES,
    CLIENT_APP_TYPES,
    FLOWS,
    INSIDER_RISK_LEVELS,
    PLATFORMS,
    RISK_LEVELS,
)

SIGN_IN_TIME = 1_780_000_000.0  # any fixed time: lint sign-ins carry no sign-in frequency
GENERIC_APP = "00000000-0000-4000-8000-0000000a11a5"  # an application no policy names
MEMBER = "member@lint.pdp.invalid"  # a user no policy names
SERVICE_PRINCIPAL = "00000000-0000-4000-8000-00000000051a"
LEGACY_CLIENTS = ("exchangeActiveSync", "other")
MODERN_CLIENTS = ("browser", "mobileAppsAndDesktopClients")
PHISHING_RESISTANT_METHODS = frozenset(
    {
        "windowsHelloForBusiness",
        "fido2",
        "x509CertificateMultiFactor",
        "passkeyDeviceBound",
        "passkeyDeviceBoundAuthenticator",
        "passkeyDeviceBoundWindowsHello",
    }
)
ALL_METHODS = frozenset(AUTHENTICATION_METHOD_MODES.values())
NOT_PHISHING_RESISTANT = ALL_METHODS - PHISHING_RESISTANT_METHODS
PASSWORD_ONLY = frozenset({"password"})
# Controls about how the user authenticated or what device they use; every other control
# (terms of use, custom factors, app protection, password change) is "something else".
AUTHENTICATION_CONTROLS = ("mfa", "authenticationStrength:")
DEVICE_CONTROLS = ("compliantDevice", "domainJoinedDevice")
_OUTSIDE_V4 = ("198.18.0.1", "100.64.0.1", "192.88.99.1", "233.252.0.1", "240.0.0.1")
_OUTSIDE_V6 = ("2001:db8:ffff:ffff::1", "3fff:ffff::1", "2001:2::1")
_UNNAMED_COUNTRIES = ("AQ", "BV", "HM", "TF", "UM")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One value of a dimension: how to say it, and the SignInContext fields it sets."""

    label: str
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who signs in: a class of users (or a workload identity) the set tells apart."""

    label: str
    user_id: str = MEMBER
    group_ids: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    guest: bool = False
    guest_type: str = ""
    service_principal_id: str = ""
    excluded: str = ""  # the excluded object this class stands for ("" for none)

    def fields(self) -> dict[str, Any]:
        """The SignInContext fields of this principal."""
        if self.service_principal_id:
            return {"service_principal_id": self.service_principal_id, "user_id": ""}
        return {
            "user_id": self.user_id,
            "group_ids": self.group_ids,
            "role_ids": self.role_ids,
            "guest": self.guest,
            "guest_type": self.guest_type,
        }

    def with_principal(self, other: Principal) -> Principal:
        """The same principal also holding `other`'s user id, groups and roles (one person)."""
        user = other.user_id if other.user_id != MEMBER else self.user_id
        return dataclasses.replace(
            self,
            label=f"{self.label}, also {other.label}",
            user_id=user,
            group_ids=self.group_ids | other.group_ids,
            role_ids=self.role_ids | other.role_ids,
            excluded=other.excluded or self.excluded,
        )


DEVICES = (
    Candidate("an unregistered device", {"compliant": False, "trust_type": ""}),
    Candidate(
        "a registered, non-compliant device", {"compliant": False, "trust_type": "Workplace"}
    ),
    Candidate("a compliant, Entra-joined device", {"compliant": True, "trust_type": "AzureAD"}),
    Candidate("a compliant, hybrid-joined device", {"compliant": True, "trust_type": "ServerAD"}),
)
UNMANAGED_DEVICES = DEVICES[:2]


def device_fields(candidate: Candidate) -> dict[str, Any]:
    """A device candidate's fields, with the device-filter properties the transport sets."""
    fields = dict(candidate.fields)
    if not fields["trust_type"]:
        return {**fields, "device_id": "", "device_properties": {}}
    properties = {
        "deviceid": "lint-device",
        "iscompliant": "True" if fields["compliant"] else "False",
        "trusttype": fields["trust_type"],
    }
    return {**fields, "device_id": "lint-device", "device_properties": properties}


@dataclass(slots=True)
class SignInSpace:
    """Candidate values per dimension and the policies each matches (by the engine)."""

    policy_set: PolicySet
    compiled: CompiledPolicySet
    base: SignInContext  # the sign-in every candidate varies
    dimensions: dict[str, list[Candidate]] = field(default_factory=dict)
    masks: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def of(cls, policy_set: PolicySet, compiled: CompiledPolicySet) -> SignInSpace:
        """The space of `compiled` (built from `policy_set`)."""
        base = SignInContext(
            request_id="lint",
            time=SIGN_IN_TIME,
            user_id=MEMBER,
            application_id=GENERIC_APP,
            platform="windows",
            client_app_type="browser",
            **_ip_fields(_outside(compiled, _OUTSIDE_V4)),
        )
        space = cls(policy_set, compiled, base)
        space.dimensions = {
            "identity": [Candidate(p.label, p.fields()) for p in space.identities()],
            "target": space._targets(),
            "devicePlatform": [
                Candidate(p or "an unknown platform", {"platform": p}) for p in (*PLATFORMS, "")
            ],
            "clientApps": [
                Candidate(c or "an unknown client", {"client_app_type": c})
                for c in (*CLIENT_APP_TYPES, "")
            ],
            "location": space._locations(),
            "signInRisk": [
                Candidate(f"sign-in risk {r}", {"sign_in_risk": r}) for r in RISK_LEVELS
            ],
            "userRisk": [Candidate(f"user risk {r}", {"user_risk": r}) for r in RISK_LEVELS],
            "servicePrincipalRisk": [
                Candidate(f"service principal risk {r}", {"service_principal_risk": r})
                for r in RISK_LEVELS
            ],
            "insiderRisk": [
                Candidate(f"insider risk {r}", {"insider_risk": r}) for r in INSIDER_RISK_LEVELS
            ],
            "authenticationFlow": [
                Candidate(f"flow {f}" if f else "no special flow", {"flow": f})
                for f in ("", *FLOWS)
            ],
        }
        for name, candidates in space.dimensions.items():
            space.masks[name] = [_mask_of(space.vary(c.fields), compiled, name) for c in candidates]
        space.dimensions["devices"] = list(DEVICES)
        space.masks["devices"] = [space._device_mask(c) for c in DEVICES]
        return space

    def vary(self, fields: dict[str, Any]) -> SignInContext:
        """The base sign-in with `fields` replaced."""
        return dataclasses.replace(self.base, **fields)

    def _device_mask(self, candidate: Candidate) -> int:
        ctx = self.vary(device_fields(candidate))
        c = self.compiled
        mask = c.active_mask & ~c.device_mask
        for cp in c.policies:
            if c.device_mask >> cp.bit & 1 and device_matches(cp, ctx):
                mask |= 1 << cp.bit
        return mask

    # -- identities -------------------------------------------------------------------------

    def identities(self) -> list[Principal]:
        """Every principal class: a member in no group, then one per object policies name."""
        out = [Principal("a member in no group")]
        for policy in self.policy_set.policies:
            users = policy.conditions.users
            out += [
                Principal(f"user {user}", user_id=user, excluded=user)
                for user in sorted(users.include_users | users.exclude_users)
                if user not in ("All", "None", "GuestsOrExternalUsers")
            ]
            out += [
                Principal(f"a member of group {g}", group_ids=frozenset({g}), excluded=g)
                for g in sorted(users.include_groups | users.exclude_groups)
            ]
            out += [
                Principal(f"a holder of role {role_name(r)}", role_ids=frozenset({r}), excluded=r)
                for r in sorted(users.include_roles | users.exclude_roles)
            ]
            out += [
                Principal(f"a guest ({kind})", guest=True, guest_type=kind, excluded=kind)
                for rule in (users.include_guests, users.exclude_guests)
                for kind in sorted(rule.types if rule else ())
            ]
            workload = policy.conditions.client_applications
            out += [
                Principal(f"service principal {sp}", service_principal_id=sp, excluded=sp)
                for sp in sorted(
                    workload.include_service_principals | workload.exclude_service_principals
                )
                if sp != "ServicePrincipalsInMyTenant"
            ]
        out.append(Principal("a guest", guest=True))
        out.append(Principal("a service principal", service_principal_id=SERVICE_PRINCIPAL))
        return _unique(out)

    def _targets(self) -> list[Candidate]:
        c = self.compiled
        out = [Candidate("an application no policy names", {"application_id": GENERIC_APP})]
        out += [
            Candidate(f"application {app}", {"application_id": app})
            for app in sorted(set(c.apps) | set(c.excluded_apps))
        ]
        out += [
            Candidate(f"user action {action}", {"application_id": "", "user_action": action})
            for action in sorted(c.user_actions)
        ]
        out += [
            Candidate(
                f"authentication context {ctx}", {"authentication_contexts": frozenset({ctx})}
            )
            for ctx in sorted(c.auth_contexts)
        ]
        return out

    def _locations(self) -> list[Candidate]:
        c = self.compiled
        names = {
            str(r.ip + 1 if r.size > 1 else r.ip): loc.display_name
            for loc in self.policy_set.locations.values()
            for r in loc.ip_ranges
        }
        outside = [_outside(c, _OUTSIDE_V4), _outside(c, _OUTSIDE_V6)]
        # One address per interval of the set's IP ranges (its first host, when it has one).
        addresses = [
            str(make(start + 1 if end > start else start))
            for table, make in ((c.ipv4, ipaddress.IPv4Address), (c.ipv6, ipaddress.IPv6Address))
            for start, end in zip(table.starts, table.ends, strict=True)
        ]
        countries = sorted(k for k in c.countries if k)
        unnamed = next(code for code in _UNNAMED_COUNTRIES if code not in c.countries)
        out = [
            Candidate(f"{a} (in {names.get(a, 'a named range')})", _ip_fields(a)) for a in addresses
        ]
        out += [Candidate(f"{a} (in no named range)", _ip_fields(a)) for a in outside]
        out += [
            Candidate(
                f"{outside[0]} in {f'country {code}' if code else 'an unknown country'}",
                {**_ip_fields(outside[0]), "country": code},
            )
            for code in (*countries, unnamed, "")
        ]
        if any(loc.kind == "compliantNetwork" for loc in self.policy_set.locations.values()):
            out.append(
                Candidate(
                    "the compliant network", {**_ip_fields(outside[0]), "compliant_network": True}
                )
            )
        return out

    # -- sweeps ------------------------------------------------------------------------------

    def minimal(
        self, dimension: str, among: int, allowed: Iterable[int] | None = None
    ) -> list[int]:
        """Candidate indices matching a minimal set of the policies in `among`.

        Candidates matching the same policies count once; a candidate matching a strict
        superset of another's policies is left out (it can only be stricter).
        """
        masks = self.masks[dimension]
        indices = list(range(len(masks))) if allowed is None else list(allowed)
        seen: dict[int, int] = {}
        for i in indices:
            seen.setdefault(masks[i] & among, i)
        keys = list(seen)
        return [seen[k] for k in keys if not any(o != k and o & k == o for o in keys)]

    def indices(self, dimension: str, predicate: Any) -> list[int]:
        """Indices of the candidates of `dimension` whose fields satisfy `predicate`."""
        return [i for i, c in enumerate(self.dimensions[dimension]) if predicate(c.fields)]


def _mask_of(ctx: SignInContext, compiled: CompiledPolicySet, dimension: str) -> int:
    """The policies whose `dimension` condition matches `ctx`, as the engine computes it."""
    masks = condition_masks(ctx, compiled, ctx.sign_in_risk)
    if dimension == "identity":  # named users or workloadIdentities, by the sign-in
        return masks[0][1]
    return dict(masks)[dimension]


def _unique(principals: Sequence[Principal]) -> list[Principal]:
    seen: dict[tuple[Any, ...], Principal] = {}
    for p in principals:
        key = (p.user_id, p.group_ids, p.role_ids, p.guest, p.guest_type, p.service_principal_id)
        seen.setdefault(key, p)
    return list(seen.values())


def _ip_fields(address: str) -> dict[str, Any]:
    ip = ipaddress.ip_address(address)
    return {"ip_address": str(ip), "ip_value": int(ip), "ip_version": ip.version}


def _outside(compiled: CompiledPolicySet, candidates: Sequence[str]) -> str:
    """The first candidate address that no named range holds."""
    for address in candidates:
        ip = ipaddress.ip_address(address)
        table = compiled.ipv4 if ip.version == 4 else compiled.ipv6
        if table.lookup(int(ip)) == (0, 0):
            return address
    return candidates[0]


# Directory role template ids, named (Microsoft Entra built-in roles).
# Source: https://learn.microsoft.com/en-us/entra/identity/role-based-access-control/permissions-reference
ROLE_NAMES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "966707d0-3269-4727-9be2-8c3a10f19b9d": "Password Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "69091246-20e8-4a56-aa4d-066075b2a7a8": "Teams Administrator",
}


def role_name(role_id: str) -> str:
    """A role template id with its name when known."""
    name = ROLE_NAMES.get(role_id.lower())
    return f"{name} ({role_id})" if name else role_id
