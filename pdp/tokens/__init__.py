"""Bearer tokens pdp verifies itself, for the ways in whose gateway verifies none.

Envoy's jwt_authn verifies Entra tokens before Check sees them; NGINX, Traefik and Caddy do
not, so the forward-auth endpoint hands pdp the raw `Authorization: Bearer` token. `verify`
checks it (signature against the issuer's JWKS, an algorithm allow-list, `iss`, `aud`,
`tid`, `exp`, `nbf`, `iat` with a small clock skew) with PyJWT and `cryptography`, and
returns its claims as JSON values for `pdp.gateway.identity.read_token`; `jwks` keeps the
issuer's signing keys (fetched over verified TLS, cached, refreshed on an unknown `kid`,
bounded); `settings` is what the gateway config's `tokens` section says. A refused token
raises `pdp.errors.TokenRefused` whose code names the reason, never the token.
"""
