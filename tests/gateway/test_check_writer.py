"""CheckWriter writes exactly the bytes to_check_response serializes, for every id.

Templates are kept per outcome and id length, and each call puts its id where the
placeholder was: the answers must still be byte for byte those built afresh, for allows,
challenges (with route contexts) and denials, ids of every length class, ids that JSON
would escape, and ids that look like the placeholder or like parts of the answer.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from envoy_requests import DEV_HOST, HOME, PROD_HOST, engineer_claims, envoy_check

from pdp.decide import Decider
from pdp.engine.decision import Verdict
from pdp.gateway.check_in import to_context
from pdp.gateway.check_out import CheckWriter, to_check_response
from pdp.gateway.config import load_gateway_config
from pdp.gateway.draft import SignInDraft
from pdp.policy_store import PolicyStore

ROOT = Path(__file__).resolve().parents[2]
IDS = [
    "r",
    "7f3c9a1e-0000-4000-8000-000000000001",
    "a" * 128,
    "~" * 36,  # the placeholder itself
    "-" * 36,  # the probe
    'quote"d',  # escaped in JSON: the plain path
    "back\\slash",
    "allow",  # a word the answer holds
]


@pytest.mark.parametrize("request_id", IDS)
def test_every_answer_is_the_plain_one(request_id: str) -> None:
    """Allow, challenge and deny answers, twice each (the second from a template)."""
    store = PolicyStore()
    store.load(ROOT / "examples" / "ai-workspace")
    config = load_gateway_config(ROOT / "examples" / "gateway-config.yaml")
    writer = CheckWriter(config.step_up.acr_values)
    decider = Decider(store)
    checks = [
        envoy_check(host=DEV_HOST, client=HOME, claims=engineer_claims(amr=amr), path=path)
        for amr in (("pwd",), ("pwd", "mfa"))
        for path in ("/", "/admin/")
    ]
    checks.append(envoy_check(host=PROD_HOST, client=HOME, claims=engineer_claims()))
    verdicts = set()

    async def run() -> None:
        for check in checks * 2:
            translation = to_context(check, config, SignInDraft("", 1.7e9))
            ctx, route = translation
            decision = await decider.decide(ctx)
            verdicts.add(decision.verdict)
            wanted = to_check_response(decision, request_id, route, config.step_up.acr_values)
            assert writer.write(decision, request_id, route) == wanted.SerializeToString()

    asyncio.run(run())
    assert verdicts == set(Verdict)
