"""TokenVerifier: a bearer token in, its verified claims out, or `TokenRefused` naming why.

The checks, in order (the first that fails names the refusal, `pdp.errors.ErrorCode`):
a JWT of at most `MAX_TOKEN_BYTES` with a `kid` (`token_malformed`); its header `alg` in
the allow-list (`token_algorithm`); a key of that `kid` in the issuer's JWKS
(`token_unknown_key`, or `token_keys_unavailable` when there are no keys at all); then
PyJWT checks the signature with that key, bound to the key's own algorithm
(`token_signature`), the required claims (`token_claims`), `exp` (`token_expired`), `nbf`
and `iat` (`token_not_yet_valid`) with the clock skew, and `aud` (`token_audience`);
then pdp checks `tid` (`token_tenant`) and `iss` exactly (`token_issuer`). PyJWT's
defaults are not trusted: the algorithms are always passed (never read from the token),
the required claims are listed (PyJWT checks `exp` only when present), and the issuer is
compared here (PyJWT skips it when none is given).

A token verified once is remembered by its SHA-256 (bounded, forgotten when its key leaves
the JWKS), so the RSA verification runs once per token rather than once per request; the
time claims are checked again on every request.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import jwt

from pdp.bounded import batch_for, forget_oldest
from pdp.errors import ErrorCode, TokenRefused
from pdp.tokens.jwks import JwksCache
from pdp.tokens.settings import MAX_TOKEN_BYTES, TokenSettings

VERIFIED_LIMIT: Final = 4096  # tokens remembered as verified; beyond, the oldest go
_MESSAGES: Final[Mapping[ErrorCode, str]] = {
    ErrorCode.TOKEN_MALFORMED: "The access token is malformed.",
    ErrorCode.TOKEN_ALGORITHM: "The access token is signed with an algorithm not accepted.",
    ErrorCode.TOKEN_UNKNOWN_KEY: "The access token is signed with an unknown key.",
    ErrorCode.TOKEN_KEYS_UNAVAILABLE: "The issuer's signing keys are not available.",
    ErrorCode.TOKEN_SIGNATURE: "The access token signature is invalid.",
    ErrorCode.TOKEN_EXPIRED: "The access token expired.",
    ErrorCode.TOKEN_NOT_YET_VALID: "The access token is not valid yet.",
    ErrorCode.TOKEN_AUDIENCE: "The access token is for another audience.",
    ErrorCode.TOKEN_ISSUER: "The access token is from another issuer.",
    ErrorCode.TOKEN_TENANT: "The access token is from another tenant.",
    ErrorCode.TOKEN_CLAIMS: "The access token lacks a required claim.",
}
Claims = dict[str, Any]


def refused(code: ErrorCode) -> TokenRefused:
    """The refusal for `code`, with the message a client may be shown."""
    return TokenRefused(code, _MESSAGES[code])


class TokenVerifier:
    """Verifies bearer tokens under one `TokenSettings`, with the issuer's keys in `keys`."""

    def __init__(
        self,
        settings: TokenSettings,
        keys: JwksCache | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.keys = keys if keys is not None else JwksCache(settings)
        self._clock = clock
        self._jwt = jwt.PyJWT()
        self._algorithms = list(settings.algorithms)
        self._audiences = list(settings.audiences)
        self._issuers = frozenset(settings.issuers)
        required = list(dict.fromkeys(settings.required_claims))
        if settings.tenant_id and "tid" not in required:
            required.append("tid")
        self._options: Any = {"require": required, "verify_iss": False}
        self._skew = settings.clock_skew_s
        # sha256(token) -> (claims, the key that verified it)
        self._verified: dict[bytes, tuple[Claims, jwt.PyJWK]] = {}

    async def verify(self, token: str) -> Claims:
        """The claims of a valid token; raises TokenRefused naming what is wrong with it."""
        if len(token) > MAX_TOKEN_BYTES:
            raise refused(ErrorCode.TOKEN_MALFORMED)
        digest = hashlib.sha256(token.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            claims, key = known
            if self.keys.cached(_kid(key)) is key:
                self._check_time(claims)
                return claims
            del self._verified[digest]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise refused(ErrorCode.TOKEN_MALFORMED) from None
        kid, alg = header.get("kid"), header.get("alg")
        if not isinstance(kid, str) or not kid:
            raise refused(ErrorCode.TOKEN_MALFORMED)
        if alg not in self._algorithms:
            raise refused(ErrorCode.TOKEN_ALGORITHM)
        found = await self.keys.key(kid)
        if found is None:
            code = ErrorCode.TOKEN_UNKNOWN_KEY if self.keys.has_keys else None
            raise refused(code or ErrorCode.TOKEN_KEYS_UNAVAILABLE)
        claims = self._decode(token, found)
        self._check_claims(claims)
        if len(self._verified) >= VERIFIED_LIMIT:
            forget_oldest(self._verified, batch_for(VERIFIED_LIMIT))
        self._verified[digest] = (claims, found)
        return claims

    def _decode(self, token: str, key: jwt.PyJWK) -> Claims:
        """PyJWT's checks: signature (bound to the key's algorithm), claims, times, audience."""
        try:
            claims: Claims = self._jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                audience=self._audiences,
                options=self._options,
                leeway=self._skew,
            )
        except jwt.InvalidSignatureError:
            raise refused(ErrorCode.TOKEN_SIGNATURE) from None
        except jwt.InvalidAlgorithmError:
            raise refused(ErrorCode.TOKEN_ALGORITHM) from None
        except jwt.MissingRequiredClaimError:
            raise refused(ErrorCode.TOKEN_CLAIMS) from None
        except jwt.ExpiredSignatureError:
            raise refused(ErrorCode.TOKEN_EXPIRED) from None
        except (jwt.ImmatureSignatureError, jwt.InvalidIssuedAtError):
            raise refused(ErrorCode.TOKEN_NOT_YET_VALID) from None
        except jwt.InvalidAudienceError:
            raise refused(ErrorCode.TOKEN_AUDIENCE) from None
        except jwt.PyJWTError:
            raise refused(ErrorCode.TOKEN_MALFORMED) from None
        return claims

    def _check_claims(self, claims: Claims) -> None:
        """Tenant, then issuer: PyJWT does not bind them (and skips iss without an issuer)."""
        tenant = self.settings.tenant_id
        if tenant:
            tid = claims.get("tid")
            if not isinstance(tid, str) or tid.lower() != tenant:
                raise refused(ErrorCode.TOKEN_TENANT)
        if claims.get("iss") not in self._issuers:
            raise refused(ErrorCode.TOKEN_ISSUER)

    def _check_time(self, claims: Claims) -> None:
        """exp, nbf and iat again, for a token verified on an earlier request."""
        now, skew = self._clock(), self._skew
        if claims["exp"] <= now - skew:
            raise refused(ErrorCode.TOKEN_EXPIRED)
        nbf, iat = claims.get("nbf"), claims.get("iat")
        if (nbf is not None and nbf > now + skew) or (iat is not None and iat > now + skew):
            raise refused(ErrorCode.TOKEN_NOT_YET_VALID)

    async def close(self) -> None:
        """Close the key fetcher's HTTP client."""
        await self.keys.close()


def _kid(key: jwt.PyJWK) -> str:
    kid: str = key.key_id or ""
    return kid
