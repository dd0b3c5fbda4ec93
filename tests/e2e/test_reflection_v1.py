"""Server reflection answers under its stable name, grpc.reflection.v1, as well as v1alpha.

The requests are written as raw protobuf bytes from the v1 protocol's field numbers
(`list_services` is field 7, `file_containing_symbol` field 4), so the test does not
borrow the server's own v1alpha classes to speak v1.
"""

from __future__ import annotations

import grpc
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2
from pdp_process import PdpProcess

V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def string_field(number: int, value: str) -> bytes:
    """One length-delimited protobuf field (short values: one-byte length)."""
    raw = value.encode()
    assert len(raw) < 128
    return bytes([number << 3 | 2, len(raw)]) + raw


def reflect_v1(address: str, request: bytes) -> reflection_pb2.ServerReflectionResponse:
    """One v1 reflection exchange on the raw method path."""
    with grpc.insecure_channel(address) as channel:
        call = channel.stream_stream(
            V1_METHOD,
            request_serializer=lambda raw: raw,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
        [response] = list(call(iter([request]), timeout=10))
        return response


def test_v1_lists_every_service(pdp: PdpProcess) -> None:
    """A v1 client gets the same service list, with both reflection versions in it."""
    listed = reflect_v1(pdp.address, string_field(7, ""))
    names = {s.name for s in listed.list_services_response.service}
    assert {"pdp.v1.PolicyDecisionService", "grpc.health.v1.Health"} <= names
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= (
        names
    )


def test_v1_describes_itself_and_the_api(pdp: PdpProcess) -> None:
    """A v1 client can fetch the descriptors of the decision API and of v1 reflection itself."""
    for symbol, package, service in [
        ("pdp.v1.PolicyDecisionService", "pdp.v1", "PolicyDecisionService"),
        ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1", "ServerReflection"),
    ]:
        response = reflect_v1(pdp.address, string_field(4, symbol))
        assert not response.HasField("error_response"), response.error_response
        files = [
            descriptor_pb2.FileDescriptorProto.FromString(raw)
            for raw in response.file_descriptor_response.file_descriptor_proto
        ]
        methods = {
            (f.package, s.name): {m.name: m.input_type for m in s.method}
            for f in files
            for s in f.service
        }
        assert (package, service) in methods, symbol
    v1 = methods[("grpc.reflection.v1", "ServerReflection")]
    assert v1 == {"ServerReflectionInfo": ".grpc.reflection.v1.ServerReflectionRequest"}
