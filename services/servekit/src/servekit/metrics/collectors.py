"""The collectors of one service, on a registry of its own (so tests can build many apps)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from servekit import admission, input_drift, lag_monitor, logs
from servekit.metrics.names import (
    GRPC_INFER,
    GRPC_METHOD,
    LATENCY_BUCKETS,
    METERED_LOGGERS,
    OTHER_LOGGERS,
    PREDICTION_ENDPOINTS,
    REFRESH_STEPS,
    MetricNames,
)

if TYPE_CHECKING:
    from servekit.model import ServedModel

# `_created` series double the exposition size and no dashboard or rule uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]


class BinCounts(Collector):
    """A counter labelled ``feature`` and ``bin``, for the ten or so inputs of every request.

    ``prometheus_client.Counter`` takes a lock per labelled child, about 0.5 µs each, so
    counting ten inputs cost more than binning them; here one lock covers a request.
    """

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self._counts: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def add(self, feature: str, label: str, amount: float) -> None:
        self.add_all({(feature, label): amount})

    def add_all(self, counted: Mapping[tuple[str, str], float]) -> None:
        with self._lock:
            counts = self._counts
            for key, amount in counted.items():
                counts[key] = counts.get(key, 0.0) + amount

    def keep_only(self, keys: set[tuple[str, str]]) -> None:
        """Drop the series of every other (feature, bin); the kept ones keep counting."""
        with self._lock:
            self._counts = {key: amount for key, amount in self._counts.items() if key in keys}

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=("feature", "bin"))
        with self._lock:
            items = sorted(self._counts.items())
        for (feature, label), amount in items:
            family.add_metric((feature, label), amount)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=("feature", "bin"))


class WatchedKeys(Protocol):
    """What the metrics read of a service's API keys (``servekit.auth.api_keys.ApiKeys``)."""

    def expiries(self) -> Mapping[str, datetime]: ...

    @property
    def reload_failing(self) -> bool: ...


class KeyGauges(Collector):
    """The API keys' gauges, read from the keys in force at each scrape.

    ``<svc>_api_key_expiry_timestamp_seconds{client}``: per client whose keys all expire, when its
    last key does, in Unix seconds. A reloaded keys file needs no bookkeeping here, and a client
    whose lines are removed disappears from the next scrape.

    ``<svc>_api_keys_reload_failing``: 1 while the keys file last checked
    could not be used and the keys read before stay in force, 0 otherwise. Read after the expiries,
    whose call checks the file, so a scrape reports the file as it is, not as the last request saw it.
    """

    expiry_documentation = (
        "When the client's last API key expires (Unix seconds); clients with a key that never "
        "expires are left out."
    )

    def __init__(
        self,
        names: MetricNames,
        keys: WatchedKeys,
    ) -> None:
        self.names = names
        self.keys = keys
        self.failing_documentation = (
            f"1 while the keys file ({names.service.upper()}_API_KEYS_FILE) cannot be read or holds a bad "
            "line, so the keys read before stay in force (a key removed since is still honoured); "
            "else 0. The service log says why."
        )

    def collect(self) -> Iterator[Metric]:
        expiry = self._expiry_family()
        for client, when in sorted(self.keys.expiries().items()):
            expiry.add_metric((client,), when.timestamp())
        yield expiry
        failing = GaugeMetricFamily(self.names.api_keys_reload_failing, self.failing_documentation)
        failing.add_metric((), 1.0 if self.keys.reload_failing else 0.0)
        yield failing

    def describe(self) -> Iterator[Metric]:
        yield self._expiry_family()
        yield GaugeMetricFamily(self.names.api_keys_reload_failing, self.failing_documentation)

    def _expiry_family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            self.names.api_key_expiry_timestamp_seconds, self.expiry_documentation, labels=("client",)
        )


#: The server errors servekit answers itself: an unexpected failure, and not ready or full.
SERVER_ERRORS = ("500", "503")
#: nginx's "client closed request" (``servekit.rest.body.CLIENT_CLOSED``, not imported: the metrics
#: import nothing of a transport).
CLIENT_CLOSED = 499


def latency_event(status: int) -> bool:
    """Whether a prediction request answered ``status`` is an event of the latency SLI (the
    ``<svc>_prediction_latency_seconds`` histogram): an answer of the model, or a client that gave up
    waiting for one (499). A refusal (401, 403, 422, 429...) takes well under a millisecond and would
    dilute the slow answers: a keyless scanner or a client retrying an expired key would hide a real
    regression. A 5xx burns the availability budget, and once is enough.
    """
    return status < 400 or status == CLIENT_CLOSED


class ServiceMetrics:
    """Every metric of the DESIGN.md contract for one service."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self, service: str, registry: CollectorRegistry | None = None, *, watch_inputs: bool = True
    ) -> None:
        self.names = MetricNames(service)
        #: Whether requests' inputs are binned and counted for drift (``<SVC>_WATCH_INPUTS``).
        self.watch_inputs = watch_inputs
        self.registry = registry or CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        n = self.names
        self.requests = Counter(
            n.requests_total,
            "HTTP requests by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        # The server errors a prediction endpoint can answer, zero from the first scrape: a series
        # that appears at its first failure shows rate() and increase() no increase, so a new
        # pod's first burst of 5xx (or a short one) would never reach the availability alerts.
        for endpoint in PREDICTION_ENDPOINTS:
            for status in SERVER_ERRORS:
                self.requests.labels(endpoint, GRPC_METHOD if endpoint == GRPC_INFER else "POST", status)
        self.prediction_latency = Histogram(
            n.prediction_latency_seconds,
            "Whole-request latency of the prediction requests the model answered (validation, model, "
            "explanation, encoding), and of those whose client gave up waiting (499); refusals (4xx) "
            "and server errors (5xx) are left out.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # Zero from the first scrape: a pod that has answered nothing yet has a prediction
        # concurrency of 0 (the autoscaler's metric is the rate of _sum), not a missing one.
        for endpoint in PREDICTION_ENDPOINTS:
            self.prediction_latency.labels(endpoint)
        self.explanation_latency = Histogram(
            n.explanation_latency_seconds,
            "Time spent computing SHAP explanations for one request.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            n.predictions_total,
            "Predictions of the served model (model_info) by outcome (class label, or fare range for "
            "regressors); a canary's are counted per variant, not here.",
            ["outcome"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            n.model_info,
            "The loaded model version and training run (value is always 1).",
            ["version", "run_id"],
            registry=self.registry,
        )
        self.model_ready = Gauge(
            n.model_ready,
            "1 when the model is loaded and warmed up, else 0.",
            registry=self.registry,
        )
        self.model_refresh_failing = Gauge(
            n.model_refresh_failing,
            "1 while the model cannot follow its alias (registry unreachable, or the version it "
            "points at does not load); the model already served stays.",
            registry=self.registry,
        )
        self.model_refresh_failures = Counter(
            n.model_refresh_failures_total,
            "Checks of the alias that failed, by step: asking the registry which version it names "
            "(alias), or loading that version (load).",
            ["step"],
            registry=self.registry,
        )
        for step in REFRESH_STEPS:  # at zero from the first scrape, so increase() sees the first
            self.model_refresh_failures.labels(step=step)
        self.explanations = Counter(
            n.explanations_total,
            "Explained predictions of the served model (instances, not requests).",
            registry=self.registry,
        )
        self.attribution = Counter(
            n.attribution_abs_sum_total,
            "Sum of |SHAP contribution| per input feature over the served model's explained predictions.",
            ["feature"],
            registry=self.registry,
        )
        self.training_outcome_share = Gauge(
            n.training_outcome_share,
            "Share of each outcome on the model's training data (the drift baseline).",
            ["outcome"],
            registry=self.registry,
        )
        self.training_attribution_mean = Gauge(
            n.training_attribution_mean,
            "Mean |SHAP contribution| per feature on the model's training data (the drift baseline).",
            ["feature"],
            registry=self.registry,
        )
        self.input_values = BinCounts(
            n.input_values_total,
            "Values of each monitored input by bin (bins fixed at training: deciles or categories).",
        )
        self.registry.register(self.input_values)
        self.training_input_share = Gauge(
            n.training_input_share,
            "Share of the held-out training data in each bin of each monitored input, for the loaded model.",
            ["feature", "bin"],
            registry=self.registry,
        )
        self.inputs_outside_training = Counter(
            n.inputs_outside_training_total,
            "Answers given with this input outside the range of the answering model's training rows "
            "(a tree answers there as at the nearest edge; the answer lists them in outside_training).",
            ["feature"],
            registry=self.registry,
        )
        # The count also rides on the next line written, but a burst followed by quiet writes no
        # next line: only the metric says the log is incomplete.
        self.access_log_lines_left_out = Counter(
            n.access_log_lines_left_out_total,
            f"Access log lines not written because {service.upper()}_ACCESS_LOG_MAX_PER_SECOND was reached.",
            registry=self.registry,
        )
        self.captured_instances = Counter(
            n.captured_instances_total,
            f"Instances written to the servekit.capture log ({service.upper()}_CAPTURE_PERCENT of the "
            "prediction requests).",
            registry=self.registry,
        )
        # The capture's one log line about a failure is written once per pod; the counter says
        # how large the gap in the record is.
        self.capture_failures = Counter(
            n.capture_failures_total,
            "Instances drawn for the servekit.capture log whose line could not be written (a gap in "
            "the record; the service log says why, once).",
            registry=self.registry,
        )
        self.log_bytes = Counter(
            n.log_bytes_total,
            "Bytes of the log lines this process wrote (newlines included), by logger: the capture's "
            "(servekit.capture), the access log's (servekit.access) and every other; what the log "
            "store bills by.",
            ["logger"],
            registry=self.registry,
        )
        # Children looked up once: a line is written on the request path, and every logger
        # outside the two metered ones shares the one child.
        self._log_bytes = {logger: self.log_bytes.labels(logger) for logger in METERED_LOGGERS}
        self.model_load_seconds = Gauge(
            n.model_load_seconds,
            "Seconds the served model's load took, by phase: fetch (resolve the URI, download and "
            "deserialise the artifact), build (the service's model object), warm_up (one prediction "
            "and explanation); absent until a model is loaded.",
            ["phase"],
            registry=self.registry,
        )
        self.prediction_requests_in_flight = Gauge(
            n.prediction_requests_in_flight,
            "Prediction requests (every transport) being answered now.",
            registry=self.registry,
        )
        self.prediction_instances_in_flight = Gauge(
            n.prediction_instances_in_flight,
            "Instances of the prediction batches answered in worker threads (the larger ones; small "
            "batches and single records are answered on the event loop) being predicted now.",
            registry=self.registry,
        )
        self.prediction_requests_shed = Counter(
            n.prediction_requests_shed_total,
            f"Prediction requests refused at once with 503 (gRPC UNAVAILABLE), by the limit they would "
            f"have passed: requests ({service.upper()}_MAX_CONCURRENT_REQUESTS, before the body is read), "
            f"instances ({service.upper()}_MAX_CONCURRENT_INSTANCES, batches in worker threads) or loop_lag "
            f"({service.upper()}_MAX_LOOP_LAG_SECONDS, the event loop late, before the body is read).",
            ["limit"],
            registry=self.registry,
        )
        for limit in admission.LIMITS:  # at zero from the first scrape, so rate() sees the first refusal
            self.prediction_requests_shed.labels(limit)
        self.event_loop_lag = Histogram(
            n.event_loop_lag_seconds,
            f"How late the event loop woke a timer due every {lag_monitor.INTERVAL_SECONDS * 1000:g} ms: the "
            "wait of whatever was ready, requests included, before the app could run it.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # No series until a request comes with a key: a service without keys exports none.
        self.client_requests = Counter(
            n.client_requests_total,
            f"Requests answered with an API key ({service.upper()}_API_KEYS_FILE), by the client the key "
            "is of, the key's id (mlp api-keys), endpoint and status code: who sends the traffic, whose "
            "requests are refused for the client's share (429), and whether a rotated key is still sent.",
            ["client", "key_id", "endpoint", "status"],
            registry=self.registry,
        )
        self._attribution_children: dict[str, Counter] = {}
        self._outcome_children: dict[str, Counter] = {}

    def watch_api_keys(self, keys: WatchedKeys) -> None:
        """Export, read from ``keys`` at every scrape, when each client's keys run out and whether
        the keys file last checked could not be used (``KeyGauges``)."""
        self.registry.register(KeyGauges(self.names, keys))

    def set_model(
        self,
        version: str,
        run_id: str,
        outcome_shares: Mapping[str, float],
        attribution_means: Mapping[str, float],
        input_shares: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        """Publish which model is loaded and its training-time baselines.

        Every baseline is read before anything is published, so metadata that cannot be
        published (a share that is not a number) raises with the previous model's still up.
        """
        outcomes = {outcome: float(share) for outcome, share in outcome_shares.items()}
        means = {feature: float(mean) for feature, mean in attribution_means.items()}
        # Not watching: no input series at all, rather than counters that stay at 0 and look
        # like a service nobody calls.
        watched = (input_shares or {}) if self.watch_inputs else {}
        inputs = [
            (feature, label, float(share))
            for feature, by_bin in watched.items()
            for label, share in by_bin.items()
        ]
        self.model_info.clear()
        self.model_info.labels(version=version, run_id=run_id).set(1)
        # Another version bins its inputs at other cut points (and keeps other categories): no
        # stale baseline or bin may remain, or a category the new version lumps into "other"
        # would keep its series for the pod's life.
        self.training_input_share.clear()
        self.input_values.keep_only({(feature, label) for feature, label, _ in inputs})
        for feature, label, share in inputs:
            self.training_input_share.labels(feature=feature, bin=label).set(share)
            self.input_values.add(feature, label, 0)
        for outcome, share in outcomes.items():
            self.training_outcome_share.labels(outcome=outcome).set(share)
        for feature, mean in means.items():
            self.training_attribution_mean.labels(feature=feature).set(mean)
            # Expose zero-valued series at once so rate() works from the first explanation.
            self._attribution_child(feature)
        for outcome in outcomes:
            self._outcome_child(outcome)

    def count_request(
        self, endpoint: str, method: str, status: int, seconds: float, *, timed: bool = True
    ) -> None:
        """One answered request, HTTP or gRPC. A prediction endpoint's latency is observed too when
        it is a latency event (:func:`latency_event`), unless not ``timed`` (its body never arrived:
        the time was the client's upload, not an answer)."""
        self.requests.labels(endpoint, method, str(status)).inc()
        if timed and endpoint in PREDICTION_ENDPOINTS and latency_event(status):
            self.prediction_latency.labels(endpoint).observe(seconds)
        # Set by the key check of this request, in this task (servekit.rest.auth, servekit.rpc.server).
        client = logs.client.get()
        if client:
            self.client_requests.labels(client, logs.key_id.get(), endpoint, str(status)).inc()

    def count_log_line(self, logger: str, size: int) -> None:
        """A :data:`servekit.logs.LineMeter`: ``size`` bytes written by ``logger``."""
        children = self._log_bytes
        (children[logger] if logger in children else children[OTHER_LOGGERS]).inc(size)

    def model_served(self, model: ServedModel, load_seconds: Mapping[str, float]) -> None:
        """The runtime serves ``model`` from now on (``servekit.runtime.RuntimeMetrics``)."""
        meta = model.artifact.metadata
        self.set_model(
            model.artifact.version,
            model.artifact.run_id,
            meta.get("outcome_shares", {}),
            meta.get("attribution_means", {}),
            # Not the stored shares as they are: a model trained before required inputs lost their
            # missing bin would raise InputDrift forever on a bin no request can fill.
            input_drift.training_shares(meta),
        )
        for phase, seconds in load_seconds.items():
            self.model_load_seconds.labels(phase).set(seconds)
        # At zero from the first scrape, so rate() sees the first answer outside. Series of a
        # field the previous version ranged and this one does not stay: they count past answers.
        for ranged in model.training_ranges().values():
            self.inputs_outside_training.labels(feature=ranged["field"])
        self.model_ready.set(1)

    def model_refresh(self, failed: str | None) -> None:
        if failed is not None:
            self.model_refresh_failures.labels(step=failed).inc()
        self.model_refresh_failing.set(0 if failed is None else 1)

    def _attribution_child(self, feature: str) -> Counter:
        child = self._attribution_children.get(feature)
        if child is None:
            child = self._attribution_children[feature] = self.attribution.labels(feature=feature)
        return child

    def _outcome_child(self, outcome: str) -> Counter:
        child = self._outcome_children.get(outcome)
        if child is None:
            child = self._outcome_children[outcome] = self.predictions.labels(outcome=outcome)
        return child

    def count_outcomes(self, outcomes: Iterable[str]) -> None:
        for outcome in outcomes:
            self._outcome_child(outcome).inc()

    def count_explanations(self, attributions: Iterable[Mapping[str, float]]) -> None:
        """Add |contribution| per feature; callers pass bounded feature sets only."""
        count_attributions(attributions, self._attribution_child, self.explanations)

    def count_inputs(self, counted: Mapping[tuple[str, str], int]) -> None:
        """Add binned input values (``input_drift.count``); bins are bounded by the model's."""
        self.input_values.add_all(counted)

    def count_outside_training(self, answers: Iterable[Sequence[Mapping[str, Any]] | None]) -> None:
        """One per answer and field with a value outside the training range (bounded: the fields).

        ``answers``: each answer's ``outside_training`` list (None where it has none).
        """
        for found in answers:
            for field in {item["field"] for item in found or ()}:
                self.inputs_outside_training.labels(feature=field).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def count_attributions(
    attributions: Iterable[Mapping[str, float]], child: Callable[[str], Counter], explained: Counter
) -> None:
    """Add each explanation's |contribution| per feature to ``child(feature)``, their number to ``explained``.

    The served model's series and a canary rollout's per-variant ones are counted alike.
    """
    count = 0
    for attribution in attributions:
        count += 1
        for feature, value in attribution.items():
            child(feature).inc(abs(value))
    explained.inc(count)
