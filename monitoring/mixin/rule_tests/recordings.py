"""The tests of the recording rules: what each records from given series, and the log volume
alerts over a day of them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mixin.common import SCRAPE_INTERVAL, GiB, objectives, sel
from mixin.recorded import (
    CONCURRENCY,
    CPU_PER_PREDICTION,
    ERROR_RATIO,
    LOG_BYTES_PER_PREDICTION,
    LOG_BYTES_RATE,
    SECONDS_PER_MONTH,
    SHADOW_AGREEMENT,
)
from mixin.rule_tests.cases import DAILY_INTERVAL_SECONDS, Case, series_str
from servekit.metrics.names import CANARY, CAPTURE_LOGGER, METERED_LOGGERS, STABLE, MetricNames


def recorded_case(
    record: str, service: str, name: str, series: dict[str, str], value: float | None
) -> dict[str, Any]:
    """A promtool case: given ``series``, the service's ``record`` at 10 minutes is ``value`` (None: none)."""
    samples = [] if value is None else [{"labels": sel(record, service), "value": value}]
    return recorded_samples_case(record, service, name, series, samples)


def recorded_samples_case(
    record: str,
    service: str,
    name: str,
    series: dict[str, str],
    samples: list[dict[str, Any]],
    *,
    interval: str = "1m",
) -> dict[str, Any]:
    """A promtool case: given ``series`` (a sample each ``interval``), the service's ``record`` at 10
    minutes is ``samples``."""
    return {
        "name": f"{record}: {name}",
        "interval": interval,
        "input_series": [{"series": k, "values": v} for k, v in series.items()],
        "promql_expr_test": [{"expr": sel(record, service), "eval_time": "10m", "exp_samples": samples}],
    }


def recording_tests(service: str) -> list[dict[str, Any]]:
    """promtool cases of recorded series whose edge cases a panel would get wrong."""
    n = MetricNames(service)
    target = {"instance": "10.0.0.1:8080", "job": "model-servers"}

    def compared(outcome: str, shadow_outcome: str) -> str:
        agree = "true" if outcome == shadow_outcome else "false"
        labels = {**target, "outcome": outcome, "shadow_outcome": shadow_outcome, "agree": agree}
        return series_str(n.shadow_predictions_total, labels)

    def case(name: str, series: dict[str, str], value: float | None) -> dict[str, Any]:
        return recorded_case(SHADOW_AGREEMENT, service, name, series, value)

    def busy(pod: str, endpoint: str) -> str:
        labels = {
            **target,
            "instance": f"{pod}:8080",
            "namespace": "ml-platform",
            "pod": pod,
            "endpoint": endpoint,
        }
        return series_str(f"{n.prediction_latency_seconds}_sum", labels)

    def concurrency(pod: str, value: float) -> dict[str, Any]:
        labels = {"instance": f"{pod}:8080", "namespace": "ml-platform", "pod": pod, "service": service}
        return {"labels": series_str(CONCURRENCY, labels), "value": value}

    # Per pod, all its prediction endpoints together: 7.5 + 1.5 seconds answering every 15 s is 0.6.
    # Scraped as in the cluster: Prometheus 3's ranges leave out their start, so a [1m] rate over
    # samples a minute apart holds one sample and has no value.
    a, b = f"{service}-a", f"{service}-b"
    concurrency_case = recorded_samples_case(
        CONCURRENCY,
        service,
        "per pod, every prediction endpoint",
        {busy(a, "/predict"): "0+7.5x40", busy(a, "/predict/batch"): "0+1.5x40", busy(b, "/predict"): "0x40"},
        [concurrency(a, 0.6), concurrency(b, 0.0)],
        interval=SCRAPE_INTERVAL,
    )
    return [
        concurrency_case,
        error_ratio_case(service, target),
        *cpu_per_prediction_cases(service),
        *log_bytes_cases(service),
        case("3 of 4 instances agree", {compared("a", "a"): "0+3x10", compared("a", "b"): "0+1x10"}, 0.75),
        # No agree="true" series at all: 0 %, not "no data".
        case("none agrees", {compared("a", "b"): "0+2x10"}, 0.0),
        # Without a shadow model there is nothing to compare: no data, not a false 0 %.
        case("no shadow model", {series_str(n.model_ready, target): "1x10"}, None),
    ]


def error_ratio_case(service: str, target: dict[str, str]) -> dict[str, Any]:
    """The availability SLI counts answers, 5xx and the 499s of clients that gave up waiting, not the
    client's refusals nor uploads it abandoned: 8 errors in 64 events among ten times as many 4xx,
    as many 499s of clients gone mid-upload, and failing probes."""
    n = MetricNames(service)
    # 6 of the 499s gave up waiting for the answer (timed), 60 left before their body was in.
    per_minute = {"200": 50, "499": 6 + 60, "500": 4, "503": 4}
    refused = dict.fromkeys(("400", "401", "403", "404", "408", "413", "415", "422", "429"), 60)

    def counted(endpoint: str, status: str) -> str:
        return series_str(
            n.requests_total, {**target, "endpoint": endpoint, "method": "POST", "status": status}
        )

    series = {
        counted("/predict", status): f"0+{count}x10" for status, count in {**per_minute, **refused}.items()
    }
    series[series_str(f"{n.prediction_latency_seconds}_count", {**target, "endpoint": "/predict"})] = (
        f"0+{50 + 6}x10"
    )
    series[counted("/readyz", "503")] = "0+100x10"
    return recorded_case(
        ERROR_RATIO.format(w="5m"), service, "answers, 5xx and 499s waiting; not 4xx", series, 0.125
    )


def cpu_per_prediction_cases(service: str) -> list[dict[str, Any]]:
    """CPU_PER_PREDICTION: every ready replica's CPU over every answer, each counted once."""
    n = MetricNames(service)
    a, b = ({"instance": f"10.0.0.{i}:8080", "job": "model-servers", "service": service} for i in (1, 2))
    other = {"instance": "10.0.0.9:8080", "job": "model-servers", "service": service}

    def case(name: str, series: dict[str, str], value: float | None) -> dict[str, Any]:
        return recorded_case(CPU_PER_PREDICTION, service, name, series, value)

    # Two replicas using 0.25 and 0.5 cores (15 and 30 CPU seconds a minute), answering 1 and 2
    # predictions a second; a process of no replica of the service (no model_ready) spins beside them.
    # (Binary fractions: promtool compares the samples exactly.)
    replicas = {
        series_str(n.model_ready, a): "1x10",
        series_str(n.model_ready, b): "1x10",
        series_str("process_cpu_seconds_total", a): "0+15x10",
        series_str("process_cpu_seconds_total", b): "0+30x10",
        series_str("process_cpu_seconds_total", other): "0+60x10",
        series_str(n.predictions_total, {**a, "outcome": "x"}): "0+60x10",
        series_str(n.predictions_total, {**b, "outcome": "y"}): "0+120x10",
    }
    # With a canary, the stable model's answers are in the variant series too (not counted twice),
    # and the canary's only there: 60 more a minute.
    canary = {
        series_str(n.variant_predictions_total, {**a, "variant": STABLE, "outcome": "x"}): "0+180x10",
        series_str(n.variant_predictions_total, {**a, "variant": CANARY, "outcome": "x"}): "0+60x10",
    }
    idle = {**replicas}
    for name in list(idle):
        if name.startswith(n.predictions_total):
            idle[name] = "0x10"
    return [
        case("0.75 cores over 3 predictions a second", replicas, 0.25),
        case("a canary's answers count once", {**replicas, **canary}, 0.1875),
        # No prediction answered: no data, not infinity.
        case("no prediction", idle, None),
    ]


def log_bytes_cases(service: str) -> list[dict[str, Any]]:
    """LOG_BYTES_RATE and LOG_BYTES_PER_PREDICTION: every pod's lines, by logger, over every answer."""
    n = MetricNames(service)
    a, b = ({"instance": f"10.0.0.{i}:8080", "job": "model-servers"} for i in (1, 2))

    def written(pod: dict[str, str], logger: str) -> str:
        return series_str(n.log_bytes_total, {**pod, "logger": logger})

    # Per minute: the capture's 1,200 + 2,400 bytes over 60 + 120 answers (20 bytes each), the access
    # log's 180 on one pod (1 byte each), and nothing else written.
    series = {
        written(a, CAPTURE_LOGGER): "0+1200x10",
        written(b, CAPTURE_LOGGER): "0+2400x10",
        written(a, "servekit.access"): "0+180x10",
        written(b, "other"): "0x10",
        series_str(n.predictions_total, {**a, "outcome": "x"}): "0+60x10",
        series_str(n.predictions_total, {**b, "outcome": "y"}): "0+120x10",
    }
    idle = {
        name: ("0x10" if name.startswith(n.predictions_total) else values) for name, values in series.items()
    }

    def case(record: str, name: str, given: dict[str, str], values: Mapping[str, float]) -> dict[str, Any]:
        samples = [
            {"labels": series_str(record, {"logger": logger, "service": service}), "value": value}
            for logger, value in values.items()
        ]
        return recorded_samples_case(record, service, name, given, samples)

    # (Binary fractions: promtool compares the samples exactly.)
    per_second = {CAPTURE_LOGGER: 60.0, "servekit.access": 3.0, "other": 0.0}
    per_prediction = {CAPTURE_LOGGER: 20.0, "servekit.access": 1.0, "other": 0.0}
    assert set(per_second) == set(METERED_LOGGERS)
    return [
        case(LOG_BYTES_RATE, "both pods, by logger", series, per_second),
        case(LOG_BYTES_PER_PREDICTION, "both pods' bytes over both pods' answers", series, per_prediction),
        # Lines written while nothing is answered: no data, not infinity.
        case(LOG_BYTES_PER_PREDICTION, "no prediction", idle, {}),
    ]


def log_volume_cases(service: str) -> list[Case]:
    """A day of log lines, a sample every DAILY_INTERVAL, at so many GiB a month (two pods, two loggers)."""
    n, o = MetricNames(service), objectives(service)
    name = "LogVolumeOverBudget"
    target = {"job": "model-servers", "service": service}
    seconds = DAILY_INTERVAL_SECONDS

    def logged(samples: list[tuple[int, float]]) -> dict[str, str]:
        """Each of the four series: ``samples`` of (how many, at GiB a month) in turn, from 0."""
        segments, total = ["0"], 0
        for count, gib_a_month in samples:
            # The bytes of one of the four series in one interval, at that rate together.
            step = round(gib_a_month * GiB / SECONDS_PER_MONTH * seconds / 4)
            segments.append(f"{total + step}+{step}x{count - 1}")
            total += step * count
        values = " ".join(segments)
        return {
            series_str(n.log_bytes_total, {**target, "instance": pod, "logger": logger}): values
            for pod in ("10.0.0.1:8080", "10.0.0.2:8080")
            for logger in ("servekit.access", "other")
        }

    budget = o.log_gib_per_month
    day = 86400 // seconds

    def fired(gib_a_month: str) -> dict[str, Any]:
        return {
            "expected": [{"alertname": name, "service": service}],
            "rendered": {'{{ $value | printf "%.0f" }}': gib_a_month},
        }

    return [
        Case(
            name,
            "fires: a day at twice the budget",
            logged([(day + 4, 2 * budget)]),
            "25h",
            **fired(f"{2 * budget:.0f}"),
        ),
        Case(name, "quiet: a day at half the budget", logged([(day + 4, budget / 2)]), "25h"),
        # The capture turned to 100 % (60 times the budget) on a quiet day: the day's rate passes
        # the budget within 20 minutes and fires an hour later. A daily peak of 3 hours at 4 times
        # the budget, on a day at a quarter of it, does not.
        Case(
            name,
            "fires: a jump to 60 times the budget, 2 hours ago",
            logged([(day - 2, budget / 4), (8, 60 * budget)]),
            "25h30m",
            **fired("84"),
        ),
        Case(
            name,
            "quiet: a daily peak at 4 times the budget for 3 hours",
            logged([(day - 6, budget / 4), (12, 4 * budget)]),
            "25h30m",
        ),
    ]
