"""Token verification against a real JWKS server over TLS: every refusal names its reason."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from entra_tokens import OTHER_TENANT, CertificateAuthority, SigningKey, v1_issuer
from issuer_kit import Issuer, token

from pdp.errors import ErrorCode, TokenRefused, error_code
from pdp.tokens.settings import TokenSettings
from pdp.tokens.verify import TokenVerifier

KEY = SigningKey("key-1")
ROLLED = SigningKey("key-2")
STRANGER = SigningKey("key-1")  # the same kid as KEY, another private key
Result = dict[str, Any] | ErrorCode


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[Issuer]:
    """The tenant's issuer, its JWKS over TLS listing KEY."""
    issuer = Issuer(tmp_path, [KEY])
    yield issuer
    issuer.close()


async def _code(verifier: TokenVerifier, jwt: str) -> Result:
    try:
        return await verifier.verify(jwt)
    except TokenRefused as exc:
        return error_code(exc)


def verify_all(settings: TokenSettings, *tokens: str) -> list[Result]:
    """Each token's claims, or the code of its refusal, verified in order by one verifier."""

    async def main() -> list[Result]:
        verifier = TokenVerifier(settings)
        try:
            return [await _code(verifier, jwt) for jwt in tokens]
        finally:
            await verifier.close()

    return asyncio.run(main())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    """A token with `header` signed by HMAC-SHA256 with `secret`, or with no signature."""
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    if secret is None:
        return head + "."
    return head + "." + _b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())


def test_v2_and_v1_tokens_of_the_tenant_give_their_claims(issuer: Issuer) -> None:
    """Signature, issuer (v2.0 or v1), audience (client id or App ID URI), tenant, times."""
    v2, v1 = token(KEY, groups=["g1"]), token(KEY, "1.0", amr=["pwd", "mfa"])
    first, second = verify_all(issuer.settings(), v2, v1)
    assert isinstance(first, dict)
    assert first["groups"] == ["g1"]
    assert isinstance(second, dict)
    assert second["iss"] == v1_issuer()
    assert second["amr"] == ["pwd", "mfa"]
    assert issuer.jwks.fetches() == 1


NOW = int(time.time())


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"now": NOW - 4000}, ErrorCode.TOKEN_EXPIRED),
        ({"now": NOW + 600}, ErrorCode.TOKEN_NOT_YET_VALID),
        ({"iat": NOW + 600}, ErrorCode.TOKEN_NOT_YET_VALID),
        ({"aud": "api://someone-else"}, ErrorCode.TOKEN_AUDIENCE),
        ({"tenant": OTHER_TENANT}, ErrorCode.TOKEN_TENANT),
        ({"iss": v1_issuer(OTHER_TENANT)}, ErrorCode.TOKEN_ISSUER),
        ({"iss": "https://evil.example/v2.0"}, ErrorCode.TOKEN_ISSUER),
        ({"exp": None}, ErrorCode.TOKEN_CLAIMS),
        ({"nbf": None}, ErrorCode.TOKEN_CLAIMS),
        ({"tid": None}, ErrorCode.TOKEN_CLAIMS),
    ],
    ids=[
        "expired",
        "not-yet-valid",
        "issued-in-the-future",
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
    issuer: Issuer, changes: dict[str, Any], code: ErrorCode
) -> None:
    """Expired, early, foreign audience, tenant or issuer, missing claims: each its own code."""
    assert verify_all(issuer.settings(), token(KEY, **changes)) == [code]


def test_a_token_expired_within_the_clock_skew_is_still_accepted(issuer: Issuer) -> None:
    """A token 30 s past its exp passes with a 60 s skew, not with a 10 s skew."""
    jwt = token(KEY, now=int(time.time()) - 3630)
    [claims] = verify_all(issuer.settings(), jwt)
    assert isinstance(claims, dict)
    assert verify_all(issuer.settings(clock_skew_s=10), jwt) == [ErrorCode.TOKEN_EXPIRED]


def test_forged_and_confused_tokens_are_refused(issuer: Issuer) -> None:
    """Another key under our kid, alg none, HS256 keyed by the public key, tampering, junk."""
    genuine = token(KEY)
    head, body, signature = genuine.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    forged_body = _b64(json.dumps({**claims, "oid": "someone-else"}).encode())
    header = {"typ": "JWT", "kid": KEY.kid}
    assert verify_all(
        issuer.settings(),
        token(STRANGER),
        unsigned({**header, "alg": "none"}, claims, None),
        unsigned({**header, "alg": "HS256"}, claims, KEY.public_pem()),
        f"{head}.{forged_body}.{signature}",
        "not-a-jwt",
        unsigned({"typ": "JWT", "alg": "RS256"}, claims, b"x"),  # no kid
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


def test_an_algorithm_outside_the_allow_list_is_refused(issuer: Issuer) -> None:
    """An RS256 token is refused while only PS256 is allowed, before any key lookup."""
    assert verify_all(issuer.settings(algorithms=("PS256",)), token(KEY)) == [
        ErrorCode.TOKEN_ALGORITHM
    ]
    assert issuer.jwks.fetches() == 0


def test_an_unknown_kid_refetches_once_then_waits_for_the_rate_limit(issuer: Issuer) -> None:
    """A rolled key is found by one refetch; made-up kids do not refetch within the limit."""
    made_up = [token(SigningKey(f"made-up-{i}")) for i in range(3)]

    async def main() -> list[Any]:
        verifier = TokenVerifier(issuer.settings(jwks_min_refresh_s=300))
        out: list[Any] = []
        try:
            out.append(await _code(verifier, token(KEY)))  # fetch 1: KEY only
            issuer.jwks.keys = [KEY, ROLLED]
            # fetch 1 was just now: the rate limit holds the rolled key back...
            out.append(await _code(verifier, token(ROLLED)))
            out.append(issuer.jwks.fetches())
            verifier.keys._next_fetch_at = 0  # ...until it has passed
            out.append(await _code(verifier, token(ROLLED)))  # fetch 2
            out.extend([await _code(verifier, jwt) for jwt in made_up])
            out.append(issuer.jwks.fetches())
        finally:
            await verifier.close()
        return out

    results = asyncio.run(main())
    assert isinstance(results[0], dict)
    assert results[1:3] == [ErrorCode.TOKEN_UNKNOWN_KEY, 1]
    assert isinstance(results[3], dict)
    assert results[4:] == [ErrorCode.TOKEN_UNKNOWN_KEY] * 3 + [2]


def test_concurrent_unknown_kids_share_one_fetch(issuer: Issuer) -> None:
    """Fifty requests arriving before the keys are known cause a single JWKS fetch."""
    issuer.jwks.delay_s = 0.2
    jwt = token(KEY)

    async def main() -> list[Result]:
        verifier = TokenVerifier(issuer.settings())
        try:
            return await asyncio.gather(*(_code(verifier, jwt) for _ in range(50)))
        finally:
            await verifier.close()

    assert all(isinstance(r, dict) for r in asyncio.run(main()))
    assert issuer.jwks.fetches() == 1


def test_fetching_keys_never_blocks_the_event_loop(issuer: Issuer) -> None:
    """While a slow JWKS fetch is in flight, other tasks on the loop keep running."""
    issuer.jwks.delay_s = 0.5
    jwt = token(KEY)

    async def main() -> tuple[int, Result]:
        verifier = TokenVerifier(issuer.settings())
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        try:
            result = await _code(verifier, jwt)
        finally:
            ticker.cancel()
            await verifier.close()
        return ticks, result

    ticks, result = asyncio.run(main())
    assert isinstance(result, dict)
    assert ticks >= 20  # 0.5 s of 10 ms ticks, with room for a busy machine


def test_jwks_trust_and_bounds(issuer: Issuer, tmp_path: Path) -> None:
    """Untrusted certificate, failing, oversized or key-less JWKS: no keys, fail closed."""
    jwt = token(KEY)
    unavailable = [ErrorCode.TOKEN_KEYS_UNAVAILABLE]
    other_ca = CertificateAuthority("another CA").write(tmp_path, "other-ca")
    assert verify_all(issuer.settings(jwks_ca_file=other_ca), jwt) == unavailable
    issuer.jwks.failing = True
    assert verify_all(issuer.settings(), jwt) == unavailable
    issuer.jwks.failing = False
    assert verify_all(issuer.settings(jwks_max_bytes=200), jwt) == unavailable
    assert verify_all(issuer.settings(jwks_max_keys=0), jwt) == unavailable
    issuer.jwks.override = {"keys": [{"kty": "oct", "kid": KEY.kid, "k": "c2VjcmV0"}]}
    assert verify_all(issuer.settings(), jwt) == unavailable
    issuer.jwks.override = None
    [claims] = verify_all(issuer.settings(), jwt)
    assert isinstance(claims, dict)


def test_last_good_keys_serve_through_an_outage_until_their_max_age(issuer: Issuer) -> None:
    """A failed refresh keeps the keys; past jwks_max_age_s without a success they are dropped."""
    now = [1000.0]

    async def main() -> list[Result]:
        verifier = TokenVerifier(issuer.settings(jwks_max_age_s=600))
        verifier.keys._clock = lambda: now[0]
        try:
            first = await _code(verifier, token(KEY))
            issuer.jwks.failing = True
            now[0] += 500
            await verifier.keys.refresh()  # the background refresh fails
            during = await _code(verifier, token(KEY))  # the last good keys serve
            now[0] += 200  # 700 s since the last good fetch
            return [first, during, await _code(verifier, token(KEY))]
        finally:
            await verifier.close()

    first, during, after = asyncio.run(main())
    assert isinstance(first, dict)
    assert isinstance(during, dict)
    assert after is ErrorCode.TOKEN_KEYS_UNAVAILABLE


def test_a_remembered_token_is_still_checked_for_expiry(issuer: Issuer) -> None:
    """The second request with a token skips the signature but not exp."""
    now = [time.time()]
    jwt = token(KEY, lifetime_s=120)

    async def main() -> list[Result]:
        verifier = TokenVerifier(issuer.settings(), clock=lambda: now[0])
        try:
            first = await _code(verifier, jwt)
            now[0] += 200  # 140 s past exp, beyond the 60 s skew
            return [first, await _code(verifier, jwt)]
        finally:
            await verifier.close()

    first, later = asyncio.run(main())
    assert isinstance(first, dict)
    assert later is ErrorCode.TOKEN_EXPIRED


def test_a_remembered_token_is_refused_once_its_key_leaves_the_jwks(issuer: Issuer) -> None:
    """A key removed in an emergency roll stops its tokens at the next refresh, cached or not."""
    jwt = token(KEY)

    async def main() -> list[Result]:
        verifier = TokenVerifier(issuer.settings())
        try:
            first = await _code(verifier, jwt)
            issuer.jwks.keys = [ROLLED]
            await verifier.keys.refresh()  # the hourly background refresh
            return [first, await _code(verifier, jwt)]
        finally:
            await verifier.close()

    first, later = asyncio.run(main())
    assert isinstance(first, dict)
    assert later is ErrorCode.TOKEN_UNKNOWN_KEY
