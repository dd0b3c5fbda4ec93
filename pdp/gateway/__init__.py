"""Envoy's way in and out: `envoy.service.auth.v3.Authorization/Check` over pdp's decider.

A gateway (Envoy, Istio, Emissary, Gloo, Contour) asks `Check` about each HTTP request;
`check_in` maps the CheckRequest straight to a `SignInContext` under a `GatewayConfig`
(`identity` reads the token or identity headers, `signals` the configured headers and
metadata, into a `draft`), `pdp.decide.Decider` decides exactly as it does for Evaluate, and
`check_out` maps the `Decision` to Envoy's answer (OK with upstream headers, 401 step-up
challenge, 403 deny). `service.add_ext_authz` puts the servicer on the same gRPC server.
"""
