"""The audit record: one decision as one JSON line shaped like an Entra sign-in log entry.

Field names follow Microsoft Graph's signIn resource (`createdDateTime`, `userId`,
`appId`, `ipAddress`, `location`, `deviceDetail`, `clientAppUsed`,
`conditionalAccessStatus`, `status`, `riskLevelDuringSignIn`,
`appliedConditionalAccessPolicies`), so tools that read sign-in logs read these too; pdp
adds `decision`, `requirements`, `riskDetections`, `riskDegraded`, `policyVersion` and
`latencyMs`, and `membershipUnknown` (`["groups"]`, `["roles"]` or both) when the way in
could not know the user's groups or roles (a token's group overage), so the record says
why group-scoped policies applied. The record is built from domain values, the sign-in
(`SignInContext`) and the `Decision`, so every way in is audited alike by construction.
A call that failed or was cancelled has no decision: its record says why in `status`, and
the sign-in is whatever the way in could read of the request
(`pdp.observability.decisions.Call.signin`).

`AuditLine` builds lines; it runs on the audit writer's thread, off the request path, and
keeps the text of parts that repeat (the policies' part per decision, the device's per
device) so that a busy server formats little.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from typing import Any, Final

from google.protobuf.timestamp_pb2 import Timestamp

from pdp.context import SignInContext
from pdp.engine.decision import Decision, PolicyOutcome, Result
from pdp.errors import STATUS_NUMBERS, ErrorCode
from pdp.risk.assessment import Detection, Place
from pdp.vocabulary import CLIENT_APP_USED, OPERATING_SYSTEMS, TRUST_TYPE_NAMES

NOT_APPLIED_RESULTS: Final = frozenset(
    {Result.NOT_APPLIED, Result.NOT_ENABLED, Result.REPORT_ONLY_NOT_APPLIED}
)
_CACHE_LIMIT: Final = 4096
# allow_nan=False: a number that is not finite is written as null by the code below, and
# this encoder refuses any that slipped through rather than write a line that is not JSON.
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_dumps = _ENCODER.encode  # built once: json.dumps with options builds an encoder per call


def truncate_ip(text: str) -> str:
    """An IPv4 address as its /24 network address, IPv6 as its /48; "" when not an address."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return ""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        else:
            return str(ipaddress.IPv6Network((address, 48), strict=False).network_address)
    return str(ipaddress.IPv4Network((address, 24), strict=False).network_address)


class AuditLine:
    """Formats audit lines; one per writer (not thread-safe: it keeps text it has built)."""

    def __init__(self, *, hide_ip: bool = False) -> None:
        self._hide_ip = hide_ip
        self._second = -1
        self._second_text = ""
        # id(policies) -> (the policies tuple, its JSON array, conditionalAccessStatus).
        # The engine hands out the same tuple for the same outcome, so identity is the key;
        # the tuple is kept, so its id cannot be reused while the entry lives.
        self._policies: dict[int, tuple[tuple[PolicyOutcome, ...], str, str]] = {}
        # The text of the record's parts that repeat, for calls with a decision and no risk
        # detection: what the sign-in says (keyed by its ContentMemo, or by the fields), and
        # what the decision says (keyed by the identity of the engine's outcome objects).
        self._signins: dict[object, tuple[object, str]] = {}
        self._outcomes: dict[tuple[object, ...], tuple[Decision, str]] = {}

    def __call__(
        self,
        ctx: SignInContext,
        decision: Decision | None,
        *,
        created: float,
        latency_s: float,
        failure: ErrorCode | None = None,
    ) -> str:
        """The JSON line (newline-terminated) for one call.

        `failure` says why a call got no decision (`decision` is then None).
        """
        if decision is not None and not decision.risk.detections and math.isfinite(latency_s):
            return self._repeated(ctx, decision, created, latency_s)
        record: dict[str, Any] = {
            "createdDateTime": self._iso(created),
            "id": ctx.request_id,
            **self._signin(ctx, decision),
        }
        if decision is None:
            code = failure or ErrorCode.INTERNAL
            record["status"] = {"errorCode": STATUS_NUMBERS[code], "failureReason": code.value}
            record["conditionalAccessStatus"] = "notApplied"
            record["decision"] = ""
            tail = ""
        else:
            policies, ca_status = self._policies_json(decision.policies)
            risk = decision.risk
            record["status"] = {"errorCode": 0}
            record["conditionalAccessStatus"] = ca_status
            record["decision"] = decision.verdict.value
            record["requirements"] = [
                {"anyOf": list(r.any_of), "policyIds": list(r.policy_ids)}
                for r in decision.requirements
            ]
            record["riskDetections"] = [self._detection(d) for d in risk.detections]
            record["riskLevelDuringSignIn"] = decision.sign_in_risk
            record["riskDegraded"] = risk.degraded
            version = _dumps(decision.policy_version)
            tail = f',"appliedConditionalAccessPolicies":{policies},"policyVersion":{version}'
        head = _dumps(record)[:-1]  # the object without its closing brace
        latency = repr(round(latency_s * 1000, 3)) if math.isfinite(latency_s) else "null"
        return f'{head}{tail},"latencyMs":{latency}}}\n'

    def _repeated(
        self, ctx: SignInContext, decision: Decision, created: float, latency_s: float
    ) -> str:
        """The line of a decided call without detections, from the text of repeated parts.

        The same text `__call__`'s general path builds: a sign-in's part depends on its
        fields alone, a decision's on its outcome objects, level and version alone.
        """
        memo = ctx.memo
        key: object = (
            memo
            if memo is not None
            else (
                ctx.user_id,
                ctx.service_principal_id,
                ctx.application_id,
                ctx.ip_address,
                ctx.country,
                ctx.latitude,
                ctx.longitude,
                ctx.device_id,
                ctx.platform,
                ctx.compliant,
                ctx.trust_type,
                ctx.client_app_type,
                ctx.groups_unknown,
                ctx.roles_unknown,
            )
        )
        found = self._signins.get(id(key) if memo is not None else key)
        if found is not None and found[0] is key:
            signin = found[1]
        else:
            signin = self._signin_text(ctx)
            if len(self._signins) >= _CACHE_LIMIT:
                self._signins.clear()
            self._signins[id(key) if memo is not None else key] = (key, signin)
        outcome_key = (
            id(decision.policies),
            id(decision.requirements),
            decision.verdict,
            decision.sign_in_risk,
            decision.risk.degraded,
            decision.policy_version,
        )
        kept = self._outcomes.get(outcome_key)
        if (
            kept is not None
            and kept[0].policies is decision.policies
            and kept[0].requirements is decision.requirements
        ):
            outcome = kept[1]
        else:
            outcome = self._outcome_text(decision)
            if len(self._outcomes) >= _CACHE_LIMIT:
                self._outcomes.clear()
            self._outcomes[outcome_key] = (decision, outcome)
        latency = repr(round(latency_s * 1000, 3))
        rid = _dumps(ctx.request_id)
        return (
            f'{{"createdDateTime":"{self._iso(created)}","id":{rid},{signin},{outcome},'
            f'"latencyMs":{latency}}}\n'
        )

    def _signin_text(self, ctx: SignInContext) -> str:
        """The members from userId on, as JSON text (no detection places the sign-in)."""
        return _dumps(self._signin(ctx, None))[1:-1]

    def _signin(self, ctx: SignInContext, decision: Decision | None) -> dict[str, Any]:
        """The members from userId to clientAppUsed (and membershipUnknown when set)."""
        ip = ctx.ip_address
        if self._hide_ip and ip:
            ip = truncate_ip(ip)
        members: dict[str, Any] = {
            "userId": ctx.user_id,
            "servicePrincipalId": ctx.service_principal_id,
            "appId": ctx.application_id,
            "ipAddress": ip,
            "location": _location(ctx, decision),
            "deviceDetail": {
                "deviceId": ctx.device_id,
                "operatingSystem": OPERATING_SYSTEMS.get(ctx.platform, ""),
                "isCompliant": ctx.compliant,
                "trustType": TRUST_TYPE_NAMES.get(ctx.trust_type, ""),
            },
            "clientAppUsed": CLIENT_APP_USED.get(ctx.client_app_type, ""),
        }
        if ctx.groups_unknown or ctx.roles_unknown:
            members["membershipUnknown"] = _unknown_membership(ctx)
        return members

    def _outcome_text(self, decision: Decision) -> str:
        """The members from status to policyVersion of a decision without detections."""
        policies, ca_status = self._policies_json(decision.policies)
        members = {
            "status": {"errorCode": 0},
            "conditionalAccessStatus": ca_status,
            "decision": decision.verdict.value,
            "requirements": [
                {"anyOf": list(r.any_of), "policyIds": list(r.policy_ids)}
                for r in decision.requirements
            ],
            "riskDetections": [],
            "riskLevelDuringSignIn": decision.sign_in_risk,
            "riskDegraded": decision.risk.degraded,
        }
        version = _dumps(decision.policy_version)
        head = _dumps(members)[1:-1]
        return f'{head},"appliedConditionalAccessPolicies":{policies},"policyVersion":{version}'

    def _iso(self, when: float) -> str:
        """ISO 8601 UTC with milliseconds; the seconds part formatted once per second."""
        second = int(when)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((when - second) * 1000):03d}Z"

    def _policies_json(self, policies: tuple[PolicyOutcome, ...]) -> tuple[str, str]:
        """(the JSON array, conditionalAccessStatus) of a decision's policies."""
        cached = self._policies.get(id(policies))
        if cached is not None and cached[0] is policies:
            return cached[1], cached[2]
        entries = []
        ca_status = "notApplied"  # Graph: failure if an enforced policy failed, else success
        for p in policies:
            result = p.result
            if result is Result.FAILURE:
                ca_status = "failure"
            elif result is Result.SUCCESS and ca_status == "notApplied":
                ca_status = "success"
            applied = result not in NOT_APPLIED_RESULTS
            entries.append(
                {
                    "id": p.id,
                    "displayName": p.display_name,
                    "result": result.value,
                    "enforcedGrantControls": list(p.grant_controls) if applied else [],
                    "enforcedSessionControls": list(p.session_controls) if applied else [],
                }
            )
        text = _dumps(entries)
        if len(self._policies) >= _CACHE_LIMIT:
            self._policies.clear()
        self._policies[id(policies)] = (policies, text, ca_status)
        return text, ca_status

    def _detection(self, detection: Detection) -> dict[str, Any]:
        out: dict[str, Any] = {
            "riskEventType": detection.kind,
            "riskLevel": detection.level,
            "distanceKm": _rounded(detection.distance_km),
            "speedKmh": _rounded(detection.speed_kmh),
        }
        if detection.previous is not None:
            out["previous"] = self._place(detection.previous)
        if detection.current is not None:
            out["current"] = self._place(detection.current)
        return out

    def _place(self, place: Place) -> dict[str, Any]:
        ip = place.ip_address
        return {
            "time": _rfc3339(place.time) if math.isfinite(place.time) else None,
            "countryOrRegion": place.country,
            "latitude": _finite(place.latitude),
            "longitude": _finite(place.longitude),
            "ipAddress": truncate_ip(ip) if self._hide_ip else ip,
        }


def _location(ctx: SignInContext, decision: Decision | None) -> dict[str, Any]:
    """The gateway's geo when it sent one, else where pdp's risk detection placed the sign-in."""
    latitude, longitude = _finite(ctx.latitude), _finite(ctx.longitude)
    if ctx.country or latitude is not None or longitude is not None:
        place: dict[str, Any] = {"countryOrRegion": ctx.country}
        if latitude is not None and longitude is not None:
            place["geoCoordinates"] = {"latitude": latitude, "longitude": longitude}
        return place
    if decision is not None:
        for detection in decision.risk.detections:
            current = detection.current
            if current is not None:
                latitude, longitude = _finite(current.latitude), _finite(current.longitude)
                if latitude is None or longitude is None:
                    return {"countryOrRegion": current.country}
                return {
                    "countryOrRegion": current.country,
                    "geoCoordinates": {"latitude": latitude, "longitude": longitude},
                }
    return {}


def _finite(value: float | None) -> float | None:
    """`value` when it is a finite number, else None (JSON has no NaN or Infinity)."""
    return value if value is not None and math.isfinite(value) else None


def _rounded(value: float) -> float | None:
    return round(value, 1) if math.isfinite(value) else None


def _rfc3339(seconds: float) -> str:
    """Epoch seconds as RFC 3339, as protobuf's JSON mapping writes a Timestamp."""
    whole = math.floor(seconds)
    nanos = round((seconds - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    return Timestamp(seconds=whole, nanos=nanos).ToJsonString()


def _unknown_membership(ctx: SignInContext) -> list[str]:
    """Which memberships the way in could not know: "groups", "roles"."""
    return [
        name
        for name, unknown in (("groups", ctx.groups_unknown), ("roles", ctx.roles_unknown))
        if unknown
    ]
