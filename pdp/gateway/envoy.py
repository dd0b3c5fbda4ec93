"""The Envoy API messages pdp uses, imported in one place from `xds-protos`.

xds-protos ships generated modules without type information, so everything here is `Any`
to mypy; the ignores say so once instead of in every module (with `unused-ignore`, so
they stay quiet when a mypy override for `envoy.*` is configured instead).
"""

from __future__ import annotations

from envoy.config.core.v3 import base_pb2  # type: ignore[import-untyped, unused-ignore]
from envoy.service.auth.v3 import (  # type: ignore[import-untyped, unused-ignore]
    attribute_context_pb2,
    external_auth_pb2,
    external_auth_pb2_grpc,
)

auth = external_auth_pb2
auth_grpc = external_auth_pb2_grpc
attributes = attribute_context_pb2

# HeaderValueOption.append_action: replace every value a header has (Envoy's setCopy).
OVERWRITE: int = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD

__all__ = ["OVERWRITE", "attributes", "auth", "auth_grpc"]
