"""The standard gRPC health service (``grpc.health.v1.Health``), following the model's readiness.

Kubernetes' gRPC probes, grpc-health-probe and load balancers (Envoy, GKE's) ask this service,
not the protocol's ``ServerReady``. The status is ``/readyz``'s: NOT_SERVING until the model is
loaded, SERVING after, for the server as a whole (service ``""``) and for
``inference.GRPCInferenceService`` by name; another name is NOT_FOUND (Watch: SERVICE_UNKNOWN),
as the protocol says. Read at each call rather than pushed: readiness has one source, the runtime.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc  # type: ignore[import-untyped]

from servekit.metrics.names import GRPC_SERVICE

if TYPE_CHECKING:
    from servekit.runtime import ModelRuntime

#: The health service's own name, as reflection lists it.
HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
#: How often a Watch looks again at the readiness (a model loads in seconds).
WATCH_INTERVAL_SECONDS = 1.0

Status = health_pb2.HealthCheckResponse


class ReadinessHealth:
    """``grpc.health.v1.Health`` answering from the model runtime's readiness."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime

    def status(self, service: str) -> int | None:
        """The serving status of ``service``; None for a service not served here."""
        if service not in ("", GRPC_SERVICE):
            return None
        serving: int = Status.SERVING if self.runtime.model is not None else Status.NOT_SERVING
        return serving

    async def Check(self, request: Any, context: Any) -> Any:  # noqa: N802
        status = self.status(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no service {request.service!r} here")
        return Status(status=status)

    async def Watch(self, request: Any, context: Any) -> None:  # noqa: N802
        last = None
        while True:
            status = self.status(request.service)
            status = Status.SERVICE_UNKNOWN if status is None else status
            if status != last:
                await context.write(Status(status=status))
                last = status
            await asyncio.sleep(WATCH_INTERVAL_SECONDS)


def add_health(server: grpc.aio.Server, runtime: ModelRuntime) -> ReadinessHealth:
    health = ReadinessHealth(runtime)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    return health
