"""Parse one raw conditionalAccessPolicy document into the typed `Policy` model.

Field by field as Microsoft Graph defines conditionalAccessPolicy (v1.0 and beta), with
its special values resolved and its mixed-case enums normalised. What pdp cannot
evaluate is never dropped silently: an unknown condition is kept as *unevaluable*
(treated as matching, so the rest of the policy decides) and an unknown grant control is
kept as a control that only the gateway can vouch for; each gets a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pdp.policy import vocabulary as v
from pdp.policy.application_filter import parse_application_filter
from pdp.policy.device_filter import DeviceFilterError, parse_device_filter
from pdp.policy.entra_rules import refusals
from pdp.policy.model import (
    ALL,
    ALL_TRUSTED,
    EVERY_TIME,
    GUESTS_OR_EXTERNAL_USERS,
    NONE,
    SERVICE_PRINCIPALS_IN_MY_TENANT,
    Applications,
    AuthenticationStrength,
    ClientApplications,
    Conditions,
    DeviceCondition,
    GrantControls,
    GuestsOrExternalUsers,
    IncludeExclude,
    Policy,
    PolicyState,
    SessionControls,
    Users,
)
from pdp.policy.reader import Reader, configured
from pdp.vocabulary import GUEST_TYPES

# Special values of include/excludeApplications besides application groups: "All", "None",
# and Graph's beta "AllAgentIdResources", which no sign-in pdp sees is part of.
ALL_AGENT_ID_RESOURCES = "AllAgentIdResources"
APPLICATION_SPECIALS = (ALL, NONE, ALL_AGENT_ID_RESOURCES)
# Conditions Graph defines that pdp has no signal for. Configured, they are unevaluable.
_UNEVALUABLE_CONDITIONS = {
    "times": "sign-in times (deprecated in Graph)",
    "clients": "client (deprecated in Graph)",
    "agents": "agent identities",
    "agentIdRiskLevels": "agent identity risk",
    "agentContext": "agent context",
}
_FilterT = TypeVar("_FilterT")


def parse_policy(
    data: Mapping[str, Any],
    reader: Reader,
    default_id: str,
    source: str,
    inline_strengths: dict[str, AuthenticationStrength],
) -> Policy | None:
    """Parse a policy; None when it has errors (they are in the reader's diagnostics)."""
    before = len(reader.diagnostics)
    path = "$"
    policy_id = reader.string(data, "id", path)
    if not policy_id:
        policy_id = default_id
    display_name = reader.string(data, "displayName", path) or policy_id
    state_text = reader.enum(data, "state", path, v.STATES)
    if state_text is None and "state" not in data:
        reader.error(f"{path}.state", "missing: every policy needs a state")
    raw_conditions = reader.obj(data.get("conditions"), f"{path}.conditions")
    if raw_conditions is None:
        reader.error(f"{path}.conditions", "missing: every policy needs conditions")
        conditions = Conditions()
    else:
        conditions = _conditions(raw_conditions, reader, f"{path}.conditions")
    grant = _grant(data.get("grantControls"), reader, f"{path}.grantControls", inline_strengths)
    session = _session(data.get("sessionControls"), reader, f"{path}.sessionControls")
    if grant is None and not session.names():
        reader.warn(path, "no grant or session controls: the policy can never affect a sign-in")
    if any(d.severity == "error" for d in reader.diagnostics[before:]) or state_text is None:
        return None
    policy = Policy(
        id=policy_id.lower(),
        display_name=display_name,
        state=PolicyState(state_text),
        conditions=conditions,
        grant=grant,
        session=session,
        source=source,
    )
    findings = refusals(policy)
    for finding in findings:
        (reader.error if finding.refused else reader.warn)(finding.path, finding.text())
    return None if any(f.refused for f in findings) else policy


def _conditions(raw: Mapping[str, Any], r: Reader, path: str) -> Conditions:
    unevaluable: list[str] = []
    for key, what in _UNEVALUABLE_CONDITIONS.items():
        if configured(raw.get(key)):
            r.warn(f"{path}.{key}", f"pdp has no signal for {what}: treated as matching")
            unevaluable.append(key)
    users = _users(r.obj(raw.get("users"), f"{path}.users") or {}, r, f"{path}.users")
    client_apps = _client_applications(raw, r, f"{path}.clientApplications", unevaluable)
    applications = _applications(raw, r, f"{path}.applications", unevaluable)
    included = users.include_users - {NONE} or users.include_groups or users.include_roles
    if not included and users.include_guests is None and not client_apps.configured:
        r.warn(f"{path}.users", "no users or workload identities included: never applies")
    if not applications.targets_anything:
        r.warn(
            f"{path}.applications",
            "no applications, user actions or authentication contexts included: never applies",
        )
    client_app_types: set[str] = set()
    for item in r.strings(raw, "clientAppTypes", path):
        alias = v.CLIENT_APP_TYPE_ALIASES.get(item.lower())
        if alias is not None:
            client_app_types.update(alias)
        elif item.lower() in v.CLIENT_APP_TYPES:
            client_app_types.add(v.CLIENT_APP_TYPES[item.lower()])
        elif item.lower() != "unknownfuturevalue":
            r.warn(f"{path}.clientAppTypes", f"unknown client app type {item!r}: matches nothing")
            client_app_types.add(item)
    if "all" in client_app_types:
        client_app_types = set()
    platforms = r.obj(raw.get("platforms"), f"{path}.platforms") or {}
    locations = r.obj(raw.get("locations"), f"{path}.locations") or {}
    flows = r.obj(raw.get("authenticationFlows"), f"{path}.authenticationFlows") or {}
    return Conditions(
        users=users,
        client_applications=client_apps,
        applications=applications,
        platforms=IncludeExclude(
            include=r.enums(platforms, "includePlatforms", f"{path}.platforms", v.PLATFORMS),
            exclude=r.enums(platforms, "excludePlatforms", f"{path}.platforms", v.PLATFORMS),
        ),
        locations=IncludeExclude(
            include=r.ids(locations, "includeLocations", f"{path}.locations", (ALL, ALL_TRUSTED)),
            exclude=r.ids(locations, "excludeLocations", f"{path}.locations", (ALL, ALL_TRUSTED)),
        ),
        devices=_devices(raw, r, path),
        client_app_types=frozenset(client_app_types),
        sign_in_risk_levels=r.enums(raw, "signInRiskLevels", path, v.RISK_LEVELS),
        user_risk_levels=r.enums(raw, "userRiskLevels", path, v.RISK_LEVELS),
        service_principal_risk_levels=r.enums(
            raw, "servicePrincipalRiskLevels", path, v.RISK_LEVELS
        ),
        insider_risk_levels=r.enums(raw, "insiderRiskLevels", path, v.INSIDER_RISK_LEVELS),
        transfer_methods=r.enums(
            flows, "transferMethods", f"{path}.authenticationFlows", v.TRANSFER_METHODS
        ),
        unevaluable=tuple(unevaluable),
    )


def _users(raw: Mapping[str, Any], r: Reader, path: str) -> Users:
    specials = (ALL, NONE, GUESTS_OR_EXTERNAL_USERS)
    return Users(
        include_users=r.ids(raw, "includeUsers", path, specials),
        exclude_users=r.ids(raw, "excludeUsers", path, specials),
        include_groups=r.ids(raw, "includeGroups", path),
        exclude_groups=r.ids(raw, "excludeGroups", path),
        include_roles=r.ids(raw, "includeRoles", path),
        exclude_roles=r.ids(raw, "excludeRoles", path),
        include_guests=_guests(raw, "includeGuestsOrExternalUsers", r, path),
        exclude_guests=_guests(raw, "excludeGuestsOrExternalUsers", r, path),
    )


def _guests(raw: Mapping[str, Any], key: str, r: Reader, path: str) -> GuestsOrExternalUsers | None:
    obj = r.obj(raw.get(key), f"{path}.{key}")
    if obj is None:
        return None
    types = r.enums(obj, "guestOrExternalUserTypes", f"{path}.{key}", GUEST_TYPES)
    if not types:
        return None
    tenants_obj = r.obj(obj.get("externalTenants"), f"{path}.{key}.externalTenants") or {}
    kind = r.string(tenants_obj, "membershipKind", f"{path}.{key}.externalTenants") or "all"
    tenants = None
    if kind.lower() == "enumerated":
        tenants = r.ids(tenants_obj, "members", f"{path}.{key}.externalTenants")
    return GuestsOrExternalUsers(types=types, tenants=tenants)


def _unevaluable(obj: Mapping[str, Any], keys: tuple[str, ...], r: Reader, path: str) -> list[str]:
    """Warn about each configured sub-field pdp has no signal for; their dotted names."""
    section = path.rsplit(".", 1)[-1]
    found = [key for key in keys if configured(obj.get(key))]
    for key in found:
        r.warn(f"{path}.{key}", "pdp has no signal for this: treated as matching")
    return [f"{section}.{key}" for key in found]


def _client_applications(
    raw: Mapping[str, Any], r: Reader, path: str, unevaluable: list[str]
) -> ClientApplications:
    obj = r.obj(raw.get("clientApplications"), path) or {}
    unevaluable += _unevaluable(
        obj, ("servicePrincipalFilter", "includeAgentIdServicePrincipals"), r, path
    )
    specials = (SERVICE_PRINCIPALS_IN_MY_TENANT, ALL, NONE)
    return ClientApplications(
        include_service_principals=r.ids(obj, "includeServicePrincipals", path, specials),
        exclude_service_principals=r.ids(obj, "excludeServicePrincipals", path, specials),
    )


def _applications(
    raw: Mapping[str, Any], r: Reader, path: str, unevaluable: list[str]
) -> Applications:
    obj = r.obj(raw.get("applications"), path) or {}
    unevaluable += _unevaluable(obj, ("networkAccess", "globalSecureAccess"), r, path)
    filter_mode, application_filter = _filter(
        obj, "applicationFilter", r, path, parse_application_filter
    )
    actions = set()
    for i, action in enumerate(r.strings(obj, "includeUserActions", path)):
        if action.lower() not in v.USER_ACTIONS:
            r.warn(f"{path}.includeUserActions[{i}]", f"unknown user action {action!r}")
        actions.add(action.lower())
    return Applications(
        include_applications=r.ids(
            obj, "includeApplications", path, APPLICATION_SPECIALS, names=r.application_groups
        ),
        exclude_applications=r.ids(
            obj, "excludeApplications", path, APPLICATION_SPECIALS, names=r.application_groups
        ),
        include_user_actions=frozenset(actions),
        include_authentication_contexts=frozenset(
            c.lower() for c in r.strings(obj, "includeAuthenticationContextClassReferences", path)
        ),
        filter_mode=filter_mode,
        filter=application_filter,
    )


def _filter(
    obj: Mapping[str, Any],
    key: str,
    r: Reader,
    path: str,
    parse: Callable[[str], _FilterT],
) -> tuple[str | None, _FilterT | None]:
    """A conditionalAccessFilter (device or application filter): its mode and parsed rule."""
    filter_obj = r.obj(obj.get(key), f"{path}.{key}")
    if filter_obj is None:
        return None, None
    fpath = f"{path}.{key}"
    mode = r.enum(filter_obj, "mode", fpath, {"include": "include", "exclude": "exclude"})
    rule = r.string(filter_obj, "rule", fpath)
    noun = "device filter" if key == "deviceFilter" else "application filter"
    if mode is None or not rule:
        r.error(fpath, f"a {noun} needs a mode (include or exclude) and a rule")
        return None, None
    try:
        return mode, parse(rule)
    except DeviceFilterError as exc:
        r.error(f"{fpath}.rule", f"invalid {noun} rule: {exc}")
        return None, None


def _devices(raw: Mapping[str, Any], r: Reader, path: str) -> DeviceCondition:
    obj = r.obj(raw.get("devices"), f"{path}.devices") or {}
    legacy = r.obj(raw.get("deviceStates"), f"{path}.deviceStates") or {}
    include_states = set(r.enums(obj, "includeDeviceStates", f"{path}.devices", v.DEVICE_STATES))
    exclude_states = set(r.enums(obj, "excludeDeviceStates", f"{path}.devices", v.DEVICE_STATES))
    include_states |= r.enums(legacy, "includeStates", f"{path}.deviceStates", v.DEVICE_STATES)
    exclude_states |= r.enums(legacy, "excludeStates", f"{path}.deviceStates", v.DEVICE_STATES)
    # The deprecated includeDevices / excludeDevices lists held the same values.
    include_states |= r.enums(obj, "includeDevices", f"{path}.devices", v.DEVICE_STATES)
    exclude_states |= r.enums(obj, "excludeDevices", f"{path}.devices", v.DEVICE_STATES)
    mode, device_filter = _filter(obj, "deviceFilter", r, f"{path}.devices", parse_device_filter)
    for operator in device_filter.extensions if device_filter is not None else ():
        r.warn(
            f"{path}.devices.deviceFilter.rule",
            f"{operator} is not an operator Entra documents for device filters: "
            "pdp evaluates it (RE2 syntax), Entra may refuse the rule",
        )
    return DeviceCondition(
        filter_mode=mode,
        filter=device_filter,
        include_states=frozenset(include_states),
        exclude_states=frozenset(exclude_states),
    )


def _grant(
    raw: Any, r: Reader, path: str, inline_strengths: dict[str, AuthenticationStrength]
) -> GrantControls | None:
    obj = r.obj(raw, path)
    if obj is None:
        return None
    controls: list[str] = []
    block = False
    retired = False
    for i, name in enumerate(r.strings(obj, "builtInControls", path)):
        canonical = v.BUILT_IN_CONTROLS.get(name.lower())
        if canonical == "block":
            block = True
        elif canonical in v.RETIRED_CONTROLS:
            r.warn(f"{path}.builtInControls[{i}]", v.RETIRED_CONTROLS[canonical])
            retired = True
        elif canonical is not None:
            controls.append(canonical)
        elif name.lower() != "unknownfuturevalue":
            r.warn(
                f"{path}.builtInControls[{i}]",
                f"unknown grant control {name!r}: unmet unless the gateway lists it in "
                "satisfied_controls",
            )
            controls.append(name)
    order = list(v.BUILT_IN_CONTROLS.values())
    controls.sort(key=lambda c: order.index(c) if c in order else len(order))
    strength = r.obj(obj.get("authenticationStrength"), f"{path}.authenticationStrength")
    if strength is not None:
        strength_id = _strength_ref(strength, r, f"{path}.authenticationStrength", inline_strengths)
        if strength_id:
            controls.append(f"authenticationStrength:{strength_id}")
    for i, terms in enumerate(r.strings(obj, "termsOfUse", path)):
        r.check_id(terms, f"{path}.termsOfUse[{i}]", fails_closed=True)
        controls.append(f"termsOfUse:{terms}")
    controls += r.strings(obj, "customAuthenticationFactors", path)
    operator = r.enum(obj, "operator", path, v.GRANT_OPERATORS) or "AND"
    if not controls and not block:
        if configured(obj.get("operator")) and not retired:
            r.warn(path, "grantControls has an operator but no controls: ignored")
        return None
    return GrantControls(operator=operator, controls=tuple(dict.fromkeys(controls)), block=block)


def _strength_ref(
    obj: Mapping[str, Any],
    r: Reader,
    path: str,
    inline_strengths: dict[str, AuthenticationStrength],
) -> str | None:
    strength_id = r.string(obj, "id", path)
    if not strength_id:
        r.error(f"{path}.id", "an authentication strength reference needs an id")
        return None
    r.check_id(strength_id, f"{path}.id")
    strength_id = strength_id.lower()
    combinations = r.strings(obj, "allowedCombinations", path)
    if combinations and strength_id not in v.BUILT_IN_STRENGTHS:
        # Exports embed the whole authenticationStrengthPolicy: it defines the strength.
        inline_strengths[strength_id] = AuthenticationStrength(
            id=strength_id,
            display_name=r.string(obj, "displayName", path) or strength_id,
            combinations=tuple(frozenset(p.strip() for p in c.split(",")) for c in combinations),
        )
    return strength_id


def _session(raw: Any, r: Reader, path: str) -> SessionControls:
    obj = r.obj(raw, path)
    if obj is None:
        return SessionControls()
    frequency, secondary_only = _sign_in_frequency(obj, r, f"{path}.signInFrequency")
    return SessionControls(
        sign_in_frequency=frequency,
        secondary_authentication_only=secondary_only,
        persistent_browser=_enabled_enum(
            obj, "persistentBrowser", "mode", r, path, v.PERSISTENT_BROWSER_MODES
        ),
        application_enforced_restrictions=_enabled(obj, "applicationEnforcedRestrictions", r, path),
        cloud_app_security=_enabled_enum(
            obj, "cloudAppSecurity", "cloudAppSecurityType", r, path, v.CLOUD_APP_SECURITY_TYPES
        ),
        continuous_access_evaluation=_cae(obj, r, path),
        secure_sign_in_session=_enabled(obj, "secureSignInSession", r, path),
        disable_resilience_defaults=r.boolean(obj, "disableResilienceDefaults", path, False),
    )


def _enabled(obj: Mapping[str, Any], key: str, r: Reader, path: str) -> bool:
    sub = r.obj(obj.get(key), f"{path}.{key}")
    return sub is not None and r.boolean(sub, "isEnabled", f"{path}.{key}", True)


def _enabled_enum(  # noqa: PLR0917 - private helper, called with the same shape each time
    obj: Mapping[str, Any],
    key: str,
    field: str,
    r: Reader,
    path: str,
    vocabulary: Mapping[str, str],
) -> str | None:
    if not _enabled(obj, key, r, path):
        return None
    sub = obj[key]
    value = r.enum(sub, field, f"{path}.{key}", vocabulary)
    if value is None and sub.get(field) is None:
        r.error(f"{path}.{key}.{field}", f"missing: an enabled {key} needs a {field}")
    return value


def _cae(obj: Mapping[str, Any], r: Reader, path: str) -> str | None:
    sub = r.obj(obj.get("continuousAccessEvaluation"), f"{path}.continuousAccessEvaluation")
    if sub is None:
        return None
    return r.enum(sub, "mode", f"{path}.continuousAccessEvaluation", v.CAE_MODES)


def _sign_in_frequency(obj: Mapping[str, Any], r: Reader, path: str) -> tuple[int | None, bool]:
    """The frequency (seconds or EVERY_TIME) and whether it asks for the second factor only."""
    sub = r.obj(obj.get("signInFrequency"), path)
    if sub is None or not r.boolean(sub, "isEnabled", path, True):
        return None, False
    interval = r.enum(
        sub, "frequencyInterval", path, {"timebased": "timeBased", "everytime": "everyTime"}
    )
    kind = r.enum(sub, "authenticationType", path, v.SIGN_IN_FREQUENCY_AUTHENTICATION_TYPES)
    secondary_only = kind == "secondaryAuthentication"
    if interval == "everyTime":
        return EVERY_TIME, secondary_only
    value = sub.get("value")
    unit = r.enum(sub, "type", path, {"hours": "hours", "days": "days"})
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or unit is None:
        r.error(
            path,
            "a time-based sign-in frequency needs a positive integer value and a type "
            "(hours or days)",
        )
        return None, False
    return value * v.SIGN_IN_FREQUENCY_UNITS[unit], secondary_only
