"""A sign-in frequency for the second factor only, as Check and forward-auth answer it.

`authenticationType: secondaryAuthentication` asks for the second factor again, not a full
sign-in, and a gateway must be able to tell the two apart: the allow carries
`x-pdp-secondary-max-age` beside `x-pdp-session-max-age`, a due second factor is a
challenge whose requirement is `secondaryReauthentication` with `secondary_max_age` in the
body (never `max_age`, which asks for a full sign-in), and the acr value configured for
`secondaryReauthentication` is asked for. Check runs on a real server; forward-auth's
answer is built from the real engine's decision.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from envoy_requests import DEV_APP, DEV_HOST, OFFICE, check_all, engineer_claims, envoy_check
from google.protobuf import json_format

from pdp.decide import Decider
from pdp.engine.decision import Decision, Verdict
from pdp.forward_auth.answer import decided
from pdp.gateway.check_in import to_context
from pdp.gateway.config import GatewayConfig
from pdp.gateway.draft import SignInDraft
from pdp.policy_store import PolicyStore

POLICY = {
    "id": "5e3a9c1f-0d2b-4e6a-8f7c-000000000501",
    "displayName": "Dev workspace asks for the second factor again every hour",
    "state": "enabled",
    "conditions": {
        "users": {"includeUsers": ["All"]},
        "applications": {"includeApplications": [DEV_APP]},
        "clientAppTypes": ["all"],
    },
    "sessionControls": {
        "signInFrequency": {
            "isEnabled": True,
            "value": 1,
            "type": "hours",
            "frequencyInterval": "timeBased",
            "authenticationType": "secondaryAuthentication",
        }
    },
}


def _store(tmp_path: Path) -> PolicyStore:
    (tmp_path / "secondary.json").write_text(json.dumps(POLICY), "utf-8")
    store = PolicyStore()
    assert not [d for d in store.load(tmp_path) if d.severity == "error"]
    return store


def _upstream(response: Any) -> dict[str, str]:
    return {o.header.key: o.header.value for o in response.ok_response.headers}


def _stepped_up(config: GatewayConfig) -> GatewayConfig:
    acr_values = {**config.step_up.acr_values, "secondaryReauthentication": "c3"}
    return dataclasses.replace(
        config, step_up=dataclasses.replace(config.step_up, acr_values=acr_values)
    )


def test_check_allows_with_the_second_factors_max_age_and_challenges_for_it_when_due(
    config: GatewayConfig, tmp_path: Path
) -> None:
    """Signed in 30 minutes ago: allowed, told 3600 s; two hours ago: the second factor again."""
    fresh = envoy_check(
        host=DEV_HOST,
        client=OFFICE,
        claims=engineer_claims(),
        headers={
            "x-pdp-secondary-max-age": "999999"  # a client's copy: overwritten
        },
    )
    due = envoy_check(host=DEV_HOST, client=OFFICE, claims=engineer_claims(signed_in_ago_s=7200))
    allowed, challenged = check_all(_stepped_up(config), fresh, due, store=_store(tmp_path))

    assert allowed.status.code == 0
    headers = _upstream(allowed)
    assert headers["x-pdp-secondary-max-age"] == "3600"
    assert "x-pdp-session-max-age" not in headers  # no full sign-in frequency in force
    assert list(allowed.ok_response.headers_to_remove) == ["x-pdp-session-max-age"]
    meta = json_format.MessageToDict(allowed.dynamic_metadata)
    assert meta["pdp_secondary_max_age"] == 3600
    assert "pdp_session_max_age" not in meta

    assert challenged.denied_response.status.code == 401
    reply = {o.header.key: o.header.value for o in challenged.denied_response.headers}
    assert reply["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", acr_values="c3"'
    )
    body = json.loads(challenged.denied_response.body)
    assert body["requirements"] == [{"any_of": ["secondaryReauthentication"]}]
    assert body["secondary_max_age"] == 3600
    assert "max_age" not in body  # a full sign-in is not what is asked for


def test_without_an_acr_value_the_challenge_says_more_recent_authentication(
    config: GatewayConfig, tmp_path: Path
) -> None:
    """No acr value configured for it: the challenge names freshness, and no max_age."""
    due = envoy_check(host=DEV_HOST, client=OFFICE, claims=engineer_claims(signed_in_ago_s=7200))
    [challenged] = check_all(config, due, store=_store(tmp_path))
    reply = {o.header.key: o.header.value for o in challenged.denied_response.headers}
    assert reply["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="More recent authentication is required"'
    )


def _decision(config: GatewayConfig, store: PolicyStore, signed_in_ago_s: float) -> Decision:
    """The engine's decision for Ada on the dev workspace, signed in `signed_in_ago_s` ago."""
    request = envoy_check(
        host=DEV_HOST, client=OFFICE, claims=engineer_claims(signed_in_ago_s=signed_in_ago_s)
    )
    ctx, _ = to_context(request, config, SignInDraft("", time.time()))
    return asyncio.run(Decider(store).decide(ctx))


def test_forward_auth_answers_alike(config: GatewayConfig, tmp_path: Path) -> None:
    """200 with x-pdp-secondary-max-age; when due, 401 with Check's challenge and body."""
    store, config = _store(tmp_path), _stepped_up(config)
    fresh, due = _decision(config, store, 1800), _decision(config, store, 7200)
    assert (fresh.verdict, due.verdict) == (Verdict.ALLOW, Verdict.CHALLENGE)

    allowed = decided(fresh, "r1", config.step_up.acr_values)
    assert allowed.status == 200
    assert allowed.headers["x-pdp-secondary-max-age"] == "3600"
    assert "x-pdp-session-max-age" not in allowed.headers

    challenged = decided(due, "r2", config.step_up.acr_values)
    assert challenged.status == 401
    assert 'acr_values="c3"' in challenged.headers["WWW-Authenticate"]
    assert challenged.text is not None
    body = json.loads(challenged.text)
    assert (body["secondary_max_age"], "max_age" in body) == (3600, False)
