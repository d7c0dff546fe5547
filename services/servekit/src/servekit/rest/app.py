"""The app factory: every service gets the same endpoints from its ServiceSpec.

It builds the parts from the settings (``rest.parts``), then the app around them: its lifespan
(``rest.lifespan``), middleware (``rest.middleware``), document and routes (``rest.prediction_routes``,
``rest.model_routes``, ``rest.open_inference``), in that order.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.metrics import ServiceMetrics
from servekit.rest import schemas
from servekit.rest.auth import is_open, read_only_opens
from servekit.rest.docs import install_docs
from servekit.rest.errors import install_error_handlers
from servekit.rest.lifespan import service_lifespan
from servekit.rest.middleware import install_middleware
from servekit.rest.model_routes import add_model_routes
from servekit.rest.open_inference import add_open_inference_routes
from servekit.rest.openapi import operation_id, with_request_models
from servekit.rest.parts import service_parts
from servekit.rest.prediction_routes import ERROR_RESPONSES, add_prediction_routes
from servekit.runtime import ArtifactSource, VersionProbe
from servekit.settings import ServiceSettings, load_settings
from servekit.spans import RequestSpans
from servekit.spec import ServiceSpec


def create_app(
    spec: ServiceSpec,
    settings: ServiceSettings | None = None,
    source: ArtifactSource | None = None,
    metrics: ServiceMetrics | None = None,
    probe: VersionProbe | None = None,
    *,
    shadow_source: ArtifactSource | None = None,
    canary_source: ArtifactSource | None = None,
    grpc_host: str = "127.0.0.1",
    spans: RequestSpans | None = None,
) -> FastAPI:
    """Build the FastAPI app of ``spec``.

    ``source`` overrides where the model comes from and ``probe`` which version it should
    be now; by default both ask the registry, and only an alias URI is followed.
    ``shadow_source`` and ``canary_source`` likewise override where ``<SVC>_SHADOW_MODEL_URI``'s
    and ``<SVC>_CANARY_MODEL_URI``'s models come from.
    With ``<SVC>_GRPC_PORT`` set, the lifespan also serves the Open Inference Protocol over gRPC
    on ``grpc_host`` (``app.state.grpc_port`` is the port bound). ``spans`` overrides where the
    requests' spans go: by default the collector the OpenTelemetry variables name, if any.
    """
    settings = settings or load_settings(spec.name)
    parts = service_parts(
        spec,
        settings,
        source,
        metrics,
        probe,
        shadow_source=shadow_source,
        canary_source=canary_source,
        spans=spans,
    )
    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1",
        lifespan=service_lifespan(parts, grpc_host),
        # Served by install_docs, with their scripts from the service rather than a CDN.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        # Starlette answers /predict/ with a 307 to a URL it builds from the request's Host, which
        # generated clients do not follow (nor should a POST body be sent on to a guessed host):
        # a path no route has is the 404 naming where the endpoints are listed.
        redirect_slashes=False,
    )
    #: Called as the server begins to stop, before HTTP drains (``mlp serve``), else as the lifespan
    #: ends: gRPC takes no new calls from then on, and its calls in flight get the one shutdown grace
    #: alongside HTTP's requests, not after them (two graces in a row outlast Kubernetes' wait).
    app.state.begin_shutdown = lambda: None  # no gRPC server: nothing beside uvicorn's own
    app.state.runtime = parts.runtime
    app.state.shadow = parts.shadow
    app.state.canary = parts.canary
    app.state.predictor = parts.predictor
    app.state.admission = parts.admission
    app.state.metrics = parts.metrics
    app.state.settings = settings
    app.state.api_keys = parts.keys
    cors_origins = settings.cors_origins()
    install_error_handlers(app, cors_origins=cors_origins)
    install_middleware(app, parts, cors_origins)

    instance_model: type[BaseModel] = spec.request
    batch_model = schemas.batch_request(instance_model, settings.max_batch_size)
    # One codec for the /v2 routes and their document: it takes about 15 ms to build.
    codec = OpenInferenceCodec.of_service(spec)
    app.openapi = with_request_models(  # type: ignore[method-assign]
        app,
        [instance_model, batch_model, codec.documented_request(settings.max_batch_size)],
        needs_key=None if parts.keys is None else lambda path: not is_open(path),
        read_only_opens=read_only_opens,
    )
    install_docs(app)
    add_prediction_routes(app, parts, instance_model=instance_model, batch_model=batch_model)
    add_model_routes(app, parts)
    add_open_inference_routes(
        app, spec, codec, parts.runtime, parts.predictor, settings=settings, error_responses=ERROR_RESPONSES
    )
    return app
