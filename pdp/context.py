"""The sign-in context: one request as the engine sees it, already validated and normalised.

The transport builds it from an EvaluateRequest (`pdp.server.convert_in`); scenario files
and benchmarks build it the same way. Ids are lower-cased (Graph ids are case-insensitive
GUIDs), enums are the canonical Graph spellings with "" for unknown, and times are epoch
seconds. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(slots=True)
class ContentMemo:
    """Room for what the engine works out from a sign-in's content, shared by its repeats.

    A way in that recognises content it has mapped before (the gRPC API's memo) hands every
    context with that content the same ContentMemo; the engine keeps there, per policy set
    and effective sign-in risk, what depends on the content alone (which policies apply and
    which of their requirements the sign-in misses), and works out only what depends on the
    time again. Contexts built fresh have none, and the engine then works everything out.
    """

    compiled: object = None  # the policy set the entries belong to
    entries: dict[str, tuple[int, int, int, bool, int]] = field(default_factory=dict)


@dataclass(slots=True)
class SignInContext:
    """Who signs in to what, from where, on what device, how authenticated, how risky.

    Treated as immutable once built (use `dataclasses.replace` to derive another). It is not
    declared frozen only because a frozen dataclass of this width costs microseconds per
    request to construct.
    """

    request_id: str
    time: float  # epoch seconds of the sign-in
    # who
    user_id: str = ""
    group_ids: frozenset[str] = frozenset()
    role_ids: frozenset[str] = frozenset()
    # The way in could not list every membership (a token's group overage, or a membership
    # claim the token does not carry): group_ids / role_ids hold only those known. A policy
    # that includes some group (role) then applies, and one that excludes groups (roles)
    # excludes only for a known membership, so that doubt makes policies apply, not lapse.
    groups_unknown: bool = False
    roles_unknown: bool = False
    guest: bool = False
    guest_type: str = ""  # a guestOrExternalUserTypes member, "" when not known
    home_tenant_id: str = ""  # the guest's home tenant, "" when not known
    service_principal_id: str = ""  # set for workload identities (then no user fields)
    # what
    application_id: str = ""
    user_action: str = ""
    authentication_contexts: frozenset[str] = frozenset()
    # Custom security attributes of the target application, for application filters (see
    # pdp.policy.application_filter): "set_attribute" lower-cased -> value(s); absent = null.
    application_attributes: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)
    # from where
    ip_address: str = ""  # normalised text form, "" when not given
    ip_value: int | None = None  # the address as an integer (IPv4-mapped IPv6 unwrapped)
    ip_version: int = 0  # 4, 6 or 0
    country: str = ""  # ISO 3166 alpha-2, upper-case; "" when unknown
    latitude: float | None = None
    longitude: float | None = None
    accuracy_radius_km: float | None = None
    compliant_network: bool = False  # arrived through the tenant's compliant network
    # on what device
    device_id: str = ""
    platform: str = ""  # one of vocabulary.PLATFORMS, "" when unknown
    compliant: bool = False
    trust_type: str = ""  # one of vocabulary.TRUST_TYPES, "" when not registered
    # Device filter properties, keys lower-cased (see pdp.policy.device_filter); absent = null.
    device_properties: Mapping[str, str] = field(default_factory=dict)
    client_app_type: str = ""  # one of vocabulary.CLIENT_APP_TYPES, "" when unknown
    # how authenticated
    methods: frozenset[str] = frozenset()
    authenticated_at: float | None = None  # epoch seconds of the last interactive sign-in
    secondary_authenticated_at: float | None = None  # of the last second factor (None: unknown)
    satisfied_controls: frozenset[str] = frozenset()
    flow: str = ""  # one of vocabulary.FLOWS, "" when none
    # how risky (upstream)
    sign_in_risk: str = "none"
    user_risk: str = "none"
    service_principal_risk: str = "none"
    insider_risk: str = "none"
    explain: bool = False
    # Engine-owned room shared by contexts of the same content (not part of the sign-in).
    memo: ContentMemo | None = field(default=None, compare=False, repr=False)

    @property
    def is_workload(self) -> bool:
        """Whether this is a workload-identity (service principal) sign-in."""
        return bool(self.service_principal_id)
