"""A plain reference evaluator: the semantics of each condition, checked one policy at a time.

It lives with the tests, outside the installed package: nothing in pdp decides with it.
It exists to be obviously right rather than fast. It reads the typed `Policy`
model directly (no bitmasks, no indexes) and states every condition the way Entra's
documentation does, so that the fast evaluator (`pdp.engine.evaluate`) can be tested
against it on every scenario and on random policy sets. Both feed the same `combine()`,
so the two answer the same question: which policies apply, and why the others do not.

Semantics, condition by condition (each fails with its Graph What-If reason):

- users (user sign-ins): included by `All`, the user id, a group or role id, or as a guest
  by `GuestsOrExternalUsers` / `includeGuestsOrExternalUsers`; any exclude beats any
  include. A guest type or home tenant the gateway did not give counts as matching an
  include and as not matching an exclude. `None` matches nobody.
- workloadIdentities (service principal sign-ins): only policies including service
  principals (ids or `ServicePrincipalsInMyTenant`) can apply; an exclude beats.
- target (application / userActions / authenticationContext): the app (`All` = every
  request, app groups expanded, excludes beat includes; an application filter in include
  mode adds the apps whose custom security attributes match its rule, in exclude mode takes
  them out), or the user action, or any of the request's authentication contexts.
- devicePlatform, devices, clientApps, location, the risk levels and authenticationFlow:
  not configured matches anything; otherwise see each function below.
"""

from __future__ import annotations

from netaddr import AddrFormatError, IPAddress

from pdp.context import SignInContext
from pdp.engine.combine import combine
from pdp.engine.decision import Decision
from pdp.policy.compile import CompiledPolicy, CompiledPolicySet
from pdp.policy.model import (
    ALL,
    ALL_TRUSTED,
    GUESTS_OR_EXTERNAL_USERS,
    SERVICE_PRINCIPALS_IN_MY_TENANT,
    Condition,
    GuestsOrExternalUsers,
    NamedLocation,
    Policy,
    PolicySet,
    PolicyState,
)
from pdp.risk.assessment import NO_RISK, Assessment

_RISK_ORDER = ("none", "low", "medium", "high")


def reference_evaluate(
    ctx: SignInContext,
    policy_set: PolicySet,
    compiled: CompiledPolicySet,
    risk: Assessment = NO_RISK,
    now: float | None = None,
) -> Decision:
    """Decide one sign-in like `pdp.engine.evaluate.evaluate`, from the model alone."""
    sign_in_risk = effective_sign_in_risk(ctx, risk)
    results = applicability(ctx, policy_set, risk)
    applied: list[CompiledPolicy] = []
    not_applied: list[tuple[CompiledPolicy, tuple[str, ...]]] = []
    for cp in compiled.policies:  # in the compiled order, as the fast evaluator reports them
        reasons = results[cp.policy.id]
        if not reasons:
            applied.append(cp)
        elif ctx.explain:
            not_applied.append((cp, reasons))
    return combine(
        compiled,
        ctx,
        applied,
        not_applied,
        sign_in_risk,
        risk,
        ctx.time if now is None else now,
    )


def applicability(
    ctx: SignInContext, policy_set: PolicySet, risk: Assessment = NO_RISK
) -> dict[str, tuple[str, ...]]:
    """For each policy that is not disabled, the What-If reasons it fails on (() = applies)."""
    return {
        policy.id: policy_reasons(ctx, policy, policy_set, risk)
        for policy in policy_set.policies
        if policy.state is not PolicyState.DISABLED
    }


def policy_reasons(
    ctx: SignInContext, policy: Policy, policy_set: PolicySet, risk: Assessment = NO_RISK
) -> tuple[str, ...]:
    """Every condition of `policy` that this sign-in does not match, in What-If order."""
    cond = policy.conditions
    sign_in_risk = effective_sign_in_risk(ctx, risk)
    checks: list[tuple[bool, str]] = []
    if ctx.service_principal_id:
        checks.append((workload_identity_matches(ctx, policy), Condition.WORKLOAD_IDENTITIES))
    else:
        checks.append((users_match(ctx, policy), Condition.USERS))
    checks += [
        (target_matches(ctx, policy, policy_set), target_reason(policy)),
        (platform_matches(ctx, policy), Condition.DEVICE_PLATFORM),
        (device_matches(ctx, policy), Condition.DEVICES),
        (client_app_matches(ctx, policy), Condition.CLIENT_APPS),
        (location_matches(ctx, policy, policy_set), Condition.LOCATION),
        (level_matches(cond.sign_in_risk_levels, sign_in_risk), Condition.SIGN_IN_RISK),
        (level_matches(cond.user_risk_levels, ctx.user_risk), Condition.USER_RISK),
        (
            level_matches(cond.service_principal_risk_levels, ctx.service_principal_risk),
            Condition.SERVICE_PRINCIPAL_RISK,
        ),
        (level_matches(cond.insider_risk_levels, ctx.insider_risk), Condition.INSIDER_RISK),
        (flow_matches(ctx, policy), Condition.AUTHENTICATION_FLOW),
    ]
    return tuple(str(reason) for matched, reason in checks if not matched)


def effective_sign_in_risk(ctx: SignInContext, risk: Assessment) -> str:
    """The higher of the upstream sign-in risk and pdp's own assessment."""
    levels = [ctx.sign_in_risk, risk.sign_in_risk]
    return max((lv if lv in _RISK_ORDER else "none" for lv in levels), key=_RISK_ORDER.index)


# --- identity ------------------------------------------------------------------------------


def users_match(ctx: SignInContext, policy: Policy) -> bool:
    """The users condition for a user sign-in: included and not excluded."""
    users = policy.conditions.users
    user_id = ctx.user_id.lower()
    groups = {g.lower() for g in ctx.group_ids}
    roles = {r.lower() for r in ctx.role_ids}
    included = (
        ALL in users.include_users
        or (bool(user_id) and user_id in users.include_users)
        or bool(groups & users.include_groups)
        or bool(roles & users.include_roles)
        or (ctx.groups_unknown and bool(users.include_groups))  # may be a member
        or (ctx.roles_unknown and bool(users.include_roles))
        or (ctx.guest and GUESTS_OR_EXTERNAL_USERS in users.include_users)
        or (ctx.guest and _guest_in(users.include_guests, ctx, unknown_matches=True))
    )
    excluded = (
        (bool(user_id) and user_id in users.exclude_users)
        or bool(groups & users.exclude_groups)
        or bool(roles & users.exclude_roles)
        or (ctx.guest and GUESTS_OR_EXTERNAL_USERS in users.exclude_users)
        or (ctx.guest and _guest_in(users.exclude_guests, ctx, unknown_matches=False))
    )
    return included and not excluded


def _guest_in(
    rule: GuestsOrExternalUsers | None, ctx: SignInContext, *, unknown_matches: bool
) -> bool:
    """Whether a guest is one of the guest types from one of the tenants of `rule`."""
    if rule is None or not rule.types:
        return False
    type_listed = ctx.guest_type in rule.types if ctx.guest_type else unknown_matches
    if rule.tenants is None:
        tenant_listed = True
    elif ctx.home_tenant_id:
        tenant_listed = ctx.home_tenant_id.lower() in rule.tenants
    else:
        tenant_listed = unknown_matches
    return type_listed and tenant_listed


def workload_identity_matches(ctx: SignInContext, policy: Policy) -> bool:
    """The clientApplications condition for a service principal sign-in."""
    sps = policy.conditions.client_applications
    sp = ctx.service_principal_id.lower()
    included = (
        SERVICE_PRINCIPALS_IN_MY_TENANT in sps.include_service_principals
        or ALL in sps.include_service_principals
        or sp in sps.include_service_principals
    )
    return included and sp not in sps.exclude_service_principals


# --- target --------------------------------------------------------------------------------


def target_reason(policy: Policy) -> str:
    """The What-If reason when the target does not match: what the policy targets alone."""
    apps = policy.conditions.applications
    has_apps = apps.targets_apps
    has_actions = bool(apps.include_user_actions)
    has_contexts = bool(apps.include_authentication_contexts)
    if has_actions and not has_apps and not has_contexts:
        return Condition.USER_ACTIONS
    if has_contexts and not has_apps and not has_actions:
        return Condition.AUTHENTICATION_CONTEXT
    return Condition.APPLICATION


def _expand(values: frozenset[str], policy_set: PolicySet) -> set[str]:
    """App ids named by `values`, with application groups replaced by their members."""
    groups = {name.lower(): apps for name, apps in policy_set.application_groups.items()}
    out: set[str] = set()
    for value in values:
        out |= {a.lower() for a in groups.get(value.lower(), frozenset({value.lower()}))}
    return out


def target_matches(ctx: SignInContext, policy: Policy, policy_set: PolicySet) -> bool:
    """The applications condition: the app, the user action or an authentication context."""
    apps = policy.conditions.applications
    app = ctx.application_id.lower()
    app_filter = apps.filter if app else None
    filter_matches = app_filter is not None and app_filter.matches(ctx.application_attributes)
    app_included = (
        ALL in apps.include_applications
        or (bool(app) and app in _expand(apps.include_applications, policy_set))
        or (filter_matches and apps.filter_mode == "include")
    )
    app_excluded = bool(app) and (
        app in _expand(apps.exclude_applications, policy_set)
        or (filter_matches and apps.filter_mode == "exclude")
    )
    action = ctx.user_action.lower()
    contexts = {c.lower() for c in ctx.authentication_contexts}
    return (
        (app_included and not app_excluded)
        or (bool(action) and action in apps.include_user_actions)
        or bool(contexts & apps.include_authentication_contexts)
    )


# --- device --------------------------------------------------------------------------------


def platform_matches(ctx: SignInContext, policy: Policy) -> bool:
    """The platforms condition; `all` includes unknown platforms, which nothing excludes."""
    include = policy.conditions.platforms.include
    exclude = policy.conditions.platforms.exclude
    if not include and not exclude:
        return True
    included = not include or "all" in include or ctx.platform in include
    excluded = bool(ctx.platform) and ctx.platform in exclude
    return included and not excluded


def device_matches(ctx: SignInContext, policy: Policy) -> bool:
    """The devices condition: a device filter (include or exclude mode) and device states."""
    devices = policy.conditions.devices
    if "Compliant" in devices.exclude_states and ctx.compliant:
        return False
    if "DomainJoined" in devices.exclude_states and ctx.trust_type == "ServerAD":
        return False
    if devices.filter is None:
        return True
    rule_matches = devices.filter.matches(ctx.device_properties)
    if devices.filter_mode == "include":
        return rule_matches
    return not rule_matches


def client_app_matches(ctx: SignInContext, policy: Policy) -> bool:
    """The clientAppTypes condition (empty means all)."""
    types = policy.conditions.client_app_types
    return not types or ctx.client_app_type in types


# --- network -------------------------------------------------------------------------------


def _address(text: str) -> IPAddress | None:
    """The request's IP address, an IPv4-mapped IPv6 address read as its IPv4 address."""
    if not text:
        return None
    try:
        address = IPAddress(text.strip())
    except (AddrFormatError, ValueError):
        return None
    if address.version == 6 and address.is_ipv4_mapped():
        return address.ipv4()
    return address


def location_contains(ctx: SignInContext, location: NamedLocation | None) -> bool:
    """Whether one named location contains this sign-in (an undefined one contains nothing)."""
    if location is None:
        return False
    if location.kind == "ip":
        address = _address(ctx.ip_address)
        return address is not None and any(
            network.version == address.version and address in network
            for network in location.ip_ranges
        )
    if location.kind == "country":
        if ctx.country:
            return ctx.country.upper() in location.countries
        return location.include_unknown_countries
    return ctx.compliant_network  # compliantNetwork


def _in_any(ctx: SignInContext, values: frozenset[str], policy_set: PolicySet) -> bool:
    for value in values:
        if value == ALL:
            return True
        if value == ALL_TRUSTED:
            trusted = [loc for loc in policy_set.locations.values() if loc.is_trusted]
            if any(location_contains(ctx, loc) for loc in trusted):
                return True
        elif location_contains(ctx, policy_set.locations.get(value.lower())):
            return True
    return False


def location_matches(ctx: SignInContext, policy: Policy, policy_set: PolicySet) -> bool:
    """The locations condition; exclude-only means "any location except"."""
    include = policy.conditions.locations.include
    exclude = policy.conditions.locations.exclude
    if not include and not exclude:
        return True
    included = not include or _in_any(ctx, include, policy_set)
    return included and not _in_any(ctx, exclude, policy_set)


# --- risk and flows ------------------------------------------------------------------------


def level_matches(configured: frozenset[str], level: str) -> bool:
    """A levels condition: not configured matches any level; an unset level reads `none`."""
    return not configured or (level or "none") in configured


def flow_matches(ctx: SignInContext, policy: Policy) -> bool:
    """The authenticationFlows condition: the request's transfer flow must be listed."""
    methods = policy.conditions.transfer_methods
    return not methods or (bool(ctx.flow) and ctx.flow in methods)
