"""FROZEN COPY for parity tests: the pre-domain-values implementation; never change it.

The record and metrics as built from protobuf messages before the decision path moved to
domain values; tests/observability/test_parity.py compares the new implementation with it.

The audit record: one decision as one JSON line shaped like an Entra sign-in log entry.

Field names follow Microsoft Graph's signIn resource (`createdDateTime`, `userId`,
`appId`, `ipAddress`, `location`, `deviceDetail`, `clientAppUsed`,
`conditionalAccessStatus`, `status`, `riskLevelDuringSignIn`,
`appliedConditionalAccessPolicies`), so tools that read sign-in logs read these too; pdp
adds `decision`, `requirements`, `riskDetections`, `riskDegraded`, `policyVersion` and
`latencyMs`. A call that failed or was cancelled has no decision: its record says why in
`status` and keeps what the request said. The line is built on the event loop from the
request and response messages (a dict, one `json.dumps`, and the policies' part reused
from earlier calls with the same outcome); `AuditLog` writes it.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Mapping
from typing import Any, Final

from pdp.server.convert_in import RISK_LEVELS
from pdp.v1 import pdp_pb2 as pb

DECISIONS: Final[Mapping[int, str]] = {
    pb.DECISION_ALLOW: "allow",
    pb.DECISION_CHALLENGE: "challenge",
    pb.DECISION_DENY: "deny",
}
RESULTS: Final[Mapping[int, str]] = {  # Graph appliedConditionalAccessPolicyResult
    pb.POLICY_RESULT_SUCCESS: "success",
    pb.POLICY_RESULT_FAILURE: "failure",
    pb.POLICY_RESULT_NOT_APPLIED: "notApplied",
    pb.POLICY_RESULT_NOT_ENABLED: "notEnabled",
    pb.POLICY_RESULT_REPORT_ONLY_SUCCESS: "reportOnlySuccess",
    pb.POLICY_RESULT_REPORT_ONLY_FAILURE: "reportOnlyFailure",
    pb.POLICY_RESULT_REPORT_ONLY_NOT_APPLIED: "reportOnlyNotApplied",
    pb.POLICY_RESULT_REPORT_ONLY_INTERRUPTED: "reportOnlyInterrupted",
}
NOT_APPLIED_RESULTS: Final = frozenset(
    {
        pb.POLICY_RESULT_NOT_APPLIED,
        pb.POLICY_RESULT_NOT_ENABLED,
        pb.POLICY_RESULT_REPORT_ONLY_NOT_APPLIED,
    }
)
CLIENT_APPS: Final[Mapping[int, str]] = {  # the signIn clientAppUsed spellings
    pb.CLIENT_APP_TYPE_BROWSER: "Browser",
    pb.CLIENT_APP_TYPE_MOBILE_APPS_AND_DESKTOP_CLIENTS: "Mobile Apps and Desktop clients",
    pb.CLIENT_APP_TYPE_EXCHANGE_ACTIVE_SYNC: "Exchange ActiveSync",
    pb.CLIENT_APP_TYPE_OTHER: "Other clients",
}
OPERATING_SYSTEMS: Final[Mapping[int, str]] = {
    pb.PLATFORM_ANDROID: "Android",
    pb.PLATFORM_IOS: "iOS",
    pb.PLATFORM_WINDOWS: "Windows",
    pb.PLATFORM_WINDOWS_PHONE: "Windows Phone",
    pb.PLATFORM_MACOS: "macOS",
    pb.PLATFORM_LINUX: "Linux",
}
TRUST_TYPES: Final[Mapping[int, str]] = {  # the signIn deviceDetail.trustType spellings
    pb.TRUST_TYPE_AZURE_AD: "Azure AD joined",
    pb.TRUST_TYPE_SERVER_AD: "Hybrid Azure AD joined",
    pb.TRUST_TYPE_WORKPLACE: "Azure AD registered",
}


class _Clock:
    """ISO 8601 UTC times with milliseconds; the seconds part formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, when: float) -> str:
        second = int(when)
        if second != self._second:
            self._second, self._prefix = (
                second,
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)),
            )
        return f"{self._prefix}.{int((when - second) * 1000):03d}Z"


_clock = _Clock()


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


def audit_line(
    request: pb.EvaluateRequest,
    response: pb.EvaluateResponse | None,
    *,
    created: float,
    latency_s: float,
    failure: tuple[int, str] | None = None,
    hide_ip: bool = False,
) -> str:
    """The JSON line (newline-terminated) for one call.

    `failure` is (gRPC status code number, pdp error code) for a call that got no decision.
    `hide_ip` truncates every IP address in the record (`truncate_ip`).
    """
    network, device = request.network, request.device
    ip = truncate_ip(network.ip_address) if hide_ip else network.ip_address
    record: dict[str, Any] = {
        "createdDateTime": _clock.iso(created),
        "id": response.request_id if response is not None else request.request_id,
        "userId": request.subject.user_id,
        "servicePrincipalId": request.subject.service_principal_id,
        "appId": request.target.application_id,
        "ipAddress": ip,
        "location": _location(request, response),
        "deviceDetail": {
            "deviceId": device.device_id,
            "operatingSystem": OPERATING_SYSTEMS.get(device.platform, ""),
            "isCompliant": device.compliant,
            "trustType": TRUST_TYPES.get(device.trust_type, ""),
        },
        "clientAppUsed": CLIENT_APPS.get(request.client_app_type, ""),
    }
    if response is None:
        code, reason = failure or (2, "internal")  # 2: gRPC UNKNOWN
        record["status"] = {"errorCode": code, "failureReason": reason}
        record["conditionalAccessStatus"] = "notApplied"
        record["decision"] = ""
        tail = ""
    else:
        policies, ca_status = _policies_json(response)
        risk = response.risk
        record["status"] = {"errorCode": 0}
        record["conditionalAccessStatus"] = ca_status
        record["decision"] = DECISIONS.get(response.decision, "")
        record["requirements"] = [
            {"anyOf": list(r.any_of), "policyIds": list(r.policy_ids)}
            for r in response.requirements
        ]
        record["riskDetections"] = [_detection(d, hide_ip) for d in risk.detections]
        record["riskLevelDuringSignIn"] = RISK_LEVELS.get(risk.effective_sign_in, "none")
        record["riskDegraded"] = risk.degraded
        version = _dumps(response.policy_version)
        tail = f',"appliedConditionalAccessPolicies":{policies},"policyVersion":{version}'
    head = _dumps(record)[:-1]  # the object without its closing brace
    return f'{head}{tail},"latencyMs":{round(latency_s * 1000, 3)!r}}}\n'


class _PolicyFragments:
    """`appliedConditionalAccessPolicies` as JSON text, built once per policy set and outcome.

    Within one policy set a policy id and result always give the same entry, so the text
    is keyed on (version, (id, result) of each policy) and reused; bounded, then cleared.
    """

    LIMIT: Final = 4096

    def __init__(self) -> None:
        self._built: dict[tuple[str, tuple[tuple[str, int], ...]], tuple[str, str]] = {}

    def __call__(self, response: pb.EvaluateResponse) -> tuple[str, str]:
        """(the JSON array, the conditionalAccessStatus) of `response`'s policies."""
        policies = response.policies
        key = (response.policy_version, tuple((p.id, p.result) for p in policies))
        built = self._built.get(key)
        if built is None:
            if len(self._built) >= self.LIMIT:
                self._built.clear()
            built = self._built[key] = _build_policies(policies)
        return built


def _build_policies(policies: Any) -> tuple[str, str]:
    entries = []
    ca_status = "notApplied"  # Graph: failure if an enforced policy failed, success if one held
    for p in policies:
        result = p.result
        if result == pb.POLICY_RESULT_FAILURE:
            ca_status = "failure"
        elif result == pb.POLICY_RESULT_SUCCESS and ca_status == "notApplied":
            ca_status = "success"
        applied = result not in NOT_APPLIED_RESULTS
        entries.append(
            {
                "id": p.id,
                "displayName": p.display_name,
                "result": RESULTS.get(result, ""),
                "enforcedGrantControls": list(p.grant_controls) if applied else [],
                "enforcedSessionControls": list(p.session_controls) if applied else [],
            }
        )
    return _dumps(entries), ca_status


_policies_json = _PolicyFragments()


_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_dumps = _ENCODER.encode  # built once: json.dumps with options builds an encoder per call


def _location(request: pb.EvaluateRequest, response: pb.EvaluateResponse | None) -> dict[str, Any]:
    """The gateway's geo when it sent one, else where pdp's risk detection placed the sign-in."""
    geo = request.network.geo
    if request.network.HasField("geo"):
        place: dict[str, Any] = {"countryOrRegion": geo.country}
        if geo.HasField("latitude") and geo.HasField("longitude"):
            place["geoCoordinates"] = {"latitude": geo.latitude, "longitude": geo.longitude}
        return place
    if response is not None:
        for detection in response.risk.detections:
            if detection.HasField("current"):
                current = detection.current
                return {
                    "countryOrRegion": current.country,
                    "geoCoordinates": {
                        "latitude": current.latitude,
                        "longitude": current.longitude,
                    },
                }
    return {}


def _detection(detection: pb.RiskDetection, hide_ip: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "riskEventType": detection.kind,
        "riskLevel": RISK_LEVELS.get(detection.level, "none"),
        "distanceKm": round(detection.distance_km, 1),
        "speedKmh": round(detection.speed_kmh, 1),
    }
    for name in ("previous", "current"):
        if detection.HasField(name):
            place: pb.SignInPlace = getattr(detection, name)
            out[name] = {
                "time": place.time.ToJsonString(),
                "countryOrRegion": place.country,
                "latitude": place.latitude,
                "longitude": place.longitude,
                "ipAddress": truncate_ip(place.ip_address) if hide_ip else place.ip_address,
            }
    return out
