"""The process runtime: what turns the decision path and its ways in into a running service.

`app` is the composition root (builds one worker's server from its parts and runs it until
SIGTERM), `workers` the supervisor of `--workers N`, `reload` the policy hot reload, and
`risk` the worker's risk assessor with its metrics. The ways in (`pdp.server`,
`pdp.gateway`) know nothing of processes, signals or files; this package wires them.
"""
