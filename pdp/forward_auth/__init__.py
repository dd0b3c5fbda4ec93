"""The forward-auth way in: an HTTP endpoint NGINX, Traefik, Caddy and their kin ask per request.

A gateway that speaks forward-auth sends pdp a subrequest (`GET /authz`) carrying the
original request's headers and acts on the status: 2xx lets the request through, 401 and
403 refuse it. `request_in` maps the subrequest straight to a `SignInContext` (the original
host, URI, method and client address from the `X-Forwarded-*` / `X-Original-*` headers under
the gateway config's rules, the bearer token verified by `pdp.tokens` and its claims mapped
by `pdp.gateway.identity` exactly as Check maps jwt_authn's), `pdp.decide.Decider` decides,
and `answer` maps the `Decision` to 200 with the `x-pdp-*` headers, 401 with the step-up
challenge, or 403 with the JSON body. `server` is the HTTP server (aiohttp) on the gRPC
server's event loop; every call is observed once by the shared `DecisionObserver`.
"""
