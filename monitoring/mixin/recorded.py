"""The recording rules: every series the alerts and dashboards read, recorded per service."""

from __future__ import annotations

from typing import Any

from mixin.common import (
    QUANTILES,
    SLO_WINDOWS,
    keeps_training_ranges,
    le,
    number,
    objectives,
    regex,
    sel,
    versioned,
)
from servekit.metrics.names import (
    CANARY,
    PREDICTION_ENDPOINTS,
    MetricNames,
)

# level:metric:operations; the level lists the labels a series keeps besides ``service``.
REQUESTS_RATE = "service:requests:rate5m"
REQUESTS_BY_ENDPOINT = "service_endpoint_status:requests:rate5m"
PREDICTIONS_RATE1H = "service:predictions:rate1h"
OUTCOME_SHARE = "service_outcome:predictions:ratio_rate{w}"
TRAINING_OUTCOME_SHARE = "service_outcome:training_outcome_share:max"
OUTCOME_DRIFT = "service_outcome:predictions_share:abs_diff_rate1h"
LATENCY_QUANTILE = "service_endpoint:prediction_latency_seconds:{q}_rate5m"
EXPLANATION_P95 = "service:explanation_latency_seconds:p95_rate5m"
ERROR_RATIO = "service:request_errors:ratio_rate{w}"
SLOW_RATIO = "service:prediction_latency_over_threshold:ratio_rate{w}"
EXPLANATIONS_RATE1H = "service_version:explanations:rate1h"
ATTRIBUTION_MEAN = "service_version_feature:attribution_abs:mean_rate{w}"
ATTRIBUTION_SHARE = "service_version_feature:attribution_abs:share_rate1h"
TRAINING_ATTRIBUTION_MEAN = "service_version_feature:training_attribution_mean:max"
TRAINING_ATTRIBUTION_SHARE = "service_version_feature:training_attribution_mean:share"
ATTRIBUTION_DRIFT = "service_version_feature:attribution_share:abs_diff_rate1h"
PREDICTIONS_BY_VERSION_RATE1H = "service_version:predictions:rate1h"
INPUT_SHARE = "service_version_feature_bin:input_values:share_rate1h"
TRAINING_INPUT_SHARE = "service_version_feature_bin:training_input_share:max"
INPUT_PSI = "service_version_feature:input_values:psi_rate1h"
OUTSIDE_TRAINING_SHARE = "service_version_feature:inputs_outside_training:ratio_rate1h"
#: Floor of a bin's share inside PSI's logarithm, so an empty bin counts as a large term, not infinity.
PSI_FLOOR = 0.001
MEMORY_LIMIT = "service:container_memory_limit_bytes:max"
MEMORY_RATIO = "service_instance:process_resident_memory_bytes:ratio_limit"
CPU_RATE = "service_instance:process_cpu_seconds:rate5m"
#: Seconds spent answering prediction requests per second, per pod: by Little's law the mean number
#: of prediction requests in the app over the last minute. The autoscaler's metric
#: (k8s/components/autoscale-on-concurrency), smoother than the in-flight gauge's one sample a scrape.
CONCURRENCY = "service_pod:prediction_concurrency:rate1m"
#: CPU seconds of the service's ready replicas over the predictions they answered (the stable
#: model's and a canary's): what `make cost` measures before a deployment and prices (README, Cost),
#: measured in production. Anything else the process does (a shadow, probes, scrapes) is in it.
CPU_PER_PREDICTION = "service:process_cpu_seconds_per_prediction:ratio_rate5m"
#: Bytes per second the service's pods write to their logs, by logger (METERED_LOGGERS): what the
#: log store bills for ingestion, measured in production.
LOG_BYTES_RATE = "service_logger:log_bytes:rate5m"
#: Those bytes over the predictions answered: the capture's is what `make cost` measures before a
#: deployment and prices per million (README, Cost); the access log's and the rest are the overhead.
LOG_BYTES_PER_PREDICTION = "service_logger:log_bytes_per_prediction:ratio_rate5m"
#: Seconds in the average month (365.25 days / 12): a rate per second times this is a month's worth.
SECONDS_PER_MONTH = 2_629_800


def gib_a_month(bytes_per_second: str) -> str:
    """PromQL: a rate of bytes a second, as the GiB a month at that rate."""
    return f"{bytes_per_second} * {SECONDS_PER_MONTH} / 2^30"


SHADOW_AGREEMENT = "service:shadow_predictions:agree_ratio_rate5m"
VARIANT_REQUESTS_RATE = "service_variant:variant_requests:rate5m"
VARIANT_FAILURE_RATIO = "service_variant:variant_requests:failure_ratio_rate5m"
VARIANT_LATENCY_P95 = "service_variant:variant_latency_seconds:p95_rate5m"


def recording_rules(service: str) -> list[dict[str, Any]]:
    n, o = MetricNames(service), objectives(service)
    rules: list[tuple[str, str]] = [
        (REQUESTS_RATE, f"sum(rate({n.requests_total}[5m]))"),
        (REQUESTS_BY_ENDPOINT, f"sum by (endpoint, status) (rate({n.requests_total}[5m]))"),
    ]
    for w in SLO_WINDOWS:
        # Over the SLI's valid events only: refusals for the client's own fault (4xx) would dilute
        # the 5xx.
        rules.append((ERROR_RATIO.format(w=w), f"{server_errors(n, w)}\n/\n{availability_events(n, w)}"))
    slo = f'endpoint="{o.latency_endpoint}"'
    for w in SLO_WINDOWS:
        rules.append(
            (
                SLOW_RATIO.format(w=w),
                f"1 - (\n  sum(rate({n.prediction_latency_seconds}_bucket"
                f'{{{slo},le="{le(o.latency_threshold)}"}}[{w}]))'
                f"\n  /\n  sum(rate({n.prediction_latency_seconds}_count{{{slo}}}[{w}]))\n)",
            )
        )
    for q, value in QUANTILES:
        rules.append(
            (
                LATENCY_QUANTILE.format(q=q),
                f"histogram_quantile({value}, sum by (endpoint, le) "
                f"(rate({n.prediction_latency_seconds}_bucket[5m])))",
            )
        )
    rules.append(
        (
            EXPLANATION_P95,
            f"histogram_quantile(0.95, sum by (le) (rate({n.explanation_latency_seconds}_bucket[5m])))",
        )
    )
    # Prediction outcome distribution against the training-time baseline.
    rules.append((PREDICTIONS_RATE1H, f"sum(rate({n.predictions_total}[1h]))"))
    for w in ("5m", "1h"):
        rules.append(
            (
                OUTCOME_SHARE.format(w=w),
                f"sum by (outcome) (rate({n.predictions_total}[{w}]))\n"
                f"/ ignoring (outcome) group_left\nsum(rate({n.predictions_total}[{w}]))",
            )
        )
    rules.append((TRAINING_OUTCOME_SHARE, f"max by (outcome) ({n.training_outcome_share})"))
    rules.append(
        (
            OUTCOME_DRIFT,
            f"abs({sel(OUTCOME_SHARE.format(w='1h'), service)} - on (outcome) "
            f"{sel(TRAINING_OUTCOME_SHARE, service)})",
        )
    )
    # Attribution drift: mean |SHAP| per feature and model version, and its share of the total.
    rules.append(
        (EXPLANATIONS_RATE1H, f"sum by (version) ({versioned(f'rate({n.explanations_total}[1h])', n)})")
    )
    for w in ("5m", "1h"):
        rules.append(
            (
                ATTRIBUTION_MEAN.format(w=w),
                f"sum by (version, feature) ({versioned(f'rate({n.attribution_abs_sum_total}[{w}])', n)})\n"
                f"/ on (version) group_left\n"
                f"sum by (version) ({versioned(f'rate({n.explanations_total}[{w}])', n)})",
            )
        )
    mean1h = sel(ATTRIBUTION_MEAN.format(w="1h"), service)
    rules.append(
        (
            ATTRIBUTION_SHARE,
            f"{mean1h}\n/ on (version) group_left\nsum by (version) ({mean1h})",
        )
    )
    rules.append(
        (
            TRAINING_ATTRIBUTION_MEAN,
            f"max by (version, feature) ({versioned(n.training_attribution_mean, n)})",
        )
    )
    training = sel(TRAINING_ATTRIBUTION_MEAN, service)
    rules.append(
        (
            TRAINING_ATTRIBUTION_SHARE,
            f"{training}\n/ on (version) group_left\nsum by (version) ({training})",
        )
    )
    rules.append(
        (
            ATTRIBUTION_DRIFT,
            f"abs({sel(ATTRIBUTION_SHARE, service)} - on (version, feature) "
            f"{sel(TRAINING_ATTRIBUTION_SHARE, service)})",
        )
    )
    # Input drift: each input's share per bin (bins fixed at training) against the training
    # rows', per model version, summed into the population stability index
    # PSI = sum over bins of (live - training) * ln(live / training).
    inputs1h = versioned(f"rate({n.input_values_total}[1h])", n)
    rules.append(
        (
            PREDICTIONS_BY_VERSION_RATE1H,
            f"sum by (version) ({versioned(f'rate({n.predictions_total}[1h])', n)})",
        )
    )
    rules.append(
        (
            INPUT_SHARE,
            f"sum by (version, feature, bin) ({inputs1h})\n"
            f"/ on (version, feature) group_left\nsum by (version, feature) ({inputs1h})",
        )
    )
    rules.append(
        (TRAINING_INPUT_SHARE, f"max by (version, feature, bin) ({versioned(n.training_input_share, n)})")
    )
    live, train, floor = sel(INPUT_SHARE, service), sel(TRAINING_INPUT_SHARE, service), number(PSI_FLOOR)
    rules.append(
        (
            INPUT_PSI,
            f"sum by (version, feature) (\n  ({live} - on (version, feature, bin) {train})\n"
            f"  * on (version, feature, bin)\n"
            f"  ln(clamp_min({live}, {floor}) / on (version, feature, bin) clamp_min({train}, {floor}))\n)",
        )
    )
    # Answers given with an input outside the training rows' range, as a share of the version's
    # answers: only from a service whose model keeps the ranges (the text model exports none).
    if keeps_training_ranges(service):
        outside1h = versioned(f"rate({n.inputs_outside_training_total}[1h])", n)
        rules.append(
            (
                OUTSIDE_TRAINING_SHARE,
                f"sum by (version, feature) ({outside1h})\n"
                f"/ on (version) group_left\n{sel(PREDICTIONS_BY_VERSION_RATE1H, service)}",
            )
        )
    # Process resources of the service's targets (process_* carry no service prefix:
    # `and on (instance, job) <svc>_model_ready` keeps the targets of this service only).
    rules.append(
        (
            MEMORY_LIMIT,
            f'max(container_spec_memory_limit_bytes{{container="{o.container}",pod=~"{service}-.*"}} > 0)\n'
            f"or vector({o.memory_limit_bytes})",
        )
    )
    rules.append(
        (
            MEMORY_RATIO,
            f"(process_resident_memory_bytes and on (instance, job) {n.model_ready})\n"
            f"/ on () group_left\n{sel(MEMORY_LIMIT, service)}",
        )
    )
    rules.append((CPU_RATE, f"rate(process_cpu_seconds_total[5m]) and on (instance, job) {n.model_ready}"))
    # A canary's answers are counted only in the variant series; the stable model's in both, once here.
    answered = (
        f"sum(rate({n.predictions_total}[5m]))\n"
        f'+ (sum(rate({n.variant_predictions_total}{{variant="{CANARY}"}}[5m])) or vector(0))'
    )
    rules.append(
        (
            CPU_PER_PREDICTION,
            f"sum(rate(process_cpu_seconds_total[5m]) and on (instance, job) {n.model_ready})\n"
            f"/\n({answered}\n> 0)",
        )
    )
    log_bytes = f"sum by (logger) (rate({n.log_bytes_total}[5m]))"
    rules.append((LOG_BYTES_RATE, log_bytes))
    rules.append((LOG_BYTES_PER_PREDICTION, f"{log_bytes}\n/ on () group_left ()\n({answered}\n> 0)"))
    rules.append(
        (CONCURRENCY, f"sum by (namespace, pod, instance) (rate({n.prediction_latency_seconds}_sum[1m]))")
    )
    rules.append((SHADOW_AGREEMENT, shadow_agreement(n)))
    # Canary rollouts: each variant's traffic, failures and model latency, side by side. Without a
    # canary there are no variant_* series, so no data rather than a stable model at 100 %.
    variant_rate = f"sum by (variant) (rate({n.variant_requests_total}[5m]))"
    rules.append((VARIANT_REQUESTS_RATE, variant_rate))
    rules.append(
        (
            VARIANT_FAILURE_RATIO,
            f'sum by (variant) (rate({n.variant_requests_total}{{result="failed"}}[5m]))\n/\n{variant_rate}',
        )
    )
    rules.append(
        (
            VARIANT_LATENCY_P95,
            f"histogram_quantile(0.95, sum by (variant, le) (rate({n.variant_latency_seconds}_bucket[5m])))",
        )
    )
    return [{"record": name, "expr": expr, "labels": {"service": service}} for name, expr in rules]


def server_errors(n: MetricNames, window: str) -> str:
    """PromQL: the rate of the 5xx answered to prediction requests over ``window``. ``or vector(0)``:
    no 5xx series at all means no errors, not "no data"."""
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"'
    return f'(sum(rate({n.requests_total}{{{predict},status=~"5.."}}[{window}])) or vector(0))'


def availability_events(n: MetricNames, window: str) -> str:
    """PromQL: the rate of the availability SLI's valid events over ``window``
    (``mixin.common.availability_event``): the latency SLI's events, which the latency histogram
    counts (the answers, and the 499s of clients that gave up waiting for one), and the 5xx.

    Not a match of statuses on ``<svc>_requests_total``: a client gone before its body was in is a
    499 there too, yet it asked the model nothing; a client on a flaky link that abandons its
    uploads by the thousand diluted the 5xx ratio, and a burn of 503s beside it paged no one. The
    histogram times neither (``servekit.rest.body.BODY_NOT_RECEIVED``), nor a client's refusals.
    """
    predict = f'endpoint=~"{regex(PREDICTION_ENDPOINTS)}"'
    timed = f"sum(rate({n.prediction_latency_seconds}_count{{{predict}}}[{window}]))"
    return f"(\n  {timed}\n  +\n  {server_errors(n, window)}\n)"


def shadow_agreement(n: MetricNames, selector: str = "") -> str:
    """Share of instances on which the shadow model's outcome is the served model's, 5 m.

    ``or vector(0)``: when no instance agreed there is no agree="true" series, and that is 0 %.
    Without a shadow model there is no series at all, so no data rather than a false 0 %.
    """
    every = f"{{{selector}}}" if selector else ""
    agreeing = f'{{{selector + "," if selector else ""}agree="true"}}'
    return (
        f"(sum(rate({n.shadow_predictions_total}{agreeing}[5m])) or vector(0))\n"
        f"/\nsum(rate({n.shadow_predictions_total}{every}[5m]))"
    )


def burn_queries(service: str) -> list[tuple[str, str]]:
    """The SLO panels' burn rates: each objective's error ratio over 1 h and 6 h, as a share of its budget."""
    o = objectives(service)
    return [
        (
            f"{sel(ERROR_RATIO.format(w=w), service)} / {number(1 - o.availability)}",
            f"{service} availability {w}",
        )
        for w in ("1h", "6h")
    ] + [
        (f"{sel(SLOW_RATIO.format(w=w), service)} / {number(1 - o.latency)}", f"{service} latency {w}")
        for w in ("1h", "6h")
    ]
