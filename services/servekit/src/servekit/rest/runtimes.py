"""The runtime parts of a service, each built from its settings: the served model, the models beside
it (shadow, canary), prediction capture and the admission limit.

Each builder returns None for a part the settings leave off, so ``rest.parts`` reads as a list of
parts, built once, that the transports (HTTP, gRPC) share.
"""

from __future__ import annotations

from servekit.admission import AdmissionLimit
from servekit.capture import PredictionCapture
from servekit.live_quality import LiveQualityFollower, registry_reader
from servekit.loading import follows_an_alias, registry_model_tag, registry_source
from servekit.metrics import ServiceMetrics
from servekit.metrics.canary import CanaryMetrics
from servekit.metrics.quality import QualityCollector, ShadowQualityCollector
from servekit.metrics.shadow import ShadowMetrics
from servekit.routing import SHARE_TAG, CanaryRouter
from servekit.runtime import ArtifactSource, ModelRuntime, RuntimeMetrics, VersionProbe
from servekit.settings import ServiceSettings
from servekit.shadow import ShadowScorer
from servekit.spec import ServiceSpec
from servekit.training.versions import AS_SHADOW


def served_model(
    spec: ServiceSpec,
    settings: ServiceSettings,
    metrics: ServiceMetrics,
    source: ArtifactSource | None,
    probe: VersionProbe | None,
) -> tuple[ModelRuntime, LiveQualityFollower]:
    """The served model's runtime and the follower of its live evaluation, its series registered.

    Without ``source``, the model, the version it should be now (unless ``probe`` says) and its
    live evaluation come from the registry.
    """
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
    return runtime, live_quality


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


def prediction_capture(settings: ServiceSettings, metrics: ServiceMetrics) -> PredictionCapture | None:
    """The capture of ``<SVC>_CAPTURE_PERCENT`` of the predictions, counted; None without one."""
    capture = None
    if settings.capture_percent:
        capture = PredictionCapture(
            settings.capture_percent,
            log_format=settings.log_format,
            on_captured=metrics.captured_instances.inc,
            on_failed=metrics.capture_failures.inc,
        )
    return capture


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


def admission_limit(
    spec: ServiceSpec, settings: ServiceSettings, metrics: ServiceMetrics, *, keys_on: bool
) -> AdmissionLimit:
    """The replica's admission limit (``servekit.admission``), its refusals and places in flight counted."""
    # One admission for HTTP and gRPC alike: both answer on this process's one event loop.
    limit, instance_limit = settings.max_concurrent_requests, settings.max_concurrent_instances
    limit = spec.max_concurrent_requests if limit is None else limit
    admission = AdmissionLimit(
        spec.name,
        limit,
        instance_limit=spec.max_concurrent_instances if instance_limit is None else instance_limit,
        client_limit=client_limit(settings.max_concurrent_requests_per_client, limit, keys_on),
        max_loop_lag=settings.max_loop_lag_seconds,
        on_refused=lambda which: metrics.prediction_requests_shed.labels(which).inc(),
    )
    # Read when scraped: no lock taken on the request path to keep a copy of the counts.
    metrics.prediction_requests_in_flight.set_function(lambda: admission.in_flight)
    metrics.prediction_instances_in_flight.set_function(lambda: admission.instances_in_flight)
    return admission


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
