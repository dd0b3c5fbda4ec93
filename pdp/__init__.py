"""pdp: a policy decision point for sign-ins, evaluating Conditional Access policies.

The package tree follows a request. Ways in map their wire input to a `context.SignInContext`
(`server`: gRPC Evaluate; `gateway`: Envoy Check; `cli`), by the rules of `context_values`;
`decide` takes the compiled `policy` set in force, asks `risk` for pdp's own signals and
runs the pure `engine`, whose `Decision` each way in maps back out; `observability` counts
and audits every call from those domain values. `runtime` wires it all into a process.
`errors` and `vocabulary` are shared by every layer.
"""

__version__ = "0.1.0"
