"""The lifespan: what runs beside the requests while the app serves, and how it all stops.

The model loaders (served, shadow, canary), the event loop's lag, the live evaluations and the
canary's share run as tasks; with ``<SVC>_GRPC_PORT`` set, so does the Open Inference gRPC server,
on the same loop and with the same parts as HTTP. On the way out gRPC drains beside HTTP (one
grace, not two), then the tasks stop and the last spans are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from servekit.rest.parts import ServiceParts

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def service_lifespan(parts: ServiceParts, grpc_host: str) -> Lifespan:
    """The lifespan of the app serving ``parts``, for ``FastAPI(lifespan=...)``.

    With ``<SVC>_GRPC_PORT`` set it serves gRPC on ``grpc_host``, sets ``app.state.grpc_port`` to
    the port bound and ``app.state.begin_shutdown`` to the start of gRPC's drain. Starlette calls it
    with the app itself, so it needs no reference to an app not built yet.
    """
    spec, settings, metrics, runtime = parts.spec, parts.settings, parts.metrics, parts.runtime
    shadow, shadow_quality, canary, spans = parts.shadow, parts.shadow_quality, parts.canary, parts.spans

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.model_ready.set(0)
        tasks = [
            asyncio.create_task(runtime.run(), name=f"{spec.name}-model-loader"),
            asyncio.create_task(
                parts.admission.loop_lag.run(metrics.event_loop_lag.observe), name=f"{spec.name}-loop-lag"
            ),
            asyncio.create_task(parts.live_quality.run(), name=f"{spec.name}-live-quality"),
        ]
        if shadow is not None:
            shadow.start()
            tasks.append(asyncio.create_task(shadow.runtime.run(), name=f"{spec.name}-shadow-loader"))
        if shadow_quality is not None:
            tasks.append(asyncio.create_task(shadow_quality.run(), name=f"{spec.name}-shadow-quality"))
        if canary is not None:
            tasks.append(asyncio.create_task(canary.runtime.run(), name=f"{spec.name}-canary-loader"))
            tasks.append(
                asyncio.create_task(
                    canary.follow_share(settings.model_refresh_seconds), name=f"{spec.name}-canary-share"
                )
            )
        grpc_stop: asyncio.Task[None] | None = None
        if settings.grpc_port:
            from servekit.rpc.server import OpenInferenceServicer, start_server  # grpc only if asked

            servicer = OpenInferenceServicer(
                spec,
                runtime,
                parts.predictor,
                settings,
                metrics,
                access_log=parts.access_log,
                api_keys=parts.keys,
                spans=spans,
            )
            grpc_server, app.state.grpc_port = await start_server(servicer, grpc_host, settings.grpc_port)

            def begin_shutdown() -> None:
                nonlocal grpc_stop
                if grpc_stop is None:
                    stop = servicer.stop(grpc_server)
                    grpc_stop = asyncio.create_task(stop, name=f"{spec.name}-grpc-stop")

            app.state.begin_shutdown = begin_shutdown
        try:
            yield
        finally:
            app.state.begin_shutdown()  # unless mlp serve's server began it alongside HTTP's drain
            if grpc_stop is not None:
                await grpc_stop
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if shadow is not None:
                await asyncio.to_thread(shadow.stop)
            if spans is not None:
                await asyncio.to_thread(spans.shutdown)  # the last requests' spans sent

    return lifespan
