"""gRPC server reflection, in both protocol versions clients speak: v1 and v1alpha.

`grpc.reflection.v1` is the stable name of the protocol (newer grpcurl, grpcui, Postman and
gRPC's own tools ask for it first); `grpc.reflection.v1alpha` is the older one (grpcurl up
to 1.8, ghz). grpcio-reflection ships only v1alpha, and the two are the same messages under
two package names (v1 was published as a copy of v1alpha), so one servicer answers both:
v1 calls are decoded and encoded with v1alpha's message classes. v1's file descriptor is
v1alpha's renamed, added to the descriptor pool so that a client can also describe it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection_pb2 as v1alpha

from pdp.limits import InFlight
from pdp.server.calls import register

V1ALPHA_SERVICE: Final[str] = reflection.SERVICE_NAME  # grpc.reflection.v1alpha.ServerReflection
V1_PACKAGE: Final = "grpc.reflection.v1"
V1_SERVICE: Final = f"{V1_PACKAGE}.ServerReflection"
REFLECTION_SERVICES: Final = (V1_SERVICE, V1ALPHA_SERVICE)
_V1_FILE: Final = "grpc/reflection/v1/reflection.proto"


def add_reflection(
    service_names: Iterable[str], server: grpc.aio.Server, streams: InFlight
) -> None:
    """Serve reflection v1 and v1alpha on `server`, listing `service_names` and themselves.

    Both are counted like every call, and their streams share the budget `streams`.
    """
    _add_v1_descriptor(descriptor_pool.Default())
    names = tuple(dict.fromkeys((*service_names, *REFLECTION_SERVICES)))
    servicer = reflection.aio.ReflectionServicer(names)
    handler = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=v1alpha.ServerReflectionRequest.FromString,
        response_serializer=v1alpha.ServerReflectionResponse.SerializeToString,
    )
    for service in REFLECTION_SERVICES:
        register(server, service, {"ServerReflectionInfo": handler}, streams)


def _add_v1_descriptor(pool: descriptor_pool.DescriptorPool) -> None:
    """Put v1's file descriptor (v1alpha's, renamed) in `pool`, once."""
    try:
        pool.FindFileByName(_V1_FILE)
    except KeyError:
        pass
    else:
        return  # added before, or a grpcio-reflection that ships v1 is loaded
    proto = descriptor_pb2.FileDescriptorProto()
    v1alpha.DESCRIPTOR.CopyToProto(proto)
    old_package = proto.package
    proto.name, proto.package = _V1_FILE, V1_PACKAGE
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(f".{old_package}."):
                field.type_name = f".{V1_PACKAGE}." + field.type_name.removeprefix(
                    f".{old_package}."
                )
    for service in proto.service:
        for method in service.method:
            for attribute in ("input_type", "output_type"):
                name = getattr(method, attribute)
                setattr(method, attribute, name.replace(f".{old_package}.", f".{V1_PACKAGE}.", 1))
    pool.Add(proto)
