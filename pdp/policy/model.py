"""The typed policy model: what a Graph document means, with its special values resolved.

These are the parsed, validated forms of the Graph resources pdp reads
(conditionalAccessPolicy, named locations, authentication strengths, pdp's own config).
Enum values are normalised to their canonical Graph spelling; ids are lower-cased, since
Graph object ids are case-insensitive GUIDs. The model says *what* a policy asks for; the
compiler (`pdp.policy.compile`) turns it into indexed structures that say *how fast*.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from netaddr import IPNetwork

from pdp.policy.application_filter import ApplicationFilter
from pdp.policy.device_filter import DeviceFilter

# Special values in users / applications / locations / service principal lists (canonical case).
ALL = "All"
NONE = "None"
GUESTS_OR_EXTERNAL_USERS = "GuestsOrExternalUsers"
ALL_TRUSTED = "AllTrusted"
SERVICE_PRINCIPALS_IN_MY_TENANT = "ServicePrincipalsInMyTenant"
EVERY_TIME = -1  # SignInFrequency.seconds for frequencyInterval everyTime


class PolicyState(enum.StrEnum):
    """Graph conditionalAccessPolicyState."""

    ENABLED = "enabled"
    DISABLED = "disabled"
    REPORT_ONLY = "enabledForReportingButNotEnforced"


class Condition(enum.StrEnum):
    """A condition of a policy, named by the Graph What-If analysis reason it fails with."""

    USERS = "users"
    WORKLOAD_IDENTITIES = "workloadIdentities"
    APPLICATION = "application"
    USER_ACTIONS = "userActions"
    AUTHENTICATION_CONTEXT = "authenticationContext"
    DEVICE_PLATFORM = "devicePlatform"
    DEVICES = "devices"
    CLIENT_APPS = "clientApps"
    LOCATION = "location"
    SIGN_IN_RISK = "signInRisk"
    USER_RISK = "userRisk"
    SERVICE_PRINCIPAL_RISK = "servicePrincipalRisk"
    INSIDER_RISK = "insiderRisk"
    AUTHENTICATION_FLOW = "authenticationFlow"


@dataclass(frozen=True, slots=True)
class GuestsOrExternalUsers:
    """conditionalAccessGuestsOrExternalUsers: which guest types from which tenants."""

    types: frozenset[str]  # guestOrExternalUserTypes members, canonical case
    tenants: frozenset[str] | None  # None: all external tenants


@dataclass(frozen=True, slots=True)
class Users:
    """conditions.users: include beats nothing, exclude beats include."""

    include_users: frozenset[str] = frozenset()  # ids (lower-case) or ALL / NONE / GUESTS...
    exclude_users: frozenset[str] = frozenset()
    include_groups: frozenset[str] = frozenset()
    exclude_groups: frozenset[str] = frozenset()
    include_roles: frozenset[str] = frozenset()
    exclude_roles: frozenset[str] = frozenset()
    include_guests: GuestsOrExternalUsers | None = None
    exclude_guests: GuestsOrExternalUsers | None = None


@dataclass(frozen=True, slots=True)
class ClientApplications:
    """conditions.clientApplications: the service principals (workload identities) in scope."""

    include_service_principals: frozenset[str] = frozenset()  # ids or SERVICE_PRINCIPALS_IN_...
    exclude_service_principals: frozenset[str] = frozenset()

    @property
    def configured(self) -> bool:
        """Whether the policy targets workload identities at all."""
        return bool(self.include_service_principals)


@dataclass(frozen=True, slots=True)
class Applications:
    """conditions.applications: target resources, user actions or authentication contexts."""

    include_applications: frozenset[str] = frozenset()  # app ids (lower-case), ALL, NONE, groups
    exclude_applications: frozenset[str] = frozenset()
    include_user_actions: frozenset[str] = frozenset()  # urn:user:... (lower-case)
    include_authentication_contexts: frozenset[str] = frozenset()  # c1..c99 (lower-case)
    filter_mode: str | None = None  # applicationFilter: "include" | "exclude"
    filter: ApplicationFilter | None = None

    @property
    def targets_apps(self) -> bool:
        """Whether the policy targets applications (by id, group, All, or an include filter)."""
        return bool(self.include_applications - {NONE}) or self.filter_mode == "include"

    @property
    def targets_anything(self) -> bool:
        """Whether any sign-in can match: an app, a user action or an authentication context."""
        return bool(
            self.targets_apps or self.include_user_actions or self.include_authentication_contexts
        )


@dataclass(frozen=True, slots=True)
class IncludeExclude:
    """A condition given as include / exclude lists of canonical values (platforms, locations)."""

    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DeviceCondition:
    """conditions.devices: a device filter, and the deprecated device states."""

    filter_mode: str | None = None  # "include" | "exclude"
    filter: DeviceFilter | None = None
    include_states: frozenset[str] = frozenset()  # deprecated: All
    exclude_states: frozenset[str] = frozenset()  # deprecated: Compliant, DomainJoined


@dataclass(frozen=True, slots=True)
class Conditions:
    """conditionalAccessConditionSet. An empty set means not configured: matches everything."""

    users: Users = field(default_factory=Users)
    client_applications: ClientApplications = field(default_factory=ClientApplications)
    applications: Applications = field(default_factory=Applications)
    platforms: IncludeExclude = field(default_factory=IncludeExclude)  # lower-case platforms
    locations: IncludeExclude = field(default_factory=IncludeExclude)  # ids, ALL, ALL_TRUSTED
    devices: DeviceCondition = field(default_factory=DeviceCondition)
    client_app_types: frozenset[str] = frozenset()  # canonical; "all" or empty = any
    sign_in_risk_levels: frozenset[str] = frozenset()
    user_risk_levels: frozenset[str] = frozenset()
    service_principal_risk_levels: frozenset[str] = frozenset()
    insider_risk_levels: frozenset[str] = frozenset()
    transfer_methods: frozenset[str] = frozenset()
    # Configured conditions pdp cannot evaluate (e.g. "times", "agents"): they are treated as
    # matching, so the policy's other conditions decide; `pdp validate` warns about each.
    unevaluable: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GrantControls:
    """conditionalAccessGrantControls, flattened into control names.

    Control names: built-in controls as Graph spells them (`mfa`, `compliantDevice`, ...),
    `authenticationStrength:<id>`, `termsOfUse:<id>`, and custom factor ids as they are.
    """

    operator: str  # "AND" | "OR"
    controls: tuple[str, ...]  # in Graph's prompting order; never contains "block"
    block: bool = False


@dataclass(frozen=True, slots=True)
class SessionControls:
    """conditionalAccessSessionControls that pdp reports to the gateway."""

    sign_in_frequency: int | None = None  # seconds, EVERY_TIME, or None
    # authenticationType secondaryAuthentication: the frequency asks for the second factor
    # only, not a full sign-in (primaryAndSecondaryAuthentication, the default)
    secondary_authentication_only: bool = False
    persistent_browser: str | None = None  # "always" | "never"
    application_enforced_restrictions: bool = False
    cloud_app_security: str | None = None
    continuous_access_evaluation: str | None = None
    secure_sign_in_session: bool = False
    disable_resilience_defaults: bool = False

    def names(self) -> tuple[str, ...]:
        """The configured session controls in sign-in log terms (enforcedSessionControls)."""
        out: list[str] = []
        if self.sign_in_frequency is not None:
            out.append("signInFrequency")
        if self.persistent_browser is not None:
            out.append("persistentBrowser")
        if self.application_enforced_restrictions:
            out.append("applicationEnforcedRestrictions")
        if self.cloud_app_security is not None:
            out.append("cloudAppSecurity")
        if self.continuous_access_evaluation is not None:
            out.append("continuousAccessEvaluation")
        if self.secure_sign_in_session:
            out.append("secureSignInSession")
        if self.disable_resilience_defaults:
            out.append("disableResilienceDefaults")
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Policy:
    """One conditionalAccessPolicy, parsed."""

    id: str
    display_name: str
    state: PolicyState
    conditions: Conditions
    grant: GrantControls | None  # None: session-only policy
    session: SessionControls
    source: str = field(compare=False)  # "file: $.path" for messages; not part of the meaning


@dataclass(frozen=True, slots=True)
class NamedLocation:
    """An ipNamedLocation, countryNamedLocation or compliantNetworkNamedLocation."""

    id: str
    display_name: str
    kind: str  # "ip" | "country" | "compliantNetwork"
    ip_ranges: tuple[IPNetwork, ...] = ()
    is_trusted: bool = False
    countries: frozenset[str] = frozenset()  # upper-case ISO 3166 alpha-2
    include_unknown_countries: bool = False


@dataclass(frozen=True, slots=True)
class AuthenticationStrength:
    """An authenticationStrengthPolicy: met when the methods used form one allowed combination."""

    id: str
    display_name: str
    combinations: tuple[frozenset[str], ...]  # each a set of authenticationMethodModes


@dataclass(frozen=True, slots=True)
class PolicySet:
    """A whole, valid policy set: what `compile` turns into the evaluator's structures."""

    policies: tuple[Policy, ...]
    locations: dict[str, NamedLocation]
    strengths: dict[str, AuthenticationStrength]
    application_groups: dict[str, frozenset[str]]  # group name (canonical) -> app ids
    version: str = field(compare=False)  # hash of the rest: pdp.policy.version
