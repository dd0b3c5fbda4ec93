"""One scenario, two doors: Check and Evaluate on the same server decide the same way."""

from __future__ import annotations

from typing import Any

import pytest
from envoy_requests import (
    ADA,
    DEV_APP,
    DEV_HOST,
    ENGINEERS,
    HOME,
    OFFICE,
    PIPELINE,
    PROD_APP,
    PROD_HOST,
    RUNNER,
    Stubs,
    engineer_claims,
    envoy_check,
    pipeline_claims,
    run,
)
from google.protobuf import json_format

from pdp.gateway.config import GatewayConfig
from pdp.v1 import pdp_pb2 as pb

LAPTOP = {
    "deviceId": "laptop-0042",
    "platform": "PLATFORM_MACOS",
    "compliant": True,
    "trustType": "TRUST_TYPE_AZURE_AD",
}
NO_DEVICE = {"x-device-id": "", "x-device-compliant": "", "x-device-trust-type": ""}


def engineer(app: str, ip: str, methods: list[str], controls: list[str]) -> dict[str, Any]:
    """The EvaluateRequest (proto3 JSON) a gateway calling Evaluate would send for Ada."""
    return {
        "subject": {"userId": ADA, "groupIds": [ENGINEERS]},
        "target": {"applicationId": app},
        "network": {"ipAddress": ip},
        "device": LAPTOP,
        "clientAppType": "CLIENT_APP_TYPE_BROWSER",
        "authentication": {"methods": methods, "satisfiedControls": controls},
    }


SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "allow_prod_from_office": (
        {"host": PROD_HOST, "client": OFFICE, "claims": engineer_claims()},
        engineer(PROD_APP, OFFICE, ["password"], ["mfa"]),
    ),
    "challenge_dev_from_home_password_only": (
        {"host": DEV_HOST, "client": HOME, "claims": engineer_claims(amr=("pwd",))},
        engineer(DEV_APP, HOME, ["password"], []),
    ),
    "deny_prod_from_home": (
        {"host": PROD_HOST, "client": HOME, "claims": engineer_claims(amr=("pwd", "fido"))},
        engineer(PROD_APP, HOME, ["password", "fido2"], []),
    ),
    "deny_unmanaged_device": (
        {
            "host": DEV_HOST,
            "client": OFFICE,
            "claims": engineer_claims(),
            "headers": {**NO_DEVICE, "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"},
        },
        {
            **engineer(DEV_APP, OFFICE, ["password"], ["mfa"]),
            "device": {"platform": "PLATFORM_LINUX"},
        },
    ),
    "allow_pipeline_from_runner": (
        {"host": PROD_HOST, "client": RUNNER, "claims": pipeline_claims(), "headers": NO_DEVICE},
        {
            "subject": {"servicePrincipalId": PIPELINE},
            "target": {"applicationId": PROD_APP},
            "network": {"ipAddress": RUNNER},
            "device": {"platform": "PLATFORM_MACOS"},
            "clientAppType": "CLIENT_APP_TYPE_BROWSER",
        },
    ),
    "deny_pipeline_from_office": (
        {"host": PROD_HOST, "client": OFFICE, "claims": pipeline_claims(), "headers": NO_DEVICE},
        {
            "subject": {"servicePrincipalId": PIPELINE},
            "target": {"applicationId": PROD_APP},
            "network": {"ipAddress": OFFICE},
            "device": {"platform": "PLATFORM_MACOS"},
            "clientAppType": "CLIENT_APP_TYPE_BROWSER",
        },
    ),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_check_and_evaluate_agree(config: GatewayConfig, name: str) -> None:
    """Decision, requirements, session max age and policy version agree for the scenario."""
    check_kwargs, evaluate_json = SCENARIOS[name]
    check_request = envoy_check(**check_kwargs)
    evaluate_request = json_format.ParseDict(evaluate_json, pb.EvaluateRequest())

    async def both(stubs: Stubs) -> tuple[Any, pb.EvaluateResponse]:
        checked = await stubs.check.Check(check_request, timeout=10)
        evaluated = await stubs.evaluate.Evaluate(evaluate_request, timeout=10)
        return checked, evaluated

    checked, evaluated = run(config, both)
    meta = json_format.MessageToDict(checked.dynamic_metadata)
    assert meta["pdp_decision"] == name.split("_", maxsplit=1)[0]
    assert meta["pdp_decision"] == pb.Decision.Name(evaluated.decision).lower().split("_")[1]
    assert meta.get("pdp_requirements", []) == [
        " or ".join(r.any_of) for r in evaluated.requirements
    ]
    assert meta["pdp_policy_version"] == evaluated.policy_version
    frequency = evaluated.session.sign_in_frequency
    expected_age = frequency.period.seconds if frequency.HasField("period") else None
    assert meta.get("pdp_session_max_age") == expected_age
