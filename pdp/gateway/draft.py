"""The sign-in a CheckRequest describes, gathered part by part before it becomes a context.

`check_in` reads the route and the network, `identity` the token or identity headers, and
the configured signal sources the device, risk and geo; each writes the values it read,
already checked by `pdp.context_values` under the name of where they came from (a claim, a
header, a metadata key). `SignInDraft.context` then builds the one `SignInContext`.
"""

from __future__ import annotations

from pdp import context_values as cv
from pdp.context import SignInContext

_NO_IDS: frozenset[str] = frozenset()


class SignInDraft:
    """The values of one sign-in, set by the parts of the Check mapping that read them."""

    __slots__ = (
        "accuracy_radius_km",
        "application_id",
        "attributes",
        "authenticated_at",
        "authentication_contexts",
        "client_app_type",
        "compliant",
        "compliant_network",
        "country",
        "device_id",
        "group_ids",
        "groups_unknown",
        "guest",
        "home_tenant_id",
        "insider_risk",
        "ip",
        "latitude",
        "longitude",
        "methods",
        "platform",
        "request_id",
        "role_ids",
        "roles_unknown",
        "satisfied_controls",
        "service_principal_id",
        "service_principal_risk",
        "sign_in_risk",
        "time",
        "trust_type",
        "user_action",
        "user_id",
        "user_risk",
    )

    def __init__(self, request_id: str, time: float) -> None:
        self.request_id = request_id
        self.time = time
        self.user_id = ""
        self.group_ids = _NO_IDS
        self.role_ids = _NO_IDS
        self.groups_unknown = False
        self.roles_unknown = False
        self.guest = False
        self.home_tenant_id = ""
        self.service_principal_id = ""
        self.application_id = ""
        self.user_action = ""
        self.authentication_contexts: list[str] = []
        self.ip: cv.Address = cv.NO_ADDRESS
        self.country = ""
        self.latitude: float | None = None
        self.longitude: float | None = None
        self.accuracy_radius_km: float | None = None
        self.compliant_network = False
        self.device_id = ""
        self.platform = ""
        self.compliant = False
        self.trust_type = ""
        self.attributes: dict[str, str] = {}
        self.client_app_type = ""
        self.methods: list[str] = []
        self.authenticated_at: float | None = None
        self.satisfied_controls: list[str] = []
        self.sign_in_risk = "none"
        self.user_risk = "none"
        self.service_principal_risk = "none"
        self.insider_risk = "none"

    def context(self) -> SignInContext:
        """The SignInContext of these values; raises InvalidRequest past a list's limit."""
        ip_address, ip_value, ip_version = self.ip
        contexts = self.authentication_contexts
        methods = self.methods
        controls = self.satisfied_controls
        attributes = self.attributes
        return SignInContext(
            request_id=self.request_id,
            time=self.time,
            user_id=self.user_id,
            group_ids=self.group_ids,
            role_ids=self.role_ids,
            groups_unknown=self.groups_unknown,
            roles_unknown=self.roles_unknown,
            guest=self.guest,
            home_tenant_id=self.home_tenant_id,
            service_principal_id=self.service_principal_id,
            application_id=self.application_id,
            user_action=self.user_action,
            authentication_contexts=cv.idset(
                contexts, "authentication contexts", cv.MAX_AUTHENTICATION_CONTEXTS
            )
            if contexts
            else _NO_IDS,
            ip_address=ip_address,
            ip_value=ip_value,
            ip_version=ip_version,
            country=self.country,
            latitude=self.latitude,
            longitude=self.longitude,
            accuracy_radius_km=self.accuracy_radius_km,
            compliant_network=self.compliant_network,
            device_id=self.device_id,
            platform=self.platform,
            compliant=self.compliant,
            trust_type=self.trust_type,
            device_properties=cv.device_properties(
                attributes.items(),
                len(attributes),
                device_id=self.device_id,
                compliant=self.compliant,
                trust_type=self.trust_type,
                field="device.attributes",
            )
            if self.device_id or self.trust_type or attributes
            else {},
            client_app_type=self.client_app_type,
            methods=cv.methods(methods, "authentication methods") if methods else _NO_IDS,
            authenticated_at=self.authenticated_at,
            satisfied_controls=frozenset(
                cv.strings(controls, "satisfied controls", cv.MAX_SATISFIED_CONTROLS)
            )
            if controls
            else _NO_IDS,
            sign_in_risk=self.sign_in_risk,
            user_risk=self.user_risk,
            service_principal_risk=self.service_principal_risk,
            insider_risk=self.insider_risk,
        )

    def described(self) -> SignInContext:
        """What was read so far, unchecked, for the audit record of a refused request."""
        return SignInContext(
            request_id=self.request_id,
            time=self.time,
            user_id=cv.clip(self.user_id),
            service_principal_id=cv.clip(self.service_principal_id),
            application_id=cv.clip(self.application_id),
            ip_address=self.ip[0],
            device_id=cv.clip(self.device_id),
            platform=self.platform,
            compliant=self.compliant,
            trust_type=self.trust_type,
            client_app_type=self.client_app_type,
        )
