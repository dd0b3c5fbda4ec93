"""The decision function: `evaluate(ctx, compiled, risk, now) -> Decision`. Pure: no I/O.

Each condition of the compiled set is a lookup from a request value to the bitmask of
policies it matches (see `pdp.policy.compile`); ANDing those masks leaves the policies that
apply, and only they (plus device filters of the survivors) are looked at one by one. With
`explain`, every other policy gets the What-If reasons it failed on, read off the same masks.
"""

from __future__ import annotations

from collections.abc import Iterator

from pdp.context import SignInContext
from pdp.engine.combine import combine_mask, content_part, timed_part
from pdp.engine.decision import Decision
from pdp.policy.compile import CompiledPolicy, CompiledPolicySet
from pdp.policy.device_filter import DeviceFilter
from pdp.policy.model import Condition, GuestsOrExternalUsers
from pdp.risk.assessment import NO_RISK, Assessment, max_level


def evaluate(
    ctx: SignInContext,
    compiled: CompiledPolicySet,
    risk: Assessment = NO_RISK,
    now: float | None = None,
) -> Decision:
    """Decide one sign-in. `now` defaults to the sign-in's own time.

    With a `ctx.memo` (contexts of content seen before share one), what depends on the
    content alone is worked out once per policy set and effective sign-in risk and kept
    there; only the sign-in frequencies are worked out again, from the time.
    """
    sign_in_risk = max_level(ctx.sign_in_risk, risk.sign_in_risk)
    now = ctx.time if now is None else now
    memo = ctx.memo
    if memo is not None and not ctx.explain:
        if memo.compiled is not compiled:
            memo.compiled = compiled
            memo.entries = {}
        found = memo.entries.get(sign_in_risk)
        if found is None:
            masks = condition_masks(ctx, compiled, sign_in_risk)
            applicable = _applicable(ctx, compiled, masks)
            found = memo.entries[sign_in_risk] = content_part(compiled, ctx, applicable)
        return timed_part(compiled, ctx, found, (), sign_in_risk, risk, now)
    masks = condition_masks(ctx, compiled, sign_in_risk)
    applicable = _applicable(ctx, compiled, masks)
    not_applied: list[tuple[CompiledPolicy, tuple[str, ...]]] = []
    if ctx.explain:
        policies = compiled.policies
        not_applied = [
            (policies[bit], why)
            for part, why in reason_parts(ctx, compiled, masks, compiled.active_mask & ~applicable)
            for bit in _bits(part)
        ]
    return combine_mask(compiled, ctx, applicable, not_applied, sign_in_risk, risk, now)


def _applicable(
    ctx: SignInContext, compiled: CompiledPolicySet, masks: list[tuple[str, int]]
) -> int:
    """The policies every condition of which matches `ctx`, device conditions included."""
    applicable = compiled.active_mask
    for _, mask in masks:
        applicable &= mask
    device_checked = applicable & compiled.device_mask
    if device_checked:
        filter_results: dict[DeviceFilter, bool] = {}  # policies often share one rule
        for cp in _policies(compiled, device_checked):
            if not device_matches(cp, ctx, filter_results):
                applicable &= ~(1 << cp.bit)
    return applicable


def condition_masks(
    ctx: SignInContext, c: CompiledPolicySet, sign_in_risk: str
) -> list[tuple[str, int]]:
    """Per condition (What-If name), the mask of policies whose condition matches `ctx`."""
    if ctx.service_principal_id:
        sp = ctx.service_principal_id
        identity_reason = Condition.WORKLOAD_IDENTITIES
        identity = (c.all_service_principals | c.service_principals.get(sp, 0)) & ~(
            c.excluded_service_principals.get(sp, 0)
        )
    else:
        identity_reason = Condition.USERS
        identity = _user_mask(ctx, c)
    app = ctx.application_id
    excluded = c.excluded_apps.get(app, 0)
    target = (c.all_apps | c.apps.get(app, 0)) & ~excluded
    if c.app_filters and app:
        attributes = ctx.application_attributes
        for app_filter, include, exclude in c.app_filters:
            if app_filter.matches(attributes):
                target = (target | include & ~excluded) & ~exclude
    if ctx.user_action:
        target |= c.user_actions.get(ctx.user_action, 0)
    for context in ctx.authentication_contexts:
        target |= c.auth_contexts.get(context, 0)
    return [
        (identity_reason, identity),
        ("target", target),
        (Condition.DEVICE_PLATFORM, c.platforms.get(ctx.platform, 0)),
        (Condition.CLIENT_APPS, c.client_app_types.get(ctx.client_app_type, 0)),
        (Condition.LOCATION, _location_mask(ctx, c)),
        (Condition.SIGN_IN_RISK, c.sign_in_risk.get(sign_in_risk, 0)),
        (Condition.USER_RISK, c.user_risk.get(ctx.user_risk, 0)),
        (
            Condition.SERVICE_PRINCIPAL_RISK,
            c.service_principal_risk.get(ctx.service_principal_risk, 0),
        ),
        (Condition.INSIDER_RISK, c.insider_risk.get(ctx.insider_risk, 0)),
        (Condition.AUTHENTICATION_FLOW, c.flows.get(ctx.flow, 0)),
    ]


def _user_mask(ctx: SignInContext, c: CompiledPolicySet) -> int:
    include = c.all_users | c.users.get(ctx.user_id, 0)
    exclude = c.excluded_users.get(ctx.user_id, 0)
    groups, excluded_groups = c.groups, c.excluded_groups
    for group in ctx.group_ids & c.group_keys:
        include |= groups.get(group, 0)
        exclude |= excluded_groups.get(group, 0)
    for role in ctx.role_ids & c.role_keys:
        include |= c.roles.get(role, 0)
        exclude |= c.excluded_roles.get(role, 0)
    if ctx.groups_unknown:
        include |= c.including_any_group
    if ctx.roles_unknown:
        include |= c.including_any_role
    if ctx.guest:
        include |= c.any_guest
        exclude |= c.excluded_any_guest
        for rule in c.guest_rules:
            if rule.include is not None and _guest_matches(rule.include, ctx, unknown=True):
                include |= rule.mask
            if rule.exclude is not None and _guest_matches(rule.exclude, ctx, unknown=False):
                exclude |= rule.mask
    return include & ~exclude


def _guest_matches(rule: GuestsOrExternalUsers, ctx: SignInContext, *, unknown: bool) -> bool:
    """Whether a guest matches a guestsOrExternalUsers rule.

    What the gateway did not say (guest type, home tenant) counts as matching an include
    and not matching an exclude, so that doubt makes policies apply rather than not.
    """
    type_ok = rule.types and (ctx.guest_type in rule.types if ctx.guest_type else unknown)
    if rule.tenants is None:
        tenant_ok = True
    elif ctx.home_tenant_id:
        tenant_ok = ctx.home_tenant_id in rule.tenants
    else:
        tenant_ok = unknown
    return bool(type_ok and tenant_ok)


def _location_mask(ctx: SignInContext, c: CompiledPolicySet) -> int:
    include = exclude = 0
    if ctx.ip_value is not None:
        table = c.ipv4 if ctx.ip_version == 4 else c.ipv6
        include, exclude = table.lookup(ctx.ip_value)
    country_include, country_exclude = c.countries.get(ctx.country, (0, 0))
    include |= country_include
    exclude |= country_exclude
    if ctx.compliant_network:
        include |= c.compliant_network[0]
        exclude |= c.compliant_network[1]
    return c.location_unconfigured | ((c.location_all | include) & ~exclude)


def device_matches(
    cp: CompiledPolicy, ctx: SignInContext, seen: dict[DeviceFilter, bool] | None = None
) -> bool:
    """Whether the device condition of `cp` keeps the policy in scope for this device.

    `seen` remembers filter results within one request, for rules several policies share.
    """
    if cp.exclude_compliant and ctx.compliant:
        return False
    if cp.exclude_domain_joined and ctx.trust_type == "ServerAD":
        return False
    device_filter = cp.device_filter
    if device_filter is not None:
        matched = None if seen is None else seen.get(device_filter)
        if matched is None:
            matched = device_filter.matches(ctx.device_properties)
            if seen is not None:
                seen[device_filter] = matched
        return matched if cp.device_filter_mode == "include" else not matched
    return True


def reason_parts(
    ctx: SignInContext, c: CompiledPolicySet, masks: list[tuple[str, int]], not_applied: int
) -> list[tuple[int, tuple[str, ...]]]:
    """Split `not_applied` into masks of policies that fail on the same What-If reasons.

    Condition by condition, every part splits into the policies that match the condition
    and those that do not (which gain its reason): a few big-int operations per condition
    and part instead of a loop over the policies. Reasons come out in What-If order, with
    `devices` right after `devicePlatform` (as `reasons` orders them).
    """
    device_failed = 0
    if not_applied & c.device_mask:
        seen: dict[DeviceFilter, bool] = {}
        for cp in _policies(c, not_applied & c.device_mask):
            if not device_matches(cp, ctx, seen):
                device_failed |= 1 << cp.bit
    parts: list[tuple[int, tuple[str, ...]]] = [(not_applied, ())]
    for name, mask in masks:
        by_reason = c.target_reasons if name == "target" else ((name, -1),)
        parts = _split(parts, mask, by_reason)
        if name == Condition.DEVICE_PLATFORM and device_failed:
            parts = _split(parts, ~device_failed, ((Condition.DEVICES, -1),))
    return parts


def _split(
    parts: list[tuple[int, tuple[str, ...]]], matched: int, by_reason: tuple[tuple[str, int], ...]
) -> list[tuple[int, tuple[str, ...]]]:
    out: list[tuple[int, tuple[str, ...]]] = []
    for part, why in parts:
        if kept := part & matched:
            out.append((kept, why))
        if failed := part & ~matched:
            for reason, among in by_reason:
                if some := failed & among:
                    out.append((some, (*why, reason)))
    return out


def _bits(mask: int) -> list[int]:
    out: list[int] = []
    while mask:
        low = mask & -mask
        out.append(low.bit_length() - 1)
        mask ^= low
    return out


def _policies(compiled: CompiledPolicySet, mask: int) -> Iterator[CompiledPolicy]:
    policies = compiled.policies
    while mask:
        low = mask & -mask
        yield policies[low.bit_length() - 1]
        mask ^= low
