"""A forward-auth subrequest -> SignInContext, under the gateway config Check uses.

The subrequest is not the request being authorised: NGINX sends `GET` to pdp's own URI with
the client's headers copied in, so the original request is read from what the gateway adds:

- method: `X-Original-Method` (NGINX recipe) or `X-Forwarded-Method` (Traefik, Caddy),
  else the subrequest's own;
- host: `X-Forwarded-Host`, else the subrequest's `Host`; the application is the host's
  entry in `application.hosts`, else `application.default`, as for Check without route
  extensions;
- URI: `X-Original-URI` (NGINX) or `X-Forwarded-Uri` (Traefik, Caddy); its path decides
  `client_app.api_paths`. When both conventions arrive they must agree (a gateway sets
  one and passes the client's other headers on);
- client IP: the connection's peer and `X-Forwarded-For` under `network.trusted_hops` and
  `trusted_proxies`, by the very function Check uses (`pdp.gateway.check_in.client_ip`).

Each of these must arrive once: a copy sent by the client beside the gateway's is refused,
not guessed between. The gateway must set (overwrite) them; the shipped NGINX and Traefik
configs do. Identity: with the config's `tokens` section, the `Authorization: Bearer` token,
verified by `pdp.tokens` and mapped by `pdp.gateway.identity.read_token`; without it, the
trusted identity headers Check would read. Device, risk and geo come from the configured
headers, as for Check.
"""

from __future__ import annotations

from typing import Final, NamedTuple

from pdp import context_values as cv
from pdp.context import SignInContext
from pdp.errors import ErrorCode, InvalidRequest, TokenRefused
from pdp.gateway.check_in import application_id, client_app_type, client_ip, read_signals
from pdp.gateway.config import GatewayConfig
from pdp.gateway.draft import SignInDraft
from pdp.gateway.identity import read_identity, read_token
from pdp.gateway.signals import Headers
from pdp.tokens.verify import TokenVerifier

AUTHORIZATION: Final = "authorization"
CLAIMS_SOURCE: Final = "header authorization"  # how errors name the token's claims
_NO_METADATA: Final[dict[str, object]] = {}  # forward-auth carries no dynamic metadata
_NO_EXTENSIONS: Final[dict[str, str]] = {}


class Original(NamedTuple):
    """The request the gateway asks about, as its headers describe it."""

    method: str
    host: str
    uri: str

    @property
    def path(self) -> str:
        """The URI without its query."""
        return self.uri.partition("?")[0]


def original(headers: Headers, method: str, host: str) -> Original:
    """The original request; `method` and `host` are the subrequest's own, the fallbacks."""
    return Original(
        _either(headers, "x-original-method", "x-forwarded-method") or method,
        headers.single("x-forwarded-host") or host,
        _either(headers, "x-original-uri", "x-forwarded-uri") or "",
    )


def _either(headers: Headers, nginx: str, others: str) -> str | None:
    """One value in either convention; refused when both arrive and disagree.

    A gateway sets the convention it knows and passes other client headers on, so two
    different values mean a client's copy beside the gateway's.
    """
    first, second = headers.single(nginx), headers.single(others)
    if first and second and first != second:
        raise InvalidRequest(f"header {nginx}", f"disagrees with {others}")
    return first or second


def bearer_token(headers: Headers) -> str:
    """The token of `Authorization: Bearer`; TokenRefused(unauthenticated) when there is none."""
    value = headers.get(AUTHORIZATION)
    if value is None:
        raise TokenRefused(ErrorCode.UNAUTHENTICATED, "No bearer token.")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise TokenRefused(ErrorCode.UNAUTHENTICATED, "No bearer token.")
    if "," in token or " " in token:  # two Authorization headers, or junk after the token
        raise TokenRefused(ErrorCode.TOKEN_MALFORMED, "The access token is malformed.")
    return token


async def to_context(
    headers: Headers,
    peer: cv.Address,
    request: Original,
    *,
    config: GatewayConfig,
    verifier: TokenVerifier | None,
    draft: SignInDraft,
) -> SignInContext:
    """Fill `draft` from the subrequest and build its SignInContext.

    Raises TokenRefused (no or a refused token), InvalidRequest (a malformed value, an
    unmapped host, a claim of the wrong type), or `Unauthenticated` (no token verification
    configured and no trusted identity headers). What was read before a failure stays in
    the draft, for the audit record of the refusal.
    """
    draft.ip = client_ip(peer, headers.get("x-forwarded-for"), config.network, peer_listed=False)
    app = application_id(_NO_EXTENSIONS, request.host, config.application)
    draft.application_id = cv.ident(app, "application")
    draft.client_app_type = client_app_type(request.path, headers, config.client_app)
    acr_values = config.step_up.acr_values
    if verifier is None:
        read_identity(draft, _NO_METADATA, headers, peer, config.identity, acr_values)
    else:
        claims = await verifier.verify(bearer_token(headers))
        read_token(draft, claims, config.identity.jwt, acr_values, CLAIMS_SOURCE)
    read_signals(draft, headers, _NO_METADATA, config)
    return draft.context()


def peer_address(peername: object) -> cv.Address:
    """The connection's peer (a socket address tuple), parsed; refused when not an IP."""
    host = peername[0] if isinstance(peername, tuple) and peername else ""
    address = cv.ip_address(str(host), "connection peer")
    if address[1] is None:
        raise InvalidRequest("connection peer", f"not an IPv4 or IPv6 address: {host!r}")
    return address
