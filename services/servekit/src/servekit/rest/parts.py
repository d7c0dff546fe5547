"""The parts of one service's app, built once from its settings and shared by all that serves it.

The HTTP routes and middleware, the lifespan and the gRPC server it may start take the very same
runtime, predictor, admission limit, access log and spans: one replica has one limit, one log
line budget and one model, whichever protocol a request comes in by.
"""

from __future__ import annotations

from dataclasses import dataclass

from servekit.admission import AdmissionLimit
from servekit.auth.api_keys import ApiKeys, api_keys
from servekit.capture import PredictionCapture
from servekit.live_quality import LiveQualityFollower
from servekit.metrics import ServiceMetrics
from servekit.rest.access_log import AccessLog
from servekit.rest.predictor import Predictor
from servekit.rest.runtimes import (
    admission_limit,
    canary_router,
    prediction_capture,
    served_model,
    shadow_comparison,
    shadow_scorer,
)
from servekit.routing import CanaryRouter
from servekit.runtime import ArtifactSource, ModelRuntime, VersionProbe
from servekit.settings import ServiceSettings
from servekit.shadow import ShadowScorer
from servekit.spans import RequestSpans
from servekit.spans import from_environment as request_spans
from servekit.spec import ServiceSpec


@dataclass(frozen=True)
class ServiceParts:
    """What ``service_parts`` built; None where the settings leave a part off."""

    spec: ServiceSpec
    settings: ServiceSettings
    keys: ApiKeys | None
    metrics: ServiceMetrics
    runtime: ModelRuntime
    live_quality: LiveQualityFollower
    capture: PredictionCapture | None
    shadow: ShadowScorer | None
    shadow_quality: LiveQualityFollower | None
    canary: CanaryRouter | None
    admission: AdmissionLimit
    predictor: Predictor
    access_log: AccessLog
    spans: RequestSpans | None


def service_parts(
    spec: ServiceSpec,
    settings: ServiceSettings,
    source: ArtifactSource | None,
    metrics: ServiceMetrics | None,
    probe: VersionProbe | None,
    *,
    shadow_source: ArtifactSource | None,
    canary_source: ArtifactSource | None,
    spans: RequestSpans | None,
) -> ServiceParts:
    """Build the parts of ``spec``'s app (``create_app`` says what each argument overrides)."""
    keys = api_keys(spec.name, settings.api_keys_file)  # before anything starts: a bad file stops here
    metrics = metrics or ServiceMetrics(spec.name, watch_inputs=settings.watch_inputs)
    if keys is not None:
        metrics.watch_api_keys(keys)
    runtime, live_quality = served_model(spec, settings, metrics, source, probe)
    capture = prediction_capture(settings, metrics)
    shadow = shadow_scorer(spec, settings, metrics, shadow_source, capture=capture)
    shadow_quality = shadow_comparison(
        spec, settings, metrics, shadow, from_registry=shadow_source is None, served=runtime
    )
    canary = canary_router(spec, settings, metrics, canary_source)
    admission = admission_limit(spec, settings, metrics, keys_on=keys is not None)
    predictor = Predictor(runtime, metrics, admission, shadow=shadow, canary=canary, capture=capture)
    # One log and one line budget for HTTP and gRPC alike.
    access_log = AccessLog(
        settings.access_log,
        settings.access_log_max_per_second,
        on_left_out=metrics.access_log_lines_left_out.inc,
    )

    # Sent to an OpenTelemetry collector if the environment names one; else None, nothing imported.
    spans = spans or request_spans(spec.name)
    return ServiceParts(
        spec=spec,
        settings=settings,
        keys=keys,
        metrics=metrics,
        runtime=runtime,
        live_quality=live_quality,
        capture=capture,
        shadow=shadow,
        shadow_quality=shadow_quality,
        canary=canary,
        admission=admission,
        predictor=predictor,
        access_log=access_log,
        spans=spans,
    )
