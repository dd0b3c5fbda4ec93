"""The Graph properties pdp knows, per resource type, and the check of a document against them.

Graph refuses a property it does not define, so does pdp: a misspelled field
(``includeGroup``, ``builtinControls``) would otherwise be ignored and its policy would
silently never do what it says. Every property of `conditionalAccessPolicy` and its
sub-types (Graph v1.0 and beta, plus the beta-only fields real exports carry), of the named
locations and of `authenticationStrengthPolicy` is listed here, whether pdp evaluates it or
not; what pdp makes of each is the parser's business.

The rule, applied to every object the schema describes:

- an OData annotation (``@odata.type``, ``includeUsers@odata.type``, ``@odata.id``) or an
  action link (``#microsoft.graph.restore``) is not a property: always accepted;
- an unknown property holding a value is an error naming it, with a "did you mean" when a
  known property is close (the value would otherwise be lost);
- an unknown property holding nothing (null, ``[]``, ``{}``, ``""``, false) is a warning:
  nothing is lost, and exports from a newer Graph beta keep loading.

Some beta sub-types have no published schema (agent identities, Global Secure Access traffic
profiles, the deprecated ``times`` and ``clients``): they are *opaque*, accepted with any
content, and pdp treats them as conditions it cannot evaluate.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pdp.policy.diagnostics import key_path, quote
from pdp.policy.reader import Reader, configured, is_annotation


@dataclass(frozen=True, slots=True)
class GraphType:
    """A Graph complex type: its name and its properties.

    A property maps to the `GraphType` of its value when that value is an object pdp checks
    further, to `ListOf` for a collection of such objects, and to None for a primitive, a
    collection of primitives, or an opaque object.
    """

    name: str
    properties: Mapping[str, GraphType | ListOf | None]


@dataclass(frozen=True, slots=True)
class ListOf:
    """A collection of objects of one complex type."""

    item: GraphType


def _type(name: str, *leaves: str, **children: GraphType | ListOf | None) -> GraphType:
    return GraphType(name, {**dict.fromkeys(leaves), **children})


_ENTITY = ("id", "createdDateTime", "modifiedDateTime", "deletedDateTime", "displayName")
_FILTER = _type("conditionalAccessFilter", "mode", "rule")
_GUESTS = _type(
    "conditionalAccessGuestsOrExternalUsers",
    "guestOrExternalUserTypes",
    externalTenants=_type("conditionalAccessExternalTenants", "membershipKind", "members"),
)
_USERS = _type(
    "conditionalAccessUsers",
    "includeUsers",
    "excludeUsers",
    "includeGroups",
    "excludeGroups",
    "includeRoles",
    "excludeRoles",
    includeGuestsOrExternalUsers=_GUESTS,
    excludeGuestsOrExternalUsers=_GUESTS,
)
_APPLICATIONS = _type(
    "conditionalAccessApplications",
    "includeApplications",
    "excludeApplications",
    "includeUserActions",
    "includeAuthenticationContextClassReferences",
    "networkAccess",  # beta, opaque: Global Secure Access traffic profiles
    "globalSecureAccess",  # beta, opaque
    applicationFilter=_FILTER,
)
_CLIENT_APPLICATIONS = _type(
    "conditionalAccessClientApplications",
    "includeServicePrincipals",
    "excludeServicePrincipals",
    "includeAgentIdServicePrincipals",  # beta
    "excludeAgentIdServicePrincipals",  # beta
    servicePrincipalFilter=_FILTER,
    agentIdServicePrincipalFilter=_FILTER,  # beta
)
_CONDITIONS = _type(
    "conditionalAccessConditionSet",
    "clientAppTypes",
    "signInRiskLevels",
    "userRiskLevels",
    "servicePrincipalRiskLevels",
    "insiderRiskLevels",
    "agentIdRiskLevels",  # beta
    "agents",  # beta, opaque: agent identities
    "agentContext",  # beta, opaque
    "times",  # deprecated beta, opaque
    "clients",  # deprecated beta, opaque
    users=_USERS,
    applications=_APPLICATIONS,
    clientApplications=_CLIENT_APPLICATIONS,
    devices=_type(
        "conditionalAccessDevices",
        "includeDeviceStates",
        "excludeDeviceStates",
        "includeDevices",
        "excludeDevices",
        deviceFilter=_FILTER,
    ),
    deviceStates=_type("conditionalAccessDeviceStates", "includeStates", "excludeStates"),
    locations=_type("conditionalAccessLocations", "includeLocations", "excludeLocations"),
    platforms=_type("conditionalAccessPlatforms", "includePlatforms", "excludePlatforms"),
    authenticationFlows=_type("conditionalAccessAuthenticationFlows", "transferMethods"),
)
AUTHENTICATION_STRENGTH = _type(
    "authenticationStrengthPolicy",
    *_ENTITY,
    "description",
    "policyType",
    "requirementsSatisfied",
    "allowedCombinations",
    "combinationConfigurations",  # a navigation: configurations pdp does not read
)
_GRANT = _type(
    "conditionalAccessGrantControls",
    "operator",
    "builtInControls",
    "customAuthenticationFactors",
    "termsOfUse",
    authenticationStrength=AUTHENTICATION_STRENGTH,
)


def _session_control(name: str, *leaves: str) -> GraphType:
    return _type(name, "isEnabled", *leaves)


_SESSION = _type(
    "conditionalAccessSessionControls",
    "disableResilienceDefaults",
    "blockSensitiveActions",  # beta, opaque
    applicationEnforcedRestrictions=_session_control(
        "applicationEnforcedRestrictionsSessionControl"
    ),
    cloudAppSecurity=_session_control("cloudAppSecuritySessionControl", "cloudAppSecurityType"),
    continuousAccessEvaluation=_type("continuousAccessEvaluationSessionControl", "mode"),
    persistentBrowser=_session_control("persistentBrowserSessionControl", "mode"),
    secureSignInSession=_session_control("secureSignInSessionControl"),
    signInFrequency=_session_control(
        "signInFrequencySessionControl", "value", "type", "frequencyInterval", "authenticationType"
    ),
    globalSecureAccessFilteringProfile=_session_control(  # beta
        "globalSecureAccessFilteringProfileSessionControl", "profileId"
    ),
    networkAccessSecurity=_session_control(  # beta
        "networkAccessSecuritySessionControl", "policyId"
    ),
)
POLICY = _type(
    "conditionalAccessPolicy",
    *_ENTITY,
    "description",
    "state",
    "templateId",
    "partialEnablementStrategy",  # beta, opaque
    conditions=_CONDITIONS,
    grantControls=_GRANT,
    sessionControls=_SESSION,
)
IP_NAMED_LOCATION = _type(
    "ipNamedLocation",
    *_ENTITY,
    "isTrusted",
    ipRanges=ListOf(_type("ipRange", "cidrAddress")),
)
COUNTRY_NAMED_LOCATION = _type(
    "countryNamedLocation",
    *_ENTITY,
    "countriesAndRegions",
    "countryLookupMethod",
    "includeUnknownCountriesAndRegions",
)
COMPLIANT_NETWORK_NAMED_LOCATION = _type(
    "compliantNetworkNamedLocation", *_ENTITY, "compliantNetworkType", "isTrusted"
)


def check_properties(data: Mapping[str, Any], graph_type: GraphType, r: Reader) -> None:
    """Report every property of `data` (and of the objects inside) that `graph_type` lacks.

    Values of a wrong type are left to the parser, which reports them; only their names are
    checked here.
    """
    _check(data, graph_type, "$", r)


def _check(obj: Mapping[str, Any], graph_type: GraphType, path: str, r: Reader) -> None:
    properties = graph_type.properties
    for key, value in obj.items():
        if key not in properties:
            if key != "@odata.type" and isinstance(key, str) and not is_annotation(key):
                _unknown(key, value, graph_type, path, r)
            continue
        child = properties[key]
        if isinstance(child, GraphType) and isinstance(value, dict):
            _check(value, child, key_path(path, key), r)
        elif isinstance(child, ListOf) and isinstance(value, list):
            # Collections can be long (600,000 ipRanges): items with known keys only and
            # nothing nested are passed over without a call.
            item, known = child.item, child.item.properties
            simple = all(v is None for v in known.values())
            for i, element in enumerate(value):
                if isinstance(element, dict) and (
                    not simple or any(k not in known and k != "@odata.type" for k in element)
                ):
                    _check(element, item, f"{key_path(path, key)}[{i}]", r)


def _unknown(key: str, value: Any, graph_type: GraphType, path: str, r: Reader) -> None:
    where = key_path(path, key)
    message = f"unknown property {quote(key)} of {graph_type.name}{did_you_mean(key, graph_type)}"
    if configured(value):
        r.error(where, f"{message}: Graph refuses it, and its value would be lost")
    else:
        r.warn(where, f"{message}: Graph refuses it; it is empty here, so nothing is lost")


def did_you_mean(key: str, graph_type: GraphType) -> str:
    """`` (did you mean "x"?)`` naming the closest known property, or ""."""
    known = {name.lower(): name for name in graph_type.properties}
    close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    return f" (did you mean {quote(known[close[0]])}?)" if close else ""
