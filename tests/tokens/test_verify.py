"""Token verification against a real JWKS server over TLS: every refusal names its reason."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwt_kit import (
    AUDIENCE,
    ISSUER,
    OTHER_TENANT,
    TENANT,
    JwksServer,
    SigningKey,
    TestCa,
    entra_claims,
    issuer_of,
)

from pdp.errors import ErrorCode, TokenRefused, error_code
from pdp.tokens.settings import TokenSettings, entra_issuers
from pdp.tokens.verify import TokenVerifier

KEY = SigningKey("key-1", 0)
ROLLED = SigningKey("key-2", 1)
STRANGER = SigningKey("key-1", 2)  # the same kid as KEY, another private key


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    """A test CA for the JWKS server's certificate."""
    return TestCa(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def server(ca: TestCa) -> Iterator[JwksServer]:
    """A JWKS server over TLS listing KEY."""
    server = JwksServer(ca, [KEY])
    yield server
    server.close()


def settings_for(server: JwksServer, ca: TestCa, **changes: Any) -> TokenSettings:
    """Settings accepting the test tenant's tokens for AUDIENCE, keys from `server`."""
    settings = TokenSettings(
        issuers=entra_issuers(TENANT),
        audiences=(AUDIENCE,),
        jwks_uri=server.uri,
        tenant_id=TENANT,
        jwks_ca_file=ca.cert_file,
    )
    return dataclasses.replace(settings, **changes)


def verify_all(settings: TokenSettings, *tokens: str) -> list[dict[str, Any] | ErrorCode]:
    """Each token's claims, or the code of its refusal, verified in order by one verifier."""

    async def main() -> list[dict[str, Any] | ErrorCode]:
        verifier = TokenVerifier(settings)
        out: list[dict[str, Any] | ErrorCode] = []
        try:
            for token in tokens:
                try:
                    out.append(await verifier.verify(token))
                except TokenRefused as exc:
                    out.append(error_code(exc))
        finally:
            await verifier.close()
        return out

    return asyncio.run(main())


def test_a_valid_entra_token_gives_its_claims(server: JwksServer, ca: TestCa) -> None:
    """Signature, issuer, audience, tenant and times check out: the claims come back."""
    claims = entra_claims(groups=["g1"])
    [verified] = verify_all(settings_for(server, ca), KEY.sign(claims))
    assert verified == claims
    assert server.fetches == 1


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        (entra_claims(lifetime_s=3600, issued_ago_s=3700), ErrorCode.TOKEN_EXPIRED),
        (entra_claims(issued_ago_s=-600), ErrorCode.TOKEN_NOT_YET_VALID),
        (entra_claims(audience="api://someone-else"), ErrorCode.TOKEN_AUDIENCE),
        (entra_claims(tenant=OTHER_TENANT), ErrorCode.TOKEN_TENANT),
        (entra_claims(iss=issuer_of(OTHER_TENANT)), ErrorCode.TOKEN_ISSUER),
        (entra_claims(iss="https://evil.example/v2.0"), ErrorCode.TOKEN_ISSUER),
        (entra_claims(exp=None), ErrorCode.TOKEN_CLAIMS),
        (entra_claims(nbf=None), ErrorCode.TOKEN_CLAIMS),
        (entra_claims(tid=None), ErrorCode.TOKEN_CLAIMS),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-tenant",
        "other-tenants-issuer",
        "foreign-issuer",
        "no-exp",
        "no-nbf",
        "no-tid",
    ],
)
def test_claims_that_do_not_check_out_are_refused_by_name(
    server: JwksServer, ca: TestCa, claims: dict[str, Any], code: ErrorCode
) -> None:
    """Expired, early, foreign audience, tenant or issuer, missing claims: each its own code."""
    assert verify_all(settings_for(server, ca), KEY.sign(claims)) == [code]


def test_a_token_expired_within_the_clock_skew_is_still_accepted(
    server: JwksServer, ca: TestCa
) -> None:
    """A token 30 s past its exp passes with a 60 s skew, not with a 10 s skew."""
    token = KEY.sign(entra_claims(lifetime_s=3600, issued_ago_s=3630))
    [claims] = verify_all(settings_for(server, ca), token)
    assert isinstance(claims, dict)
    assert verify_all(settings_for(server, ca, clock_skew_s=10), token) == [ErrorCode.TOKEN_EXPIRED]


def test_forged_and_confused_tokens_are_refused(server: JwksServer, ca: TestCa) -> None:
    """Another key under our kid, alg none, HS256 keyed by the public key, garbage."""
    claims = entra_claims()
    public_pem = KEY.jwk()["n"]
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": KEY.kid})
    hmac = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": KEY.kid})
    tampered = KEY.sign(claims).rsplit(".", 2)
    tampered[1] = jwt.utils.base64url_encode(b'{"oid":"someone-else"}').decode()
    assert verify_all(
        settings_for(server, ca),
        STRANGER.sign(claims),
        unsigned,
        hmac,
        ".".join(tampered),
        "not-a-jwt",
        KEY.sign(claims, kid=None),
        "x" * 40_000,
    ) == [
        ErrorCode.TOKEN_SIGNATURE,
        ErrorCode.TOKEN_ALGORITHM,
        ErrorCode.TOKEN_ALGORITHM,
        ErrorCode.TOKEN_SIGNATURE,
        ErrorCode.TOKEN_MALFORMED,
        ErrorCode.TOKEN_MALFORMED,
        ErrorCode.TOKEN_MALFORMED,
    ]


def test_an_algorithm_outside_the_allow_list_is_refused(server: JwksServer, ca: TestCa) -> None:
    """An RS512 token is refused while only RS256 is allowed, before any key lookup."""
    token = KEY.sign(entra_claims(), alg="RS512")
    assert verify_all(settings_for(server, ca), token) == [ErrorCode.TOKEN_ALGORITHM]
    assert server.fetches == 0


def test_an_unknown_kid_refetches_once_then_waits_for_the_rate_limit(
    server: JwksServer, ca: TestCa
) -> None:
    """A rolled key is found by one refetch; made-up kids do not refetch within the limit."""
    settings = settings_for(server, ca, jwks_min_refresh_s=300)
    first = KEY.sign(entra_claims())
    server.keys.append(ROLLED)  # rolled after our first fetch
    unknown = [SigningKey(f"made-up-{i}", 0).sign(entra_claims()) for i in range(5)]

    async def main() -> list[Any]:
        verifier = TokenVerifier(settings)
        out: list[Any] = []
        try:
            server.keys.remove(ROLLED)
            out.append(await verifier.verify(first))  # fetch 1: KEY only
            server.keys.append(ROLLED)
            # fetch 1 was just now: the rate limit holds the rolled key back...
            out.append(await _code(verifier, ROLLED.sign(entra_claims())))
            out.append(server.fetches)
            verifier.keys._next_fetch_at = 0  # ...until it has passed
            out.append(await _code(verifier, ROLLED.sign(entra_claims())))  # fetch 2
            out.extend([await _code(verifier, token) for token in unknown])
            out.append(server.fetches)
        finally:
            await verifier.close()
        return out

    results = asyncio.run(main())
    assert isinstance(results[0], dict)
    assert results[1:3] == [ErrorCode.TOKEN_UNKNOWN_KEY, 1]
    assert isinstance(results[3], dict)
    assert results[4:] == [ErrorCode.TOKEN_UNKNOWN_KEY] * 5 + [2]


async def _code(verifier: TokenVerifier, token: str) -> dict[str, Any] | ErrorCode:
    try:
        return await verifier.verify(token)
    except TokenRefused as exc:
        return exc.code


def test_concurrent_unknown_kids_share_one_fetch(server: JwksServer, ca: TestCa) -> None:
    """Fifty requests arriving before the keys are known cause a single JWKS fetch."""
    server.delay_s = 0.2
    token = KEY.sign(entra_claims())

    async def main() -> list[Any]:
        verifier = TokenVerifier(settings_for(server, ca))
        try:
            return await asyncio.gather(*(_code(verifier, token) for _ in range(50)))
        finally:
            await verifier.close()

    results = asyncio.run(main())
    assert all(isinstance(r, dict) for r in results)
    assert server.fetches == 1


def test_fetching_keys_never_blocks_the_event_loop(server: JwksServer, ca: TestCa) -> None:
    """While a slow JWKS fetch is in flight, other tasks on the loop keep running."""
    server.delay_s = 0.5
    token = KEY.sign(entra_claims())

    async def main() -> tuple[int, Any]:
        verifier = TokenVerifier(settings_for(server, ca))
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            result = await _code(verifier, token)
        finally:
            ticker.cancel()
            await verifier.close()
        return ticks, result

    ticks, result = asyncio.run(main())
    assert isinstance(result, dict)
    assert ticks >= 20  # 0.5 s of 10 ms ticks, with room for a busy machine


def test_jwks_trust_and_bounds(server: JwksServer, ca: TestCa, tmp_path: Path) -> None:
    """Untrusted certificate, error status, oversized or key-less JWKS: no keys, fail closed."""
    token = KEY.sign(entra_claims())
    other_ca = TestCa(tmp_path, "another CA")
    assert verify_all(settings_for(server, ca, jwks_ca_file=other_ca.cert_file), token) == [
        ErrorCode.TOKEN_KEYS_UNAVAILABLE
    ]
    server.status = 503
    assert verify_all(settings_for(server, ca), token) == [ErrorCode.TOKEN_KEYS_UNAVAILABLE]
    server.status = 200
    assert verify_all(settings_for(server, ca, jwks_max_bytes=200), token) == [
        ErrorCode.TOKEN_KEYS_UNAVAILABLE
    ]
    assert verify_all(settings_for(server, ca, jwks_max_keys=0), token) == [
        ErrorCode.TOKEN_KEYS_UNAVAILABLE
    ]
    server.body = b'{"keys": [{"kty": "oct", "kid": "key-1", "k": "c2VjcmV0"}]}'
    assert verify_all(settings_for(server, ca), token) == [ErrorCode.TOKEN_KEYS_UNAVAILABLE]
    server.body = None
    [claims] = verify_all(settings_for(server, ca), token)
    assert isinstance(claims, dict)


def test_last_good_keys_serve_through_an_outage_until_their_max_age(
    server: JwksServer, ca: TestCa
) -> None:
    """A failed refresh keeps the keys; past jwks_max_age_s without a success they are dropped."""
    now = [1000.0]
    token = KEY.sign(entra_claims())

    async def main() -> list[Any]:
        verifier = TokenVerifier(settings_for(server, ca, jwks_max_age_s=600))
        verifier.keys._clock = lambda: now[0]
        out: list[Any] = []
        try:
            out.append(await _code(verifier, token))
            server.status = 503
            now[0] += 500
            await verifier.keys.refresh()  # the background refresh fails
            out.append(await _code(verifier, KEY.sign(entra_claims())))  # kept
            now[0] += 200  # 700 s since the last good fetch
            out.append(await _code(verifier, KEY.sign(entra_claims())))
        finally:
            await verifier.close()
        return out

    first, during, after = asyncio.run(main())
    assert isinstance(first, dict)
    assert isinstance(during, dict)
    assert after is ErrorCode.TOKEN_KEYS_UNAVAILABLE


def test_a_remembered_token_is_still_checked_for_expiry(server: JwksServer, ca: TestCa) -> None:
    """The second request with a token skips the signature but not exp."""
    now = [time.time()]
    token = KEY.sign(entra_claims(lifetime_s=120, issued_ago_s=60))

    async def main() -> list[Any]:
        verifier = TokenVerifier(settings_for(server, ca), clock=lambda: now[0])
        try:
            first = await _code(verifier, token)
            now[0] += 200  # 140 s past exp, beyond the 60 s skew
            return [first, await _code(verifier, token)]
        finally:
            await verifier.close()

    first, later = asyncio.run(main())
    assert isinstance(first, dict)
    assert later is ErrorCode.TOKEN_EXPIRED


def test_v1_issuer_of_the_tenant_is_accepted_by_default(server: JwksServer, ca: TestCa) -> None:
    """The tenant's defaults accept its v1 issuer (sts.windows.net) besides the v2.0 one."""
    claims = entra_claims(iss=f"https://sts.windows.net/{TENANT}/", ver="1.0")
    [verified] = verify_all(settings_for(server, ca), KEY.sign(claims))
    assert isinstance(verified, dict)
    assert ISSUER in entra_issuers(TENANT)


def test_a_remembered_token_is_refused_once_its_key_leaves_the_jwks(
    server: JwksServer, ca: TestCa
) -> None:
    """A key removed in an emergency roll stops its tokens at the next refresh, cached or not."""
    token = KEY.sign(entra_claims())

    async def main() -> list[Any]:
        verifier = TokenVerifier(settings_for(server, ca))
        try:
            first = await _code(verifier, token)
            server.keys = [ROLLED]
            await verifier.keys.refresh()  # the hourly background refresh
            return [first, await _code(verifier, token)]
        finally:
            await verifier.close()

    first, later = asyncio.run(main())
    assert isinstance(first, dict)
    assert later is ErrorCode.TOKEN_UNKNOWN_KEY
