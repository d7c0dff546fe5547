"""The app factory: every service gets the same endpoints from its ServiceSpec."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from functools import partial
from typing import Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, TypeAdapter

from servekit import logs
from servekit.admission import AdmissionLimit, in_worker_thread
from servekit.auth import api_keys
from servekit.capture import PredictionCapture
from servekit.card import render as render_card
from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.errors import ServekitError
from servekit.inference import (
    batch_body,
    model_ref,
    run_model,
    validate_batch_json,
    validate_json,
)
from servekit.live_quality import LiveQualityFollower, registry_reader
from servekit.loading import follows_an_alias, registry_model_tag, registry_source
from servekit.metrics import ServiceMetrics, loop_lag
from servekit.metrics.canary import CanaryMetrics
from servekit.metrics.names import CANARY, STABLE
from servekit.metrics.quality import QualityCollector, ShadowQualityCollector
from servekit.metrics.shadow import ShadowMetrics
from servekit.model import OUTSIDE_TRAINING, Record, ServedModel
from servekit.rest import schemas
from servekit.rest.access_log import AccessLog
from servekit.rest.admission import AdmissionMiddleware
from servekit.rest.auth import ApiKeyMiddleware, is_open
from servekit.rest.body import read_body, refused_as_declared
from servekit.rest.compression import CompressionMiddleware
from servekit.rest.cors import allow_cross_origin
from servekit.rest.docs import install_docs
from servekit.rest.errors import install_error_handlers
from servekit.rest.open_inference import add_open_inference_routes
from servekit.rest.openapi import ROUTING_PARAMETERS, error_response, json_body, with_request_models
from servekit.rest.prefix import PathPrefixMiddleware
from servekit.rest.query import PREDICTION_PARAMETERS, prediction_options
from servekit.rest.request_id import RequestIdMiddleware
from servekit.rest.responses import json_response
from servekit.rest.routes import request_route
from servekit.rest.security_headers import SecurityHeadersMiddleware
from servekit.rest.telemetry import TelemetryMiddleware, Timings, timings_of
from servekit.routing import (
    ALONE,
    SHARE_TAG,
    UNROUTED,
    VARIANT_HEADER,
    CanaryRouter,
    Choice,
    Route,
    no_canary,
)
from servekit.runtime import ArtifactSource, ModelRuntime, RuntimeMetrics, VersionProbe
from servekit.settings import ServiceSettings, load_settings
from servekit.shadow import ShadowScorer
from servekit.spans import RequestSpans
from servekit.spans import from_environment as request_spans
from servekit.spec import ServiceSpec
from servekit.training.versions import AS_SHADOW

#: Batches up to this size run on the event loop (faster than a thread hop for
#: sub-millisecond work); larger ones run in a worker thread so probes stay responsive.
INLINE_BATCH_LIMIT = 16

#: explain and reasons (each once: any other parameter is refused), then the routing headers.
PREDICTION_ROUTE_PARAMETERS = [*PREDICTION_PARAMETERS, *ROUTING_PARAMETERS]
CARD_VARIANT_QUERY = Query(STABLE, description="The served model's card, or (during a rollout) the canary's")

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorBody, "description": "Body is not in the coding its Content-Encoding names"},
    408: {
        "model": schemas.ErrorBody,
        "description": "Body not in within <SVC>_BODY_TIMEOUT_SECONDS of the headers; connection closed",
    },
    413: {"model": schemas.ErrorBody, "description": "Body or batch larger than the limit"},
    404: {"model": schemas.ErrorBody, "description": "X-Model-Variant: canary where no canary is served"},
    415: {
        "model": schemas.ErrorBody,
        "description": "Content-Encoding other than identity, gzip or deflate; or a body that is not "
        "JSON, with a Content-Type naming another media type",
    },
    422: {"model": schemas.ErrorBody, "description": "Invalid input; names each field and problem"},
    429: {
        "model": schemas.ErrorBody,
        "description": "With API keys: this client has its share of the places in flight (Retry-After)",
    },
    503: {
        "model": schemas.ErrorBody,
        "description": (
            "Model not loaded yet, or the replica is at its limit of requests or of batch instances "
            "in flight (Retry-After)"
        ),
    },
    500: {"model": schemas.ErrorBody, "description": "Unexpected failure; the message names the request id"},
}
NOT_LOADED_RESPONSE = {"model": schemas.ErrorBody, "description": "Model not loaded yet (Retry-After)"}


class Predictor:
    """Runs validated records through the model (``servekit.inference.run_model``) off the loop if big.

    A batch run off the loop holds its instances in the admission's instance limit, and its
    request's place, while it waits for and runs in a worker thread, until the thread is done even
    if its caller stops waiting; one that would pass the limit is refused with 503.

    With a canary, the router picks the model that answers each request, and each variant's
    result and model time are counted (``servekit.routing``).
    """

    def __init__(
        self,
        runtime: ModelRuntime,
        metrics: ServiceMetrics,
        admission: AdmissionLimit,
        *,
        shadow: ShadowScorer | None = None,
        canary: CanaryRouter | None = None,
        capture: PredictionCapture | None = None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.admission = admission
        self.shadow = shadow
        self.canary = canary
        self.capture = capture

    def run(
        self,
        model: ServedModel,
        records: Sequence[Record],
        explain: bool,
        timings: Timings,
        *,
        stable: ServedModel,
        variant: str,
        reasons: int = 0,
    ) -> list[dict[str, Any]]:
        explained = None if self.canary is None else partial(self.canary.metrics.count_explanations, variant)
        return run_model(
            model,
            records,
            explain,
            timings,
            self.metrics,
            served=stable,
            explained=explained,
            reasons=reasons,
        )

    def choose(self, stable: ServedModel, route: Route) -> Choice:
        if self.canary is not None:
            return self.canary.choose(stable, route)
        if route.variant == CANARY:
            raise no_canary(f"header.{VARIANT_HEADER}", self.admission.service)
        return Choice(STABLE, stable, ALONE)

    async def __call__(
        self,
        records: Sequence[Record],
        explain: bool,
        timings: Timings,
        route: Route = UNROUTED,
        reasons: int = 0,
    ) -> tuple[ServedModel, list[dict[str, Any]]]:
        stable = self.runtime.require()
        variant, model, routed = self.choose(stable, route)
        # The stable model bins the inputs for drift whichever model answers: its baseline is the one
        # published, and the inputs do not depend on the model. Outcomes and attributions depend
        # on it: the service's series hold the stable model's, the variant series both.
        inline = len(records) <= INLINE_BATCH_LIMIT
        # Admitted before the model's result is counted: a refusal is the replica's load, not a
        # failure of the variant chosen (which would count towards stopping a canary).
        release = None if inline else self.admission.hold(len(records))
        start = time.perf_counter()
        try:
            work = partial(
                self.run, model, records, explain, timings, stable=stable, variant=variant, reasons=reasons
            )
            # Off the loop, the instances and the request's place are held until the thread is
            # done, even if this caller is cancelled first (a gRPC deadline): the model goes on.
            predictions = work() if release is None else await in_worker_thread(work, release)
        except Exception as exc:
            if self.canary is not None:
                failed = not isinstance(exc, ServekitError) or exc.status_code >= 500
                self.canary.answered(variant, model, time.perf_counter() - start, failed=failed)
            raise
        outcomes = [model.outcome(p) for p in predictions]
        if model is stable:
            self.metrics.count_outcomes(outcomes)
        if self.canary is not None:
            self.canary.answered(variant, model, time.perf_counter() - start, failed=False)
            self.canary.metrics.count_outcomes(variant, outcomes)
            # Each variant's own ranges: the service's series counts the stable model's answers only.
            self.canary.metrics.count_outside_training(
                variant, (p.get(OUTSIDE_TRAINING) for p in predictions)
            )
        captured = self.capture is not None and self.capture(model, variant, routed, records, predictions) > 0
        if self.shadow is not None:
            captured_as = (logs.request_id.get(), routed) if captured else None
            self.shadow.submit(model, records, predictions, variant=variant, captured_as=captured_as)
        return model, predictions


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
    keys = api_keys(spec.name, settings.api_keys_file)  # before anything starts: a bad file stops here
    metrics = metrics or ServiceMetrics(spec.name, watch_inputs=settings.watch_inputs)
    if keys is not None:
        metrics.watch_api_keys(keys)
    reader = None
    if source is None:
        source, found_probe = registry_source(
            spec.name, settings.resolved_model_uri(), settings.mlflow_tracking_uri
        )
        probe = probe or found_probe
        reader = registry_reader(spec.name, spec.recipe.primary_metric, settings.mlflow_tracking_uri)
    runtime = model_runtime(spec, settings, source, metrics, probe)
    live_quality = LiveQualityFollower(
        runtime, spec.recipe.primary_metric, reader, settings.live_evaluation_refresh_seconds
    )
    metrics.registry.register(QualityCollector(metrics.names, live_quality.figures))
    capture = None
    if settings.capture_percent:
        capture = PredictionCapture(
            settings.capture_percent,
            log_format=settings.log_format,
            on_captured=metrics.captured_instances.inc,
            on_failed=metrics.capture_failures.inc,
        )
    shadow = shadow_scorer(spec, settings, metrics, shadow_source, capture=capture)
    shadow_quality = shadow_comparison(
        spec, settings, metrics, shadow, from_registry=shadow_source is None, served=runtime
    )
    canary = canary_router(spec, settings, metrics, canary_source)
    # One admission for HTTP and gRPC alike: both answer on this process's one event loop.
    limit, instance_limit = settings.max_concurrent_requests, settings.max_concurrent_instances
    limit = spec.max_concurrent_requests if limit is None else limit
    admission = AdmissionLimit(
        spec.name,
        limit,
        instance_limit=spec.max_concurrent_instances if instance_limit is None else instance_limit,
        client_limit=client_limit(settings.max_concurrent_requests_per_client, limit, keys is not None),
        on_refused=lambda which: metrics.prediction_requests_shed.labels(which).inc(),
    )
    # Read when scraped: no lock taken on the request path to keep a copy of the counts.
    metrics.prediction_requests_in_flight.set_function(lambda: admission.in_flight)
    metrics.prediction_instances_in_flight.set_function(lambda: admission.instances_in_flight)
    predictor = Predictor(runtime, metrics, admission, shadow=shadow, canary=canary, capture=capture)
    # One log and one line budget for HTTP and gRPC alike.
    access_log = AccessLog(
        settings.access_log,
        settings.access_log_max_per_second,
        on_left_out=metrics.access_log_lines_left_out.inc,
    )

    # Sent to an OpenTelemetry collector if the environment names one; else None, nothing imported.
    spans = spans or request_spans(spec.name)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        metrics.model_ready.set(0)
        tasks = [
            asyncio.create_task(runtime.run(), name=f"{spec.name}-model-loader"),
            asyncio.create_task(loop_lag.watch(metrics.event_loop_lag.observe), name=f"{spec.name}-loop-lag"),
            asyncio.create_task(live_quality.run(), name=f"{spec.name}-live-quality"),
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
                spec, runtime, predictor, settings, metrics, access_log=access_log, api_keys=keys, spans=spans
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

    app = FastAPI(
        title=spec.title,
        description=spec.description,
        version="1",
        lifespan=lifespan,
        # Served by install_docs, with their scripts from the service rather than a CDN.
        docs_url=None,
        redoc_url=None,
    )
    #: Called as the server begins to stop, before HTTP drains (``mlp serve``), else as the lifespan
    #: ends: gRPC takes no new calls from then on, and its calls in flight get the one shutdown grace
    #: alongside HTTP's requests, not after them (two graces in a row outlast Kubernetes' wait).
    app.state.begin_shutdown = lambda: None  # no gRPC server: nothing beside uvicorn's own
    app.state.runtime = runtime
    app.state.shadow = shadow
    app.state.canary = canary
    app.state.predictor = predictor
    app.state.admission = admission
    app.state.metrics = metrics
    app.state.settings = settings
    app.state.api_keys = keys
    cors_origins = settings.cors_origins()
    install_error_handlers(app, cors_origins=cors_origins)
    if settings.gzip_min_bytes:
        # Level 1: a 256-row explained batch shrinks about 4x in about 1 ms (level 9: 4 ms, and
        # 5% smaller). Inside telemetry, so latency and Server-Timing include the compression.
        app.add_middleware(CompressionMiddleware, minimum_size=settings.gzip_min_bytes, compresslevel=1)
    # Inside telemetry: a refused request is counted, timed and logged like any other.
    app.add_middleware(
        AdmissionMiddleware,
        limit=admission,
        root_path=settings.root_path,
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    if keys is not None:
        # Between telemetry and admission: a refusal is counted and logged, and takes no place.
        app.add_middleware(ApiKeyMiddleware, keys=keys, root_path=settings.root_path)
    app.add_middleware(
        TelemetryMiddleware,
        metrics=metrics,
        root_path=settings.root_path,
        access_log=access_log,
        spans=spans,
    )
    if settings.root_path:
        app.add_middleware(PathPrefixMiddleware, prefix=settings.root_path)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    # Outermost: a browser's preflight is answered before routing (which would 405 an OPTIONS)
    # and is not counted as a prediction request.
    allow_cross_origin(app, cors_origins)

    instance_model: type[BaseModel] = spec.request
    batch_model = schemas.batch_request(instance_model)
    single = TypeAdapter(instance_model)
    batch = TypeAdapter(batch_model)
    # One codec for the /v2 routes and their document: it takes about 15 ms to build.
    codec = OpenInferenceCodec.of_service(spec)
    app.openapi = with_request_models(  # type: ignore[method-assign]
        app,
        [instance_model, batch_model, codec.documented_request()],
        needs_key=None if keys is None else lambda path: not is_open(path),
    )
    install_docs(app)

    @request_route(
        app,
        "POST",
        "/predict",
        summary="Predict one instance",
        response_model=schemas.prediction_response(spec.response, spec.model.keeps_training_ranges),
        responses=ERROR_RESPONSES,
        openapi_extra={**json_body(instance_model), "parameters": PREDICTION_ROUTE_PARAMETERS},
    )
    async def predict(request: Request) -> Response:
        options = prediction_options(request)
        runtime.require()  # 503 before reading a body we cannot serve
        route = route_of(request)
        timings = timings_of(request.scope)
        body = await read_body(request, settings.max_body_bytes)
        with timings.phase("validate"), refused_as_declared(request, body):
            instance = validate_json(single, body)
        model, predictions = await predictor(
            [instance.model_dump()], options.explain, timings, route, options.reasons
        )
        return json_response({**predictions[0], "model": model_ref(model)})

    @request_route(
        app,
        "POST",
        "/predict/batch",
        summary="Predict a batch of instances, in order",
        response_model=schemas.batch_response(spec.response, spec.model.keeps_training_ranges),
        responses=ERROR_RESPONSES,
        openapi_extra={**json_body(batch_model), "parameters": PREDICTION_ROUTE_PARAMETERS},
    )
    async def predict_batch(request: Request) -> Response:
        options = prediction_options(request)
        runtime.require()
        route = route_of(request)
        timings = timings_of(request.scope)
        body = await read_body(request, settings.max_body_bytes)
        with timings.phase("validate"), refused_as_declared(request, body):
            records = validate_batch_json(batch, body, settings.max_batch_size, spec.name)
        model, predictions = await predictor(records, options.explain, timings, route, options.reasons)
        return json_response(batch_body(model, predictions))

    @app.get("/healthz", summary="Liveness: the process is up", response_model=schemas.Health)
    async def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get(
        "/readyz",
        summary="Readiness: the model is loaded and warmed up",
        response_model=schemas.Readiness,
        responses={503: {"model": schemas.Readiness, "description": "Model not loaded yet"}},
    )
    async def readyz() -> Response:
        if runtime.model is None:
            return json_response(
                {"status": "loading", "model": None, "error": runtime.last_error}, status_code=503
            )
        return json_response({"status": "ready", "model": model_ref(runtime.model), "error": None})

    # HEAD too, for uptime checkers and load balancers that probe without a body.
    app.add_api_route("/healthz", healthz, methods=["HEAD"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["HEAD"], include_in_schema=False)

    @app.get(
        "/model",
        summary="Model metadata: version, run, metrics, feature schema",
        response_model=schemas.ModelInfo,
        responses={503: NOT_LOADED_RESPONSE},
    )
    async def model_metadata() -> Response:
        return json_response(
            {
                **runtime.require().describe(),
                "load_seconds": runtime.load_seconds,
                "refresh": runtime.refresh_status(),
                "live_evaluation": live_quality.status(),
                "shadow": (
                    {
                        **shadow.status(),
                        "live_comparison": shadow_quality.status() if shadow_quality else None,
                    }
                    if shadow
                    else None
                ),
                "canary": canary.status(runtime.model) if canary else None,
                "capture": capture.status() if capture else None,
                "admission": admission.status(),
            }
        )

    @app.get(
        "/model/card",
        summary="Model card of the served version (Markdown): data, held-out figures per group, explanations",
        # Markdown, but refusals in JSON: each answer's media type is given below (Response has none).
        response_class=Response,
        responses={
            200: {"description": "The card", "content": {"text/markdown": {"schema": {"type": "string"}}}},
            404: error_response(schemas.ErrorBody, "variant=canary where no canary is served"),
            422: error_response(schemas.ErrorBody, "variant is neither stable nor canary"),
            503: error_response(
                schemas.ErrorBody, "The model (or the canary asked for) not loaded yet (Retry-After)"
            ),
        },
    )
    async def model_card(variant: Literal["stable", "canary"] = CARD_VARIANT_QUERY) -> Response:
        model = runtime.require()
        if variant == CANARY:
            if canary is None:
                raise no_canary("query.variant", spec.name)
            model = canary.choose(model, Route(CANARY)).model  # 503 until the canary has loaded
        card = render_card(spec, model.describe())
        return Response(card, media_type="text/markdown; charset=utf-8")

    @app.get("/metrics", summary="Prometheus exposition", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=metrics.content_type)

    add_open_inference_routes(
        app, spec, codec, runtime, predictor, settings=settings, error_responses=ERROR_RESPONSES
    )
    return app


def client_limit(setting: int | None, request_limit: int, keys_on: bool) -> int:
    """Requests one client may have in flight on a replica (0: no limit); clients exist only with keys.

    By default three quarters of the request limit: a quarter of the places stays free for the
    other clients, whatever one of them sends.
    """
    if not keys_on:
        return 0
    if setting is not None:
        return setting
    return max(1, request_limit * 3 // 4) if request_limit else 0


def route_of(request: Request) -> Route:
    """The model a request asks for in its headers (``servekit.routing``)."""
    return Route.from_headers(request.headers.get)


def model_runtime(
    spec: ServiceSpec,
    settings: ServiceSettings,
    source: ArtifactSource,
    metrics: RuntimeMetrics,
    probe: VersionProbe | None,
    *,
    role: str = "model",
) -> ModelRuntime:
    """A runtime loading ``source`` with the settings' backoff, following ``probe`` if any."""
    return ModelRuntime(
        spec.model,
        source,
        metrics,
        initial_delay=settings.load_retry_initial_seconds,
        max_delay=settings.load_retry_max_seconds,
        probe=probe,
        refresh_interval=settings.model_refresh_seconds,
        role=role,
    )


def second_runtime(
    spec: ServiceSpec,
    settings: ServiceSettings,
    *,
    uri: str,
    source: ArtifactSource | None,
    metrics: RuntimeMetrics,
    role: str,
) -> ModelRuntime:
    """The runtime of a model beside the served one (a shadow, a canary), following its alias."""
    probe = None
    if source is None:
        source, probe = registry_source(spec.name, uri, settings.mlflow_tracking_uri)
    return model_runtime(spec, settings, source, metrics, probe, role=role)


def shadow_scorer(
    spec: ServiceSpec,
    settings: ServiceSettings,
    metrics: ServiceMetrics,
    source: ArtifactSource | None = None,
    *,
    capture: PredictionCapture | None = None,
) -> ShadowScorer | None:
    """The scorer of ``<SVC>_SHADOW_MODEL_URI``'s model (capturing its answers to the requests
    ``capture`` captures); None without one."""
    uri = settings.shadow_model_uri
    if source is None and not uri:
        return None
    shadow_metrics = ShadowMetrics(metrics.names, metrics.registry)
    return ShadowScorer(
        second_runtime(spec, settings, uri=uri, source=source, metrics=shadow_metrics, role="shadow model"),
        shadow_metrics,
        uri=uri or "(given in code)",
        sample_rate=settings.shadow_sample_rate,
        max_pending=settings.shadow_max_pending,
        capture=capture,
    )


def shadow_comparison(
    spec: ServiceSpec,
    settings: ServiceSettings,
    metrics: ServiceMetrics,
    shadow: ShadowScorer | None,
    *,
    from_registry: bool,
    served: ModelRuntime,
) -> LiveQualityFollower | None:
    """The follower of the shadow version's latest comparison with the served answers (read from
    the registry as the served version's record is, when the shadow comes from it), its series
    registered; None without a shadow. A comparison made against another version than ``served``
    holds now (one promoted since) is not shown: it would recommend over a model no longer served."""
    if shadow is None:
        return None
    metric = spec.recipe.primary_metric
    reader = (
        registry_reader(spec.name, metric, settings.mlflow_tracking_uri, kind=AS_SHADOW)
        if from_registry
        else None
    )
    follower = LiveQualityFollower(
        shadow.runtime, metric, reader, settings.live_evaluation_refresh_seconds, served=served
    )
    metrics.registry.register(ShadowQualityCollector(metrics.names, follower.shadow_figures))
    return follower


def canary_router(
    spec: ServiceSpec,
    settings: ServiceSettings,
    metrics: ServiceMetrics,
    source: ArtifactSource | None = None,
) -> CanaryRouter | None:
    """The router to ``<SVC>_CANARY_MODEL_URI``'s model; None without one."""
    uri = settings.canary_model_uri
    if source is None and not uri:
        return None
    canary_metrics = CanaryMetrics(metrics.names, metrics.registry)
    share_probe = None
    if source is None and follows_an_alias(uri) and settings.model_refresh_seconds > 0:
        tracking_uri = settings.mlflow_tracking_uri

        def share_probe() -> str | None:
            return registry_model_tag(uri, SHARE_TAG, tracking_uri)

    return CanaryRouter(
        second_runtime(spec, settings, uri=uri, source=source, metrics=canary_metrics, role="canary model"),
        canary_metrics,
        uri=uri or "(given in code)",
        traffic_percent=settings.canary_traffic_percent,
        stop_failure_ratio=settings.canary_stop_failure_ratio,
        stop_window=settings.canary_stop_window,
        share_probe=share_probe,
    )
