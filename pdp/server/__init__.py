"""The gRPC API's way in and out: EvaluateRequest -> SignInContext -> Decision -> EvaluateResponse.

`convert_in` maps the request to a `SignInContext` once, `convert_out` maps the `Decision` to
the response once, `service` is the servicer between them, and `status` is the one table
from pdp's error codes to gRPC status codes. Around them, gRPC's own parts: `grpc_server`
(options, limits, services, port), `health` (grpc.health.v1), `reflection`, `calls` (other
services' calls counted and their streams bounded) and `tls` (server credentials). Nothing
here decides or reads a clock twice.
"""
