"""The gRPC transport: proto in, one call to the shared decision path, proto out.

`convert_in` validates an EvaluateRequest into a `SignInContext`, `convert_out` turns a
`Decision` into an EvaluateResponse, `errors` maps domain errors to gRPC status codes in one
table, `service` is the servicer and `app` the composition root that builds and runs it.
Around them, the runtime: `health` (grpc.health.v1), `interceptors` (gRPC metrics), `tls`
(server credentials), `reload` (policy hot reload), `risk` (the worker's risk assessor) and
`workers` (the supervisor of `--workers N`).
"""
