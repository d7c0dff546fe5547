"""Whether the gRPC port can be bound: ``mlp serve`` checks it before the app starts."""

from __future__ import annotations

import socket


class GrpcPortError(OSError):
    """The gRPC port cannot be bound; its message names the setting and the address."""

    def __init__(self, service: str, host: str, port: int, reason: str) -> None:
        super().__init__(f"{service.upper()}_GRPC_PORT={port}: cannot serve gRPC on {host}:{port}: {reason}")


def check_port(service: str, host: str, port: int) -> None:
    """GrpcPortError unless ``host:port`` can be bound now, as gRPC will bind it.

    Run before the app starts: gRPC binds in the app's lifespan, whose failure uvicorn reports
    as a traceback after gRPC's own log line.
    """
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            with socket.socket(family, kind, proto) as probe:
                # gRPC's listening sockets reuse addresses: one in TIME_WAIT does not stop it.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
    except OSError as exc:
        raise GrpcPortError(service, host, port, exc.strerror or str(exc)) from None
