"""pdp: a policy decision point for sign-ins, evaluating Conditional Access policies.

The package tree follows a request: `server` (transport in and out), `context` (the sign-in
as the engine sees it), `policy` (source documents to a compiled set), `engine` (the pure
decision function), `observability` (logs and metrics).
"""

__version__ = "0.1.0"
