"""Metric names: the single source of truth for services, dashboards and alert rules.

The services export these names, and ``monitoring/generate.py`` builds every
recording rule, alert and dashboard query from them, so a rename cannot leave a
dashboard querying a metric nobody exports.
"""

from __future__ import annotations

from dataclasses import dataclass

REQUESTS_TOTAL = "requests_total"
PREDICTION_LATENCY_SECONDS = "prediction_latency_seconds"
EXPLANATION_LATENCY_SECONDS = "explanation_latency_seconds"
PREDICTIONS_TOTAL = "predictions_total"
MODEL_INFO = "model_info"
MODEL_READY = "model_ready"
MODEL_LOAD_SECONDS = "model_load_seconds"
MODEL_REFRESH_FAILING = "model_refresh_failing"
MODEL_REFRESH_FAILURES_TOTAL = "model_refresh_failures_total"
#: The ``step`` of a failed refresh (``<svc>_model_refresh_failures_total{step}``): asking the
#: registry which version the alias names (the registry unreachable: MLflow down, its
#: NetworkPolicy, DNS), or loading the version it names (the version itself: a corrupt upload, a
#: library the image lacks). The remedies differ: fix the registry, or point the alias back.
REFRESH_ASKING_THE_REGISTRY, REFRESH_LOADING_THE_VERSION = "alias", "load"
REFRESH_STEPS = (REFRESH_ASKING_THE_REGISTRY, REFRESH_LOADING_THE_VERSION)
EXPLANATIONS_TOTAL = "explanations_total"
ATTRIBUTION_ABS_SUM_TOTAL = "attribution_abs_sum_total"
TRAINING_OUTCOME_SHARE = "training_outcome_share"
TRAINING_ATTRIBUTION_MEAN = "training_attribution_mean"
ACCESS_LOG_LINES_LEFT_OUT_TOTAL = "access_log_lines_left_out_total"
CAPTURED_INSTANCES_TOTAL = "captured_instances_total"
CAPTURE_FAILURES_TOTAL = "capture_failures_total"
LOG_BYTES_TOTAL = "log_bytes_total"
PREDICTION_REQUESTS_IN_FLIGHT = "prediction_requests_in_flight"
PREDICTION_REQUESTS_SHED_TOTAL = "prediction_requests_shed_total"
PREDICTION_INSTANCES_IN_FLIGHT = "prediction_instances_in_flight"
EVENT_LOOP_LAG_SECONDS = "event_loop_lag_seconds"
INPUT_VALUES_TOTAL = "input_values_total"
TRAINING_INPUT_SHARE = "training_input_share"
INPUTS_OUTSIDE_TRAINING_TOTAL = "inputs_outside_training_total"
SHADOW_MODEL_INFO = "shadow_model_info"
SHADOW_PREDICTIONS_TOTAL = "shadow_predictions_total"
SHADOW_SCORE_DIFFERENCE = "shadow_score_difference"
SHADOW_SKIPPED_TOTAL = "shadow_skipped_total"
CANARY_MODEL_INFO = "canary_model_info"
CANARY_FALLBACKS_TOTAL = "canary_fallbacks_total"
CANARY_STOPPED = "canary_stopped"
CANARY_TRAFFIC_PERCENT = "canary_traffic_percent"
CANARY_REFRESH_FAILING = "canary_refresh_failing"
VARIANT_REQUESTS_TOTAL = "variant_requests_total"
VARIANT_DRAWS_TOTAL = "variant_draws_total"
VARIANT_LATENCY_SECONDS = "variant_latency_seconds"
VARIANT_PREDICTIONS_TOTAL = "variant_predictions_total"
VARIANT_EXPLANATIONS_TOTAL = "variant_explanations_total"
VARIANT_ATTRIBUTION_ABS_SUM_TOTAL = "variant_attribution_abs_sum_total"
VARIANT_INPUTS_OUTSIDE_TRAINING_TOTAL = "variant_inputs_outside_training_total"
CLIENT_REQUESTS_TOTAL = "client_requests_total"
API_KEY_EXPIRY_TIMESTAMP_SECONDS = "api_key_expiry_timestamp_seconds"
API_KEYS_RELOAD_FAILING = "api_keys_reload_failing"
MODEL_QUALITY = "model_quality"
MODEL_LIVE_ANSWERS = "model_live_answers"
MODEL_LIVE_EVALUATION_TIMESTAMP_SECONDS = "model_live_evaluation_timestamp_seconds"
MODEL_LIVE_VERDICT = "model_live_verdict"
MODEL_LIVE_GROUPS_WORSE = "model_live_groups_worse"
SHADOW_LIVE_DIFFERENCE = "shadow_live_difference"
SHADOW_LIVE_ANSWERS = "shadow_live_answers"
SHADOW_LIVE_VERDICT = "shadow_live_verdict"
SHADOW_LIVE_GROUPS_WORSE = "shadow_live_groups_worse"

#: Loggers whose bytes ``<svc>_log_bytes_total{logger}`` counts apart: the prediction capture's
#: and the access log's lines are what an operator turns up and down (<SVC>_CAPTURE_PERCENT,
#: <SVC>_ACCESS_LOG); every other logger (start-up, model loads, errors, uvicorn) is ``other``.
CAPTURE_LOGGER, ACCESS_LOGGER, OTHER_LOGGERS = "servekit.capture", "servekit.access", "other"
METERED_LOGGERS = (CAPTURE_LOGGER, ACCESS_LOGGER, OTHER_LOGGERS)

#: Why instances were not scored by the shadow model (``<svc>_shadow_skipped_total{reason}``).
#: ``canary``: the instances were answered by the canary, and the shadow compares a challenger
#: with the stable model only (a canary's answers would mix a third model into its figures).
SHADOW_SKIP_REASONS = ("queue_full", "not_ready", "same_model", "canary", "failed")
#: Which model answered a request while a canary runs (``<svc>_variant_*{variant}``): the served
#: model of ``<SVC>_MODEL_URI``, or the canary of ``<SVC>_CANARY_MODEL_URI``.
STABLE, CANARY = "stable", "canary"
VARIANTS = (STABLE, CANARY)
#: The ``variant`` of a captured answer the shadow model gave to a captured request: nobody saw it.
SHADOW = "shadow"
#: Why the stable model answered a request routed to the canary (``<svc>_canary_fallbacks_total``):
#: the canary is not loaded, or this pod stopped sending it traffic after too many failures.
CANARY_FALLBACK_REASONS = ("not_ready", "stopped")
#: A canary is worse than the stable model when over CANARY_FAILURE_RATIO of its requests fail
#: (and over twice the stable model's share), or its p95 model time is over CANARY_LATENCY_FACTOR
#: times the stable model's: the alerts (monitoring/generate.py) and ``mlp rollout`` judge alike.
CANARY_FAILURE_RATIO = 0.01
CANARY_LATENCY_FACTOR = 1.5
#: ``<svc>_variant_requests_total{result}``: the model answered, or it raised (a 500).
VARIANT_RESULTS = ("ok", "failed")

#: The Open Inference Protocol's endpoints, labelled by their path templates: the model name is
#: the service's, and the version (``/versions/<v>``) is left out, as it changes with every release.
OPEN_INFERENCE_INFER = "/v2/models/{model}/infer"
OPEN_INFERENCE_ENDPOINTS = (
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/{model}",
    "/v2/models/{model}/ready",
)
#: The protocol over gRPC: endpoint labels are the method paths, the method label is GRPC, and the
#: status label the HTTP status the same error gets over REST (so the SLO's 5xx ratio covers both).
GRPC_METHOD = "GRPC"
#: The protocol's gRPC service: its method paths (``/inference.GRPCInferenceService/ModelInfer``)
#: are what clients call and the endpoint labels.
GRPC_SERVICE = "inference.GRPCInferenceService"
GRPC_METHODS = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer")


def grpc_endpoint(method: str) -> str:
    return f"/{GRPC_SERVICE}/{method}"


GRPC_INFER = grpc_endpoint("ModelInfer")
GRPC_ENDPOINTS = tuple(grpc_endpoint(m) for m in GRPC_METHODS if m != "ModelInfer")
#: Endpoints whose whole-request latency is a prediction latency.
PREDICTION_ENDPOINTS = ("/predict", "/predict/batch", OPEN_INFERENCE_INFER, GRPC_INFER)
#: The kubelet's probes: counted, but no client's request.
PROBE_ENDPOINTS = ("/healthz", "/readyz")
#: Where the documentation pages' scripts are served (``servekit.rest.docs``); one label for all.
DOCS_ASSETS = "/docs/assets"
#: Every endpoint label value; anything else is counted as ``NO_ENDPOINT`` to bound cardinality.
ENDPOINTS = (
    *PREDICTION_ENDPOINTS,
    *PROBE_ENDPOINTS,
    "/model",
    "/model/card",
    "/docs",
    DOCS_ASSETS,
    "/redoc",
    "/openapi.json",
    *OPEN_INFERENCE_ENDPOINTS,
    *GRPC_ENDPOINTS,
)

#: The endpoint label of a path no endpoint has.
NO_ENDPOINT = "other"

#: Largest |served - shadow| score of an instance: a probability's thousandths up to tens of
#: dollars of fare, in one bucket set so every service's histogram reads the same way.
DIFFERENCE_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0,
)  # fmt: skip

#: ``model_quality``'s ``split``: the training run's held-out rows, or the answers served and
#: later joined with their truth (``mlp evaluate --log``).
QUALITY_SPLITS = ("held_out", "live")
#: ``model_quality``'s ``bound``: the figure and its bootstrap 95 % interval.
QUALITY_BOUNDS = ("estimate", "ci_low", "ci_high")
#: ``model_live_verdict``'s ``verdict``: the live figure against the held-out one, beyond the noise
#: or within it (``servekit.evaluation.quality.Verdict``), or none (no figure, or none to compare).
LIVE_VERDICTS = ("worse", "within the noise", "better", "none")

#: Seconds; resolves 100 µs requests as well as multi-second batches.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
    0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


@dataclass(frozen=True)
class MetricNames:
    """The full metric names of one service (``<service>_<suffix>``)."""

    service: str

    def _name(self, suffix: str) -> str:
        return f"{self.service}_{suffix}"

    @property
    def requests_total(self) -> str:
        return self._name(REQUESTS_TOTAL)

    @property
    def prediction_latency_seconds(self) -> str:
        return self._name(PREDICTION_LATENCY_SECONDS)

    @property
    def explanation_latency_seconds(self) -> str:
        return self._name(EXPLANATION_LATENCY_SECONDS)

    @property
    def predictions_total(self) -> str:
        return self._name(PREDICTIONS_TOTAL)

    @property
    def model_info(self) -> str:
        return self._name(MODEL_INFO)

    @property
    def model_ready(self) -> str:
        return self._name(MODEL_READY)

    @property
    def model_refresh_failing(self) -> str:
        return self._name(MODEL_REFRESH_FAILING)

    @property
    def model_refresh_failures_total(self) -> str:
        return self._name(MODEL_REFRESH_FAILURES_TOTAL)

    @property
    def explanations_total(self) -> str:
        return self._name(EXPLANATIONS_TOTAL)

    @property
    def attribution_abs_sum_total(self) -> str:
        return self._name(ATTRIBUTION_ABS_SUM_TOTAL)

    @property
    def training_outcome_share(self) -> str:
        return self._name(TRAINING_OUTCOME_SHARE)

    @property
    def training_attribution_mean(self) -> str:
        return self._name(TRAINING_ATTRIBUTION_MEAN)

    @property
    def input_values_total(self) -> str:
        return self._name(INPUT_VALUES_TOTAL)

    @property
    def training_input_share(self) -> str:
        return self._name(TRAINING_INPUT_SHARE)

    @property
    def inputs_outside_training_total(self) -> str:
        return self._name(INPUTS_OUTSIDE_TRAINING_TOTAL)

    @property
    def access_log_lines_left_out_total(self) -> str:
        return self._name(ACCESS_LOG_LINES_LEFT_OUT_TOTAL)

    @property
    def captured_instances_total(self) -> str:
        return self._name(CAPTURED_INSTANCES_TOTAL)

    @property
    def capture_failures_total(self) -> str:
        return self._name(CAPTURE_FAILURES_TOTAL)

    @property
    def log_bytes_total(self) -> str:
        return self._name(LOG_BYTES_TOTAL)

    @property
    def model_load_seconds(self) -> str:
        return self._name(MODEL_LOAD_SECONDS)

    @property
    def prediction_requests_in_flight(self) -> str:
        return self._name(PREDICTION_REQUESTS_IN_FLIGHT)

    @property
    def prediction_requests_shed_total(self) -> str:
        return self._name(PREDICTION_REQUESTS_SHED_TOTAL)

    @property
    def prediction_instances_in_flight(self) -> str:
        return self._name(PREDICTION_INSTANCES_IN_FLIGHT)

    @property
    def event_loop_lag_seconds(self) -> str:
        return self._name(EVENT_LOOP_LAG_SECONDS)

    @property
    def shadow_model_info(self) -> str:
        return self._name(SHADOW_MODEL_INFO)

    @property
    def shadow_predictions_total(self) -> str:
        return self._name(SHADOW_PREDICTIONS_TOTAL)

    @property
    def shadow_score_difference(self) -> str:
        return self._name(SHADOW_SCORE_DIFFERENCE)

    @property
    def shadow_skipped_total(self) -> str:
        return self._name(SHADOW_SKIPPED_TOTAL)

    @property
    def canary_model_info(self) -> str:
        return self._name(CANARY_MODEL_INFO)

    @property
    def canary_fallbacks_total(self) -> str:
        return self._name(CANARY_FALLBACKS_TOTAL)

    @property
    def canary_stopped(self) -> str:
        return self._name(CANARY_STOPPED)

    @property
    def canary_traffic_percent(self) -> str:
        return self._name(CANARY_TRAFFIC_PERCENT)

    @property
    def canary_refresh_failing(self) -> str:
        return self._name(CANARY_REFRESH_FAILING)

    @property
    def variant_requests_total(self) -> str:
        return self._name(VARIANT_REQUESTS_TOTAL)

    @property
    def variant_draws_total(self) -> str:
        return self._name(VARIANT_DRAWS_TOTAL)

    @property
    def variant_latency_seconds(self) -> str:
        return self._name(VARIANT_LATENCY_SECONDS)

    @property
    def variant_predictions_total(self) -> str:
        return self._name(VARIANT_PREDICTIONS_TOTAL)

    @property
    def variant_explanations_total(self) -> str:
        return self._name(VARIANT_EXPLANATIONS_TOTAL)

    @property
    def variant_attribution_abs_sum_total(self) -> str:
        return self._name(VARIANT_ATTRIBUTION_ABS_SUM_TOTAL)

    @property
    def variant_inputs_outside_training_total(self) -> str:
        return self._name(VARIANT_INPUTS_OUTSIDE_TRAINING_TOTAL)

    @property
    def client_requests_total(self) -> str:
        return self._name(CLIENT_REQUESTS_TOTAL)

    @property
    def api_key_expiry_timestamp_seconds(self) -> str:
        return self._name(API_KEY_EXPIRY_TIMESTAMP_SECONDS)

    @property
    def api_keys_reload_failing(self) -> str:
        return self._name(API_KEYS_RELOAD_FAILING)

    @property
    def model_quality(self) -> str:
        return self._name(MODEL_QUALITY)

    @property
    def model_live_answers(self) -> str:
        return self._name(MODEL_LIVE_ANSWERS)

    @property
    def model_live_evaluation_timestamp_seconds(self) -> str:
        return self._name(MODEL_LIVE_EVALUATION_TIMESTAMP_SECONDS)

    @property
    def model_live_verdict(self) -> str:
        return self._name(MODEL_LIVE_VERDICT)

    @property
    def model_live_groups_worse(self) -> str:
        return self._name(MODEL_LIVE_GROUPS_WORSE)

    @property
    def shadow_live_difference(self) -> str:
        return self._name(SHADOW_LIVE_DIFFERENCE)

    @property
    def shadow_live_answers(self) -> str:
        return self._name(SHADOW_LIVE_ANSWERS)

    @property
    def shadow_live_verdict(self) -> str:
        return self._name(SHADOW_LIVE_VERDICT)

    @property
    def shadow_live_groups_worse(self) -> str:
        return self._name(SHADOW_LIVE_GROUPS_WORSE)
