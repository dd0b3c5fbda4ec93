"""Compile a `PolicySet` into plain, indexed structures the evaluator reads per request.

Every enabled or report-only policy gets a bit. Each condition becomes a lookup from a
request value to the bitmask of policies whose condition that value satisfies: by user,
group, role, application, platform, client app type, risk level, flow, and by IP interval
and country for locations. A request then ANDs a dozen Python ints and touches only the
policies that apply; the per-policy work left (device filters, grant checks) is done for
those alone. Nothing here runs per request.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import FrozenInstanceError, dataclass, field

from netaddr import IPNetwork

from pdp.policy.application_filter import ApplicationFilter
from pdp.policy.device_filter import DeviceFilter
from pdp.policy.grant_index import GrantIndex, index_grants
from pdp.policy.model import (
    ALL,
    ALL_TRUSTED,
    GUESTS_OR_EXTERNAL_USERS,
    SERVICE_PRINCIPALS_IN_MY_TENANT,
    AuthenticationStrength,
    Condition,
    GuestsOrExternalUsers,
    NamedLocation,
    Policy,
    PolicySet,
    PolicyState,
)
from pdp.vocabulary import (
    CLIENT_APP_TYPES,
    FLOWS,
    INSIDER_RISK_LEVELS,
    PLATFORMS,
    RISK_LEVELS,
)

Masks = dict[str, int]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One policy as the evaluator needs it: identity, grant clause and session, precomputed."""

    bit: int
    policy: Policy
    enforced: bool  # False: report-only
    target_reason: Condition  # the What-If reason when its target does not match
    # The grant clause as a tuple of requirements, each a tuple of controls (any one meets it):
    # OR -> one requirement with every control; AND -> one requirement per control.
    requirements: tuple[tuple[str, ...], ...]
    block: bool
    grant_controls: tuple[str, ...]  # for the response, in control names (block included)
    session_controls: tuple[str, ...]
    device_filter: DeviceFilter | None
    device_filter_mode: str | None
    exclude_compliant: bool  # deprecated excludeDeviceStates: Compliant
    exclude_domain_joined: bool  # deprecated excludeDeviceStates: DomainJoined


@dataclass(slots=True)
class _Guests:
    """A policy whose users condition depends on the guest type or home tenant."""

    mask: int  # the policy's bit, shifted into place
    include: GuestsOrExternalUsers | None
    exclude: GuestsOrExternalUsers | None


@dataclass(slots=True)
class IntervalTable:
    """Disjoint IP intervals of one address family, each with its include/exclude masks."""

    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)  # inclusive
    include: list[int] = field(default_factory=list)
    exclude: list[int] = field(default_factory=list)

    def lookup(self, value: int) -> tuple[int, int]:
        """The (include, exclude) masks of the interval holding `value`, or (0, 0)."""
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value <= self.ends[i]:
            return self.include[i], self.exclude[i]
        return 0, 0


@dataclass(slots=True, weakref_slot=True, eq=False)  # one set is one object: compared by identity
class CompiledPolicySet:
    """The evaluator's view of a policy set. Built once per (re)load, read-only after.

    Setting an attribute after compile raises FrozenInstanceError; the tables are not
    copied into read-only views (a lookup per condition per request is the hot path), so
    they are read-only by convention: nothing outside this module writes them, and the
    engine keeps its own per-set state apart (`pdp.engine.set_cache`).
    """

    version: str
    policies: tuple[CompiledPolicy, ...]  # index == bit
    disabled: tuple[Policy, ...]
    active_mask: int = 0
    enforced_mask: int = 0
    # users (user sign-ins)
    all_users: int = 0
    any_guest: int = 0  # includeUsers GuestsOrExternalUsers
    excluded_any_guest: int = 0
    users: Masks = field(default_factory=dict)
    groups: Masks = field(default_factory=dict)
    roles: Masks = field(default_factory=dict)
    excluded_users: Masks = field(default_factory=dict)
    excluded_groups: Masks = field(default_factory=dict)
    excluded_roles: Masks = field(default_factory=dict)
    group_keys: frozenset[str] = frozenset()  # every group id any policy names
    role_keys: frozenset[str] = frozenset()
    guest_rules: tuple[_Guests, ...] = ()
    # workload identities (service principal sign-ins)
    all_service_principals: int = 0
    service_principals: Masks = field(default_factory=dict)
    excluded_service_principals: Masks = field(default_factory=dict)
    # target: applications, user actions, authentication contexts
    all_apps: int = 0
    apps: Masks = field(default_factory=dict)
    excluded_apps: Masks = field(default_factory=dict)
    user_actions: Masks = field(default_factory=dict)
    auth_contexts: Masks = field(default_factory=dict)
    # application filters, one entry per distinct rule: (filter, policies including the apps
    # it matches, policies excluding them); empty when no policy has one (nothing per request)
    app_filters: tuple[tuple[ApplicationFilter, int, int], ...] = ()
    # conditions over closed sets: value -> mask ("" = unknown / none)
    platforms: Masks = field(default_factory=dict)
    client_app_types: Masks = field(default_factory=dict)
    sign_in_risk: Masks = field(default_factory=dict)
    user_risk: Masks = field(default_factory=dict)
    service_principal_risk: Masks = field(default_factory=dict)
    insider_risk: Masks = field(default_factory=dict)
    flows: Masks = field(default_factory=dict)
    # locations
    location_unconfigured: int = 0
    location_all: int = 0
    ipv4: IntervalTable = field(default_factory=IntervalTable)
    ipv6: IntervalTable = field(default_factory=IntervalTable)
    countries: dict[str, tuple[int, int]] = field(default_factory=dict)  # "" = unknown
    compliant_network: tuple[int, int] = (0, 0)
    trusted_networks: tuple[IPNetwork, ...] = ()  # ranges of trusted IP named locations
    # devices: policies whose device condition needs a per-request check
    device_mask: int = 0
    # grant requirements, sign-in frequencies and session controls (pdp.policy.grant_index)
    grants: GrantIndex = field(default_factory=GrantIndex)
    strengths: dict[str, AuthenticationStrength] = field(default_factory=dict)
    uses_sign_in_risk: bool = False
    # for sign-ins whose group (role) memberships are unknown: the policies including any
    including_any_group: int = 0
    including_any_role: int = 0
    # (What-If reason, policies whose target fails with it): application, userActions, ...
    target_reasons: tuple[tuple[Condition, int], ...] = ()
    _frozen: bool = field(default=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        """Attributes are set while compiling only: a compiled set is read-only after."""
        if getattr(self, "_frozen", False):
            raise FrozenInstanceError(f"a compiled policy set is read-only: cannot set {name}")
        object.__setattr__(self, name, value)


def compile_policy_set(policy_set: PolicySet) -> CompiledPolicySet:
    """Build the indexed structures for a validated policy set."""
    active = [p for p in policy_set.policies if p.state is not PolicyState.DISABLED]
    compiled = CompiledPolicySet(
        version=policy_set.version,
        policies=tuple(_compile_policy(i, p) for i, p in enumerate(active)),
        disabled=tuple(p for p in policy_set.policies if p.state is PolicyState.DISABLED),
        strengths=dict(policy_set.strengths),
    )
    groups = {name.lower(): apps for name, apps in policy_set.application_groups.items()}
    for cp in compiled.policies:
        bit = 1 << cp.bit
        compiled.active_mask |= bit
        if cp.enforced:
            compiled.enforced_mask |= bit
        _index_identity(compiled, cp, bit)
        _index_target(compiled, cp, bit, groups)
        _index_closed_sets(compiled, cp, bit)
        if cp.device_filter is not None or cp.exclude_compliant or cp.exclude_domain_joined:
            compiled.device_mask |= bit
    _index_locations(compiled, policy_set.locations)
    compiled.group_keys = frozenset(compiled.groups) | frozenset(compiled.excluded_groups)
    compiled.role_keys = frozenset(compiled.roles) | frozenset(compiled.excluded_roles)
    compiled.grants = index_grants(compiled.policies, compiled.strengths)
    compiled.uses_sign_in_risk = any(
        cp.policy.conditions.sign_in_risk_levels for cp in compiled.policies
    )
    compiled.including_any_group = _union(compiled.groups.values())
    compiled.including_any_role = _union(compiled.roles.values())
    reasons: dict[Condition, int] = {}
    for cp in compiled.policies:
        reasons[cp.target_reason] = reasons.get(cp.target_reason, 0) | 1 << cp.bit
    compiled.target_reasons = tuple(reasons.items())
    compiled._frozen = True
    return compiled


def _union(masks: Iterable[int]) -> int:
    found = 0
    for mask in masks:
        found |= mask
    return found


def _compile_policy(index: int, policy: Policy) -> CompiledPolicy:
    apps = policy.conditions.applications
    targets_apps = apps.targets_apps
    actions, contexts = apps.include_user_actions, apps.include_authentication_contexts
    if actions and not targets_apps and not contexts:
        target_reason = Condition.USER_ACTIONS
    elif contexts and not targets_apps and not actions:
        target_reason = Condition.AUTHENTICATION_CONTEXT
    else:
        target_reason = Condition.APPLICATION
    grant = policy.grant
    requirements: tuple[tuple[str, ...], ...] = ()
    grant_controls: tuple[str, ...] = ()
    if grant is not None:
        if grant.controls:
            if grant.operator == "OR":
                requirements = (grant.controls,)
            else:
                requirements = tuple((c,) for c in grant.controls)
        grant_controls = (("block",) if grant.block else ()) + grant.controls
    devices = policy.conditions.devices
    return CompiledPolicy(
        bit=index,
        policy=policy,
        enforced=policy.state is PolicyState.ENABLED,
        target_reason=target_reason,
        requirements=requirements,
        block=grant is not None and grant.block,
        grant_controls=grant_controls,
        session_controls=policy.session.names(),
        device_filter=devices.filter,
        device_filter_mode=devices.filter_mode,
        exclude_compliant="Compliant" in devices.exclude_states,
        exclude_domain_joined="DomainJoined" in devices.exclude_states,
    )


def _add(masks: Masks, keys: Iterable[str], bit: int) -> None:
    for key in keys:
        masks[key] = masks.get(key, 0) | bit


def _index_identity(c: CompiledPolicySet, cp: CompiledPolicy, bit: int) -> None:
    users = cp.policy.conditions.users
    if ALL in users.include_users:
        c.all_users |= bit
    if GUESTS_OR_EXTERNAL_USERS in users.include_users:
        c.any_guest |= bit
    if GUESTS_OR_EXTERNAL_USERS in users.exclude_users:
        c.excluded_any_guest |= bit
    _add(c.users, users.include_users, bit)
    _add(c.groups, users.include_groups, bit)
    _add(c.roles, users.include_roles, bit)
    _add(c.excluded_users, users.exclude_users, bit)
    _add(c.excluded_groups, users.exclude_groups, bit)
    _add(c.excluded_roles, users.exclude_roles, bit)
    if users.include_guests is not None or users.exclude_guests is not None:
        c.guest_rules += (_Guests(bit, users.include_guests, users.exclude_guests),)
    sps = cp.policy.conditions.client_applications
    if SERVICE_PRINCIPALS_IN_MY_TENANT in sps.include_service_principals or (
        ALL in sps.include_service_principals
    ):
        c.all_service_principals |= bit
    _add(c.service_principals, sps.include_service_principals, bit)
    _add(c.excluded_service_principals, sps.exclude_service_principals, bit)


def _index_target(
    c: CompiledPolicySet, cp: CompiledPolicy, bit: int, groups: dict[str, frozenset[str]]
) -> None:
    apps = cp.policy.conditions.applications

    def expand(values: frozenset[str]) -> set[str]:
        out: set[str] = set()
        for value in values:
            out |= groups.get(value.lower(), {value})
        return out

    if ALL in apps.include_applications:
        c.all_apps |= bit
    if apps.filter is not None:
        include = bit if apps.filter_mode == "include" else 0
        filters = {f: (i, e) for f, i, e in c.app_filters}
        old_include, old_exclude = filters.get(apps.filter, (0, 0))
        filters[apps.filter] = (old_include | include, old_exclude | (bit & ~include))
        c.app_filters = tuple((f, i, e) for f, (i, e) in filters.items())
    _add(c.apps, expand(apps.include_applications), bit)
    _add(c.excluded_apps, expand(apps.exclude_applications), bit)
    _add(c.user_actions, apps.include_user_actions, bit)
    _add(c.auth_contexts, apps.include_authentication_contexts, bit)


def _level_masks(masks: Masks, configured: frozenset[str], values: Iterable[str], bit: int) -> None:
    """Index a level condition: not configured matches every level (and unknown "")."""
    for value in (*values, ""):
        level = value or "none"
        if not configured or level in configured:
            masks[value] = masks.get(value, 0) | bit


def _index_closed_sets(c: CompiledPolicySet, cp: CompiledPolicy, bit: int) -> None:
    cond = cp.policy.conditions
    include, exclude = cond.platforms.include, cond.platforms.exclude
    for platform in (*PLATFORMS, ""):
        if include:
            matched = "all" in include or platform in include
            if matched and platform and platform in exclude:
                matched = False
        else:
            matched = not platform or platform not in exclude
        if matched:
            c.platforms[platform] = c.platforms.get(platform, 0) | bit
    for app_type in (*CLIENT_APP_TYPES, ""):
        if not cond.client_app_types or app_type in cond.client_app_types:
            c.client_app_types[app_type] = c.client_app_types.get(app_type, 0) | bit
    _level_masks(c.sign_in_risk, cond.sign_in_risk_levels, RISK_LEVELS, bit)
    _level_masks(c.user_risk, cond.user_risk_levels, RISK_LEVELS, bit)
    _level_masks(c.service_principal_risk, cond.service_principal_risk_levels, RISK_LEVELS, bit)
    _level_masks(c.insider_risk, cond.insider_risk_levels, INSIDER_RISK_LEVELS, bit)
    for flow in (*FLOWS, ""):
        if not cond.transfer_methods or flow in cond.transfer_methods:
            c.flows[flow] = c.flows.get(flow, 0) | bit


def _index_locations(c: CompiledPolicySet, locations: dict[str, NamedLocation]) -> None:
    """Per named location, the policies including / excluding it; then per IP interval."""
    include: Masks = defaultdict(int)
    exclude: Masks = defaultdict(int)
    trusted = [loc.id for loc in locations.values() if loc.is_trusted]
    for cp in c.policies:
        bit = 1 << cp.bit
        cond = cp.policy.conditions.locations
        incl, excl = cond.include, cond.exclude
        if not incl and not excl:
            c.location_unconfigured |= bit
            continue
        if not incl or ALL in incl:
            c.location_all |= bit  # an exclude-only condition means "any location except"
        for target, values in ((include, incl), (exclude, excl)):
            for value in values:
                for location_id in trusted if value == ALL_TRUSTED else [value]:
                    target[location_id] |= bit
    blocks: dict[int, list[_Block]] = {4: [], 6: []}
    for loc in locations.values():
        if loc.kind == "ip":
            in_mask, ex_mask = include[loc.id], exclude[loc.id]
            if in_mask or ex_mask:  # a location no policy names adds nothing to the table
                for network in loc.ip_ranges:
                    block = (network.first, -network.last, in_mask, ex_mask)
                    blocks[network.version].append(block)
        elif loc.kind == "country":
            for code in loc.countries:
                _merge(c.countries, code, include[loc.id], exclude[loc.id])
            if loc.include_unknown_countries:
                _merge(c.countries, "", include[loc.id], exclude[loc.id])
        else:
            c.compliant_network = (
                c.compliant_network[0] | include[loc.id],
                c.compliant_network[1] | exclude[loc.id],
            )
    c.trusted_networks = tuple(
        network
        for loc in locations.values()
        if loc.kind == "ip" and loc.is_trusted
        for network in loc.ip_ranges
    )
    c.ipv4 = _interval_table(blocks[4])
    c.ipv6 = _interval_table(blocks[6])


def _merge(table: dict[str, tuple[int, int]], key: str, incl: int, excl: int) -> None:
    old = table.get(key, (0, 0))
    table[key] = (old[0] | incl, old[1] | excl)


# A CIDR block of a named location: (first address, -last address, include mask, exclude
# mask). The last address is negated so that sorting puts the larger of two blocks with the
# same start first.
_Block = tuple[int, int, int, int]


def _interval_table(blocks: list[_Block]) -> IntervalTable:
    """Split possibly overlapping CIDRs into disjoint intervals carrying the union of masks.

    CIDR blocks are disjoint or nested, never partly overlapping, so one sweep over the
    blocks sorted by start (the larger first on a tie) with a stack of the enclosing blocks
    finds every interval: O(n log n) for n blocks. Neighbouring intervals with the same
    masks are joined, so the table holds no more intervals than it needs.
    """
    table = IntervalTable()
    starts, ends, includes, excludes = table.starts, table.ends, table.include, table.exclude

    def emit(start: int, end: int, incl: int, excl: int) -> None:
        if start > end:
            return
        if ends and ends[-1] == start - 1 and includes[-1] == incl and excludes[-1] == excl:
            ends[-1] = end  # the same masks as the interval just before: one interval
            return
        starts.append(start)
        ends.append(end)
        includes.append(incl)
        excludes.append(excl)

    stack: list[tuple[int, int, int]] = []  # enclosing blocks: (last, include, exclude)
    cursor = 0  # the first address not emitted yet
    blocks.sort()
    for start, negated_end, own_incl, own_excl in blocks:
        while stack and stack[-1][0] < start:
            last, incl, excl = stack.pop()
            emit(cursor, last, incl, excl)
            cursor = last + 1
        incl, excl = own_incl, own_excl
        if stack:
            _, outer_incl, outer_excl = stack[-1]
            emit(cursor, start - 1, outer_incl, outer_excl)
            incl, excl = incl | outer_incl, excl | outer_excl
        cursor = start
        stack.append((-negated_end, incl, excl))
    while stack:
        last, incl, excl = stack.pop()
        emit(cursor, last, incl, excl)
        cursor = last + 1
    return table
