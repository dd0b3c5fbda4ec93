"""Envoy external authorization: `envoy.service.auth.v3.Authorization/Check` over pdp's decider.

A gateway (Envoy, Istio, Emissary, Gloo, Contour) asks `Check` about each HTTP request;
`check_in` translates the CheckRequest into an EvaluateRequest under a `GatewayConfig`,
`pdp.decide.Decider` decides exactly as it does for `Evaluate`, and `check_out` turns the
EvaluateResponse into Envoy's answer (OK with upstream headers, 401 step-up challenge,
403 deny). `service.add_ext_authz` puts the servicer on the same gRPC server.
"""
