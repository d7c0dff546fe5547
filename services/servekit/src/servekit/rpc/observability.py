"""What a gRPC call leaves behind besides its answer, as an HTTP request does: its line in the
access log (servekit.rest.access_log) and its span, named and attributed by OpenTelemetry's RPC
semantic conventions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc

from servekit.errors import ServekitError
from servekit.metrics.names import GRPC_METHOD, GRPC_SERVICE, grpc_endpoint
from servekit.rest.access_log import remember_error
from servekit.rest.body import CLIENT_CLOSED
from servekit.rpc.status import grpc_code

#: The protocol's probes, which get no span (a kubelet or a client polls them; REST's alike).
UNTRACED = frozenset(grpc_endpoint(method) for method in ("ServerLive", "ServerReady", "ModelReady"))


def rpc_attributes(endpoint: str, status: int, error: ServekitError | None) -> dict[str, Any]:
    """A call's span attributes, by OpenTelemetry's RPC semantic conventions; ``error.type`` is
    the error code of a call answered with one, as the access log names it."""
    code = grpc_code(status)
    if status == CLIENT_CLOSED:
        late = error is not None and error.error == "deadline_exceeded"
        code = grpc.StatusCode.DEADLINE_EXCEEDED if late else grpc.StatusCode.CANCELLED
    attributes: dict[str, Any] = {
        "rpc.system": "grpc",
        "rpc.service": GRPC_SERVICE,
        "rpc.method": endpoint.rsplit("/", 1)[1],
        "rpc.grpc.status_code": code.value[0],
    }
    if error is not None:
        attributes["error.type"] = error.error
    return attributes


def access_scope(
    endpoint: str, request: Any, context: Any, metadata: Mapping[str, str], error: ServekitError | None
) -> dict[str, Any]:
    """What the access log reads of an HTTP request's scope, for a gRPC call (servekit.rest.access_log)."""
    headers = [(b"content-length", str(request.ByteSize()).encode())]
    if "user-agent" in metadata:
        headers.append((b"user-agent", metadata["user-agent"].encode("latin-1", "replace")))
    peer = context.peer() or ""  # "ipv4:10.1.2.3:51234", "ipv6:[::1]:51234"
    host = peer.split(":", 1)[-1].rsplit(":", 1)[0].strip("[]") if ":" in peer else ""
    scope: dict[str, Any] = {
        "type": "grpc",
        "method": GRPC_METHOD,
        "path": endpoint,
        "http_version": "2",
        "headers": headers,
        "client": (host, 0) if host else None,
    }
    if error is not None:
        remember_error(scope, error)
    return scope
