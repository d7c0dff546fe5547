"""gRPC server reflection, describing the protocol as KServe's ``grpc_predict_v2.proto`` does.

grpcurl, Postman and grpcui ask a server for its services and messages instead of reading a
``.proto`` file. The messages servekit generates live in its own package
(``servekit.open_inference``, see ``open_inference.proto``), so what reflection describes is
built from them: the same file, renamed to KServe's ``grpc_predict_v2.proto`` in package
``inference``, with the ``GRPCInferenceService`` block of the RPCs served. Same field names and
numbers, so a client built from this description calls the server as KServe's clients do.

The description lives in a pool of its own: protobuf's default pool may hold a client's
``inference`` package already (tritonclient in the same process), which would refuse it.
``python -m servekit.rpc.reflection FILE`` writes it as a descriptor set, for
``grpcurl -protoset FILE`` where reflection is not reachable.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection, reflection_pb2  # type: ignore[import-untyped]

from servekit.metrics.names import GRPC_METHODS, GRPC_SERVICE
from servekit.rpc import open_inference_pb2 as pb

#: KServe's name of the protocol's file, and its package.
PROTOCOL_FILE = "grpc_predict_v2.proto"
PROTOCOL_PACKAGE = GRPC_SERVICE.rsplit(".", 1)[0]  # "inference"


def _renamed(messages: Iterable[descriptor_pb2.DescriptorProto], old: str, new: str) -> None:
    for message in messages:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
        _renamed(message.nested_type, old, new)


def protocol_file() -> descriptor_pb2.FileDescriptorProto:
    """servekit's messages as KServe's ``grpc_predict_v2.proto``, with the service block."""
    file = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(file)
    old, new = f".{file.package}.", f".{PROTOCOL_PACKAGE}."
    file.name, file.package = PROTOCOL_FILE, PROTOCOL_PACKAGE
    _renamed(file.message_type, old, new)
    service = file.service.add(name=GRPC_SERVICE.rsplit(".", 1)[1])
    for method in GRPC_METHODS:
        types = {"input_type": f"{new}{method}Request", "output_type": f"{new}{method}Response"}
        service.method.add(name=method, **types)
    return file


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The files reflection describes: the protocol's, the health service's and its own."""
    files = descriptor_pb2.FileDescriptorSet()
    for module in (health_pb2, reflection_pb2):
        module.DESCRIPTOR.CopyToProto(files.file.add())
    files.file.append(protocol_file())
    return files


def add_reflection(server: grpc.aio.Server, services: Sequence[str]) -> None:
    """Reflection of ``services`` (and of itself) on ``server``."""
    pool = descriptor_pool.DescriptorPool()
    for file in descriptor_set().file:
        pool.Add(file)
    reflection.enable_server_reflection((*services, reflection.SERVICE_NAME), server, pool=pool)


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m servekit.rpc.reflection FILE (a descriptor set for grpcurl -protoset)")
        return 2
    with open(args[0], "wb") as out:
        out.write(descriptor_set().SerializeToString())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
