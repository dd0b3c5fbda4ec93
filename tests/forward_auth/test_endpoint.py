"""The forward-auth endpoint over a real HTTP server: answers, audit, bounds, keep-alive, TLS."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from entra_tokens import OTHER_TENANT, SigningKey
from forward_auth_kit import (
    DEV_HOST,
    HOME,
    KEY,
    OFFICE,
    PROD_HOST,
    engineer_token,
    example_config,
    original_request,
    serving,
)
from issuer_kit import Issuer
from prometheus_client import REGISTRY

from pdp.errors import StartupError
from pdp.forward_auth.server import ForwardAuthServer, tls_context
from pdp.gateway.config import GatewayConfig, parse_gateway_config
from pdp.limits import Limits
from pdp.observability.audit import AuditLog
from pdp.observability.decisions import DecisionObserver
from pdp.observability.metrics import PUBLISHER

T = TypeVar("T")
Reply = tuple[int, dict[str, str], str]
CHALLENGE = (
    'Bearer error="insufficient_user_authentication", '
    'error_description="A different authentication level is required", acr_values="c1"'
)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Issuer]:
    """The tenant's issuer: a test CA and its JWKS over TLS, listing KEY."""
    issuer = Issuer(tmp_path_factory.mktemp("issuer"), [KEY])
    yield issuer
    issuer.close()


@pytest.fixture
def config(issuer: Issuer) -> GatewayConfig:
    """The example gateway config verifying tokens against the test JWKS."""
    return example_config(issuer.jwks_uri, issuer.ca_file)


def run(
    config: GatewayConfig,
    scenario: Callable[[aiohttp.ClientSession, str], Awaitable[T]],
    observer: DecisionObserver | None = None,
) -> T:
    """Run `scenario(session, url)` against a fresh endpoint."""

    async def main() -> T:
        async with serving(config, observer) as (url, _), aiohttp.ClientSession() as session:
            return await scenario(session, url)

    return asyncio.run(main())


async def ask(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> Reply:
    """GET url with headers: (status, lower-case headers, body)."""
    async with session.get(url, headers=headers) as reply:
        body = await reply.text()
        return reply.status, {k.lower(): v for k, v in reply.headers.items()}, body


def ask_all(config: GatewayConfig, *requests: dict[str, str], **kw: Any) -> list[Reply]:
    """Each request's reply, in order, from one endpoint."""

    async def scenario(session: aiohttp.ClientSession, url: str) -> list[Reply]:
        return [await ask(session, url, headers) for headers in requests]

    return run(config, scenario, **kw)


def test_allow_challenge_and_deny_answer_200_401_403(config: GatewayConfig) -> None:
    """MFA at the office: 200 with headers; password only at home on dev: 401; prod at home: 403."""
    allow, step_up, block = ask_all(
        config,
        original_request(engineer_token(), host=PROD_HOST, client=OFFICE, **{"X-Request-Id": "r1"}),
        original_request(engineer_token(amr=("pwd",)), host=DEV_HOST, client=HOME),
        original_request(engineer_token(), host=PROD_HOST, client=HOME),
    )
    status, headers, body = allow
    assert status == 200
    assert headers["x-pdp-decision"] == "allow"
    assert headers["x-pdp-request-id"] == "r1"
    assert headers["x-pdp-session-max-age"] == "14400"
    assert headers["cache-control"] == "no-store"
    assert body == ""

    status, headers, body = step_up
    assert status == 401
    assert headers["www-authenticate"] == CHALLENGE
    answer = json.loads(body)
    assert answer["decision"] == "challenge"
    assert answer["requirements"] == [{"any_of": ["mfa"]}]
    assert answer["acr_values"] == "c1"

    status, headers, body = block
    assert status == 403
    assert "www-authenticate" not in headers
    assert headers["x-pdp-decision"] == "deny"
    assert json.loads(body)["messages"]


def test_missing_and_refused_tokens_answer_401_naming_the_reason(
    config: GatewayConfig, tmp_path: Path
) -> None:
    """No token, an expired one, another tenant's, another key's: 401, reason in the audit."""
    stranger = SigningKey("unknown-kid")
    expired = engineer_token(now=int(time.time()) - 4000)
    tokens = [
        None,
        expired,
        engineer_token(tenant=OTHER_TENANT),
        engineer_token(aud="api://another-api"),
        engineer_token(key=stranger),
    ]
    audit_path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(audit_path))
    replies = ask_all(
        config, *(original_request(t) for t in tokens), observer=DecisionObserver(audit)
    )
    audit.close()
    assert [status for status, _, _ in replies] == [401] * 5
    assert replies[0][1]["www-authenticate"] == "Bearer"
    assert replies[1][1]["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired."'
    )
    errors = [json.loads(body)["error"] for _, _, body in replies]
    assert errors == [
        "unauthenticated",
        "token_expired",
        "token_tenant",
        "token_audience",
        "token_unknown_key",
    ]
    assert [headers["x-pdp-error"] for _, headers, _ in replies] == errors
    text = audit_path.read_text(encoding="utf-8")
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["status"]["failureReason"] for r in records] == errors
    assert {r["status"]["errorCode"] for r in records} == {16}
    assert {r["ipAddress"] for r in records} == {OFFICE}
    assert {r["appId"] for r in records} == {"8a4f0c1e-2d3b-4c5a-9e7f-00000000f001"}
    for token in tokens[1:]:
        assert token is not None
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature


def test_decisions_are_audited_like_every_way_in(config: GatewayConfig, tmp_path: Path) -> None:
    """One audit record per request, from the sign-in and the decision, with the token's user."""
    audit_path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(audit_path))
    ask_all(
        config,
        original_request(engineer_token(), **{"X-Request-Id": "audited-1"}),
        observer=DecisionObserver(audit),
    )
    audit.close()
    [record] = [json.loads(line) for line in audit_path.read_text("utf-8").splitlines()]
    assert record["id"] == "audited-1"
    assert record["decision"] == "allow"
    assert record["userId"] == "0a0da000-0000-4000-8000-00000000ada1"
    assert record["ipAddress"] == OFFICE
    assert record["deviceDetail"]["deviceId"] == "laptop-0042"
    assert record["clientAppUsed"] == "Browser"
    assert record["appliedConditionalAccessPolicies"]


def test_the_client_address_follows_the_trusted_hops(config: GatewayConfig, tmp_path: Path) -> None:
    """A client's own X-Forwarded-For entry left of the gateway's is never read."""
    audit_path = tmp_path / "audit.jsonl"
    audit = AuditLog(str(audit_path))
    replies = ask_all(
        config,
        # The client claims the office address; the gateway appended the real one (home).
        original_request(engineer_token(), client=f"{OFFICE}, {HOME}"),
        original_request(engineer_token(), client=""),
        observer=DecisionObserver(audit),
    )
    audit.close()
    assert [status for status, _, _ in replies] == [403, 403]
    first, second = (json.loads(line) for line in audit_path.read_text("utf-8").splitlines())
    assert first["ipAddress"] == HOME
    assert first["decision"] == "deny"
    assert second["status"]["failureReason"] == "invalid_argument"


def test_copies_of_the_original_request_headers_are_refused(config: GatewayConfig) -> None:
    """A client's X-Forwarded-Host beside the gateway's, or an unmapped host: 403, never 5xx."""

    async def scenario(session: aiohttp.ClientSession, url: str) -> list[Reply]:
        headers = original_request(engineer_token())
        doubled = [*headers.items(), ("X-Forwarded-Host", DEV_HOST)]
        async with session.get(url, headers=doubled) as reply:
            first = (reply.status, dict(reply.headers), await reply.text())
        return [first, await ask(session, url, original_request(engineer_token(), host="x.test"))]

    (status, _, body), (status2, _, body2) = run(config, scenario)
    assert (status, json.loads(body)["error"]) == (403, "invalid_argument")
    assert (status2, json.loads(body2)["error"]) == (403, "invalid_argument")
    # A client's X-Original-URI through Traefik (which sets X-Forwarded-Uri) disagrees.
    spoofed = original_request(engineer_token(), **{"X-Forwarded-Uri": "/api/v1/x"})
    agreeing = original_request(engineer_token(), **{"X-Forwarded-Uri": "/notebooks/42"})
    (status3, _, body3), (status4, _, _) = ask_all(config, spoofed, agreeing)
    assert (status3, json.loads(body3)["error"]) == (403, "invalid_argument")
    assert status4 == 200


def test_large_entra_tokens_fit_and_oversized_headers_are_refused(config: GatewayConfig) -> None:
    """A token with 200 groups (~12 KB) is read; a 40 KB header is refused by the parser."""
    groups = [f"00000000-0000-4000-8000-{i:012d}" for i in range(199)]
    big = engineer_token(groups=[*groups, "6f1c3a52-8d2e-4b7a-9c1f-2a3b4c5d6e01"])
    assert len(big) > 11_000
    ok, too_big = ask_all(
        config,
        original_request(big),
        original_request(engineer_token(), **{"X-Junk": "j" * 40_000}),
    )
    assert ok[0] == 200
    assert too_big[0] == 400


def test_only_authz_answers(config: GatewayConfig) -> None:
    """Any other path is 404, so a gateway pointed at the wrong URI never gets a 2xx."""

    async def scenario(session: aiohttp.ClientSession, url: str) -> int:
        async with session.get(
            url.replace("/authz", "/"), headers=original_request(engineer_token())
        ) as r:
            return r.status

    assert run(config, scenario) == 404


def test_keep_alive_serves_many_requests_on_one_connection(config: GatewayConfig) -> None:
    """Three requests on one HTTP/1.1 connection, as a gateway's upstream keepalive sends them."""

    async def scenario(session: aiohttp.ClientSession, url: str) -> list[int]:
        port = int(url.split(":")[2].split("/", maxsplit=1)[0])

        def three() -> list[int]:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            statuses = []
            sock = None
            for _ in range(3):
                conn.request("GET", "/authz", headers=original_request(engineer_token()))
                reply = conn.getresponse()
                reply.read()
                statuses.append(reply.status)
                assert sock is None or conn.sock is sock
                sock = conn.sock
            conn.close()
            return statuses

        return await asyncio.to_thread(three)

    assert run(config, scenario) == [200, 200, 200]


def test_tls_endpoint_answers_over_https_only(
    config: GatewayConfig, issuer: Issuer, tmp_path: Path
) -> None:
    """With --tls-cert the endpoint speaks TLS with that certificate; plain HTTP gets nothing."""
    cert, key = issuer.ca.issue("localhost").write(tmp_path, "pdp")

    async def main() -> tuple[int, str]:
        client = ssl.create_default_context(cafile=str(issuer.ca_file))
        tls = tls_context(cert, key, None)
        async with serving(config, tls=tls) as (url, _), aiohttp.ClientSession() as session:
            async with session.get(
                url, headers=original_request(engineer_token()), ssl=client
            ) as r:
                status = r.status
            try:
                async with session.get(url.replace("https", "http")) as r:
                    plain = f"answered {r.status}"
            except aiohttp.ClientError as exc:
                plain = type(exc).__name__
        return status, plain

    status, plain = asyncio.run(main())
    assert status == 200
    assert not plain.startswith("answered 2")


def test_a_request_in_flight_finishes_during_a_graceful_stop(tmp_path: Path) -> None:
    """stop() waits for a request in flight (here: a slow JWKS fetch), then refuses new ones."""
    issuer = Issuer(tmp_path, [KEY])  # its own: no keys fetched yet
    jwks = issuer.jwks
    config = example_config(issuer.jwks_uri, issuer.ca_file)

    async def main() -> tuple[int, str]:
        async with serving(config) as (url, server), aiohttp.ClientSession() as session:
            jwks.delay_s = 1.0
            try:
                pending = asyncio.create_task(ask(session, url, original_request(engineer_token())))
                await asyncio.sleep(0.3)
                await server.stop()  # returns once the request has been answered
                assert pending.done()
                status = (await pending)[0]
            finally:
                jwks.delay_s = 0.0
            try:
                await ask(session, url, original_request(engineer_token()))
                after = "answered"
            except aiohttp.ClientError as exc:
                after = type(exc).__name__
        return status, after

    status, after = asyncio.run(main())
    issuer.close()
    assert status == 200
    assert after != "answered"


def test_identity_headers_of_a_trusted_proxy_serve_without_tokens() -> None:
    """Behind oauth2-proxy (no tokens section): the user comes from its trusted header."""
    config = parse_gateway_config(
        {
            "network": {
                "trusted_hops": 1,
                "gateway_appends_xff": False,
                "trusted_proxies": ["127.0.0.0/8"],
            },
            "application": {"default": "00000000-0000-4000-8000-0000000000aa"},
            "identity": {
                "headers": {"user_id": "x-auth-request-user", "trusted_sources": ["127.0.0.0/8"]}
            },
        }
    )
    replies = ask_all(
        config,
        {"X-Auth-Request-User": "ada@contoso.example", "X-Forwarded-For": OFFICE},
        {"X-Forwarded-For": OFFICE},
    )
    assert [status for status, _, _ in replies] == [200, 401]
    assert json.loads(replies[1][2])["error"] == "unauthenticated"


def test_the_endpoint_refuses_to_start_without_a_way_to_know_the_user() -> None:
    """No tokens section and no identity headers: a one-line StartupError, nothing served."""
    from pdp.decide import Decider
    from pdp.policy_store import PolicyStore

    with pytest.raises(StartupError, match="--http-listen: the gateway config must verify tokens"):
        ForwardAuthServer(
            Decider(PolicyStore()), GatewayConfig(), DecisionObserver(), "127.0.0.1:0"
        )


def test_the_endpoint_shares_the_decision_budget_and_counts_its_answers(
    config: GatewayConfig,
) -> None:
    """Over the budget of calls at once: 403 resource_exhausted, never queued; all counted."""

    def answered(code: str) -> float:
        PUBLISHER.publish()
        return REGISTRY.get_sample_value("pdp_http_requests_total", {"code": code}) or 0.0

    async def scenario() -> Reply:
        budget = Limits(max_concurrent=0)  # every call is over it
        async with (
            serving(config, limits=budget) as (url, _),
            aiohttp.ClientSession() as session,
        ):
            return await ask(session, url, original_request(engineer_token(), host=DEV_HOST))

    before = answered("403")
    status, headers, body = asyncio.run(scenario())
    assert status == 403
    assert headers["x-pdp-error"] == "resource_exhausted"
    assert json.loads(body)["error"] == "resource_exhausted"
    assert answered("403") == before + 1
