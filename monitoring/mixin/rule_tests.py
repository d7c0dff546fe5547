"""The promtool unit tests of each service's rules: every alert firing, and quiet where it must."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import quote_plus

from mixin.alerts import CLIENT_REFUSED_AT_ITS_SHARE, Alert, alerts, error_kind_actions
from mixin.cluster import (
    AUTOSCALER_CONDITION,
    AUTOSCALER_CONDITIONS,
    AUTOSCALER_CURRENT,
    AUTOSCALER_DESIRED,
    AUTOSCALER_MAX,
    AUTOSCALER_MIN,
    CRONJOB_CREATED,
    CRONJOB_LAST_SCHEDULE,
    CRONJOB_LAST_SUCCESS,
    CRONJOB_NEXT_SCHEDULE,
    DEPLOYMENT_AVAILABLE,
    DEPLOYMENT_REPLICAS,
    DEPLOYMENT_UPDATED,
    JOB,
    JOB_CREATED,
    JOB_FAILED,
    OVERDUE_PERIODS,
    autoscaler_condition_queries,
    batch_scoring,
    live_evaluation,
    replica_queries,
    scheduled_run_queries,
)
from mixin.common import (
    FAST_BURN,
    MIN_BAD_REQUESTS,
    SCRAPE_INTERVAL,
    SHED_FOR,
    SLOW_BURN,
    GiB,
    canary_share_queries,
    keeps_training_ranges,
    le,
    live_quality_queries,
    objectives,
    sel,
    shadow_comparison_queries,
)
from mixin.grafana import VARIABLE_ALL_VALUES
from mixin.recorded import (
    CONCURRENCY,
    CPU_PER_PREDICTION,
    ERROR_RATIO,
    LOG_BYTES_PER_PREDICTION,
    LOG_BYTES_RATE,
    SECONDS_PER_MONTH,
    SHADOW_AGREEMENT,
)
from servekit.metrics import loop_lag
from servekit.metrics.names import (
    CANARY,
    CAPTURE_LOGGER,
    LIVE_VERDICTS,
    METERED_LOGGERS,
    OPEN_INFERENCE_INFER,
    STABLE,
    MetricNames,
)

#: Input and evaluation interval of the test file of the alerts over a day (daily_test_file).
DAILY_INTERVAL_SECONDS = 900
DAILY_INTERVAL = f"{DAILY_INTERVAL_SECONDS // 60}m"


@dataclass
class Case:
    """One alert_rule_test: the series, when to evaluate, and the alerts expected then."""

    alert: str
    description: str
    series: dict[str, str]
    eval_time: str
    expected: list[dict[str, str]] = field(default_factory=list)
    #: What the annotations' other template actions render to (``{{ $value | ... }}``).
    rendered: dict[str, str] = field(default_factory=dict)


def fires_and_quiet(
    alert: str,
    service: str,
    at: str,
    firing: tuple[str, dict[str, str]],
    quiet: tuple[str, dict[str, str]],
) -> list[Case]:
    """The two cases most alerts need: series that fire it (for the service), and series that do not."""
    (fires_when, fires_on), (quiet_when, quiet_on) = firing, quiet
    expected = [{"alertname": alert, "service": service}]
    return [
        Case(alert, f"fires: {fires_when}", fires_on, at, expected),
        Case(alert, f"quiet: {quiet_when}", quiet_on, at),
    ]


def render(template: str, actions: Mapping[str, str]) -> str:
    """``template`` with each template action (``{{ $labels.x }}``, ...) replaced by what it renders to."""
    for action, text in actions.items():
        template = template.replace(action, text)
    return template


def label_actions(labels: Mapping[str, str]) -> dict[str, str]:
    """What each label's template actions render to: ``{{ $labels.x }}`` and, in a link,
    ``{{ $labels.x | urlquery }}`` (Go's url.QueryEscape, which Prometheus's urlquery is)."""
    return {
        **{f"{{{{ $labels.{k} }}}}": v for k, v in labels.items()},
        **{f"{{{{ $labels.{k} | urlquery }}}}": quote_plus(v) for k, v in labels.items()},
    }


def series_str(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}"


def answered(n: MetricNames, labels: dict[str, str], values: str) -> dict[str, str]:
    """The series of prediction requests the model answered (200) at ``labels`` (a target and an
    endpoint): their count by status, and the latency histogram's count, which times each of them
    (``servekit.metrics.collectors.count_request``) and is the availability SLI's events."""
    return {
        series_str(n.requests_total, {**labels, "method": "POST", "status": "200"}): values,
        series_str(f"{n.prediction_latency_seconds}_count", labels): values,
    }


def rule_cases(service: str) -> list[Case]:
    n, o = MetricNames(service), objectives(service)
    target = {"instance": "10.0.0.1:8080", "job": "model-servers", "service": service}
    ready = {series_str(n.model_ready, target): "1x60"}

    def ok(values: str) -> dict[str, str]:
        return answered(n, {**target, "endpoint": "/predict"}, values)

    err = series_str(n.requests_total, {**target, "endpoint": "/predict", "method": "POST", "status": "500"})
    bad = series_str(n.requests_total, {**target, "endpoint": "/predict", "method": "POST", "status": "422"})
    probe = series_str(n.requests_total, {**target, "endpoint": "/readyz", "method": "GET", "status": "503"})
    hist = n.prediction_latency_seconds
    fast_bucket = series_str(
        f"{hist}_bucket", {**target, "endpoint": o.latency_endpoint, "le": le(o.latency_threshold)}
    )
    inf_bucket = series_str(f"{hist}_bucket", {**target, "endpoint": o.latency_endpoint, "le": "+Inf"})
    count = series_str(f"{hist}_count", {**target, "endpoint": o.latency_endpoint})
    cases: list[Case] = []

    def per_min(total: int, bad_share: float) -> tuple[str, str]:
        return f"0+{total}x", f"0+{round(total * bad_share)}x"

    avail_budget, latency_budget = 1 - o.availability, 1 - o.latency
    for speed, (_, tiers, _) in (("Fast", FAST_BURN), ("Slow", SLOW_BURN)):
        all_500 = all_failed(service, tiers[0][0])
        # Minutes of data: enough for the short window and the `for` duration.
        minutes = 10 if speed == "Fast" else 30
        lowest = min(f for _, _, f in tiers)
        firing_share = 5 * max(f for _, _, f in tiers)
        quiet_share = 0.5 * lowest
        name = f"AvailabilityBudgetBurn{speed}"
        labels = {"alertname": name, "service": service}
        good, bad_rate = per_min(10000, firing_share * avail_budget)
        cases.append(
            Case(
                name,
                f"fires: {firing_share:g}x budget burn of 5xx on /predict (422s and probe 503s do not count)",
                {**ok(f"{good}{minutes}"), err: f"{bad_rate}{minutes}", bad: f"0+500x{minutes}", **ready},
                f"{minutes}m",
                [labels],
                all_500,
            )
        )
        good, bad_rate = per_min(10000, quiet_share * avail_budget)
        cases.append(
            Case(
                name,
                f"quiet: {quiet_share:g}x budget burn; client errors and failing probes do not count",
                {
                    **ok(f"{good}{minutes}"),
                    err: f"{bad_rate}{minutes}",
                    bad: f"0+5000x{minutes}",
                    probe: f"0+100x{minutes}",
                    **ready,
                },
                f"{minutes}m",
            )
        )
        name = f"LatencyBudgetBurn{speed}"
        labels = {"alertname": name, "service": service}
        slow = round(1000 * firing_share * latency_budget)
        cases.append(
            Case(
                name,
                f"fires: {firing_share:g}x budget burn of {o.latency_endpoint} requests over the threshold",
                {
                    fast_bucket: f"0+{1000 - slow}x{minutes}",
                    inf_bucket: f"0+1000x{minutes}",
                    count: f"0+1000x{minutes}",
                    **ready,
                },
                f"{minutes}m",
                [labels],
            )
        )
        slow = round(10000 * quiet_share * latency_budget)
        cases.append(
            Case(
                name,
                f"quiet: {quiet_share:g}x budget burn",
                {
                    fast_bucket: f"0+{10000 - slow}x{minutes}",
                    inf_bucket: f"0+10000x{minutes}",
                    count: f"0+10000x{minutes}",
                    **ready,
                },
                f"{minutes}m",
            )
        )
    # Multi-window: a fast burn that stopped is no longer paged for.
    good, bad_rate = per_min(10000, 50 * avail_budget)
    cases.append(
        Case(
            "AvailabilityBudgetBurnFast",
            "quiet: errors stopped 35 minutes ago (1h and 6h windows still high, 5m and 30m windows clean)",
            {**ok("0+10000x60"), err: f"{bad_rate}20 {round(10000 * 50 * avail_budget) * 20}x40", **ready},
            "55m",
        )
    )
    # Low traffic: one 5xx among a request a minute is a burn of many budgets but one request; a
    # failure a minute for 20 minutes is an outage whatever the traffic.
    for description, failures, at, expected in (
        (
            f"quiet: one 5xx among a request a minute, under {MIN_BAD_REQUESTS} in the hour",
            "0x29 1x30",
            "33m",
            [],
        ),
        (
            f"fires: a 5xx a minute among a request a minute, {MIN_BAD_REQUESTS} and more in the hour",
            "0x19 0+1x40",
            "40m",
            [{"alertname": "AvailabilityBudgetBurnFast", "service": service}],
        ),
    ):
        series = {**ok("0+1x60"), err: failures, **ready}
        fast_500 = all_failed(service, FAST_BURN[1][0][0])
        cases.append(Case("AvailabilityBudgetBurnFast", description, series, at, expected, fast_500))
    # The rules match endpoints by a regex; a label with regex metacharacters must still match.
    infer_err = series_str(
        n.requests_total, {**target, "endpoint": OPEN_INFERENCE_INFER, "method": "POST", "status": "500"}
    )
    fast_share = 5 * max(f for _, _, f in FAST_BURN[1])
    good, bad_rate = per_min(10000, fast_share * avail_budget)
    cases.append(
        Case(
            "AvailabilityBudgetBurnFast",
            f"fires: {fast_share:g}x budget burn of 5xx on {OPEN_INFERENCE_INFER}",
            {**ok(f"{good}10"), infer_err: f"{bad_rate}10", **ready},
            "10m",
            [{"alertname": "AvailabilityBudgetBurnFast", "service": service}],
            all_failed(service, FAST_BURN[1][0][0]),
        )
    )
    cases += refusal_flood_cases(service, target, ready)
    cases.append(
        Case(
            "ServiceAbsent",
            "fires: no target exports the service's metrics",
            {'up{job="another",instance="x"}': "1x20"},
            "10m",
            [{"alertname": "ServiceAbsent", "service": service}],
        )
    )
    cases.append(Case("ServiceAbsent", "quiet: a target exports the metrics", dict(ready), "10m"))
    up = series_str("up", target)
    down_labels = {"alertname": "ServiceTargetDown", "service": service, **target}
    cases.append(
        Case("ServiceTargetDown", "fires: scrapes fail for 5 minutes", {up: "1x5 0x10"}, "10m", [down_labels])
    )
    cases.append(
        Case("ServiceTargetDown", "quiet: one failed scrape is not an outage", {up: "1x5 0 1x10"}, "10m")
    )
    not_ready = {"alertname": "ModelNotReady", "service": service, **target}
    cases.append(
        Case(
            "ModelNotReady",
            "fires: alive but not ready for 10 minutes",
            {series_str(n.model_ready, target): "0x20"},
            "10m",
            [not_ready],
        )
    )
    cases.append(
        Case(
            "ModelNotReady",
            "quiet: ready after a 3-minute start-up",
            {series_str(n.model_ready, target): "0x3 1x20"},
            "10m",
        )
    )
    # One pod of three failing is ReplicasUnavailable's, in working hours; two of three page, each named.
    pods = [{**target, "instance": f"10.0.0.{i}:8080"} for i in (1, 2, 3)]
    for alert, metric, for_minutes in (("ServiceTargetDown", "up", 2), ("ModelNotReady", n.model_ready, 5)):
        for failing in (1, 2):
            series = {
                series_str(metric, pod): ("0x20" if i < failing else "1x20") for i, pod in enumerate(pods)
            }
            expected = [{"alertname": alert, "service": service, **pod} for pod in pods[:failing]]
            cases.append(
                Case(
                    alert,
                    f"{'fires' if failing > 1 else 'quiet'}: {failing} of 3 pods, {for_minutes * 2} minutes",
                    series,
                    f"{for_minutes * 2}m",
                    expected if failing > 1 else [],
                )
            )
    refresh_failing = series_str(n.model_refresh_failing, target)
    serving = {series_str(n.model_info, {**target, "version": "7", "run_id": "abc"}): "1x60"}
    cases.append(
        Case(
            "ModelRefreshFailing",
            "fires: the alias's version has not loaded for 20 minutes; names the version still served",
            {refresh_failing: "0x5 1x30", **serving},
            "25m",
            [{"alertname": "ModelRefreshFailing", "service": service, "version": "7", **target}],
        )
    )
    cases.append(
        Case(
            "ModelRefreshFailing",
            "quiet: a registry blip of 10 minutes heals before the alert is due",
            {refresh_failing: "0x5 1x10 0x20", **serving},
            "25m",
        )
    )

    # The latest live evaluation of the version served, as the pods read it from the registry.
    def verdict(held: str) -> dict[str, str]:
        return {
            series_str(n.model_live_verdict, {**target, "verdict": v}): f"{int(v == held)}x60"
            for v in LIVE_VERDICTS
        }

    cases.append(
        Case(
            "LiveQualityWorse",
            "fires: the version served scored worse on its live answers; names the version",
            {**verdict("worse"), **serving},
            "10m",
            [{"alertname": "LiveQualityWorse", "service": service, "version": "7"}],
        )
    )
    for held in ("within the noise", "none"):
        cases.append(
            Case("LiveQualityWorse", f"quiet: the verdict is {held}", {**verdict(held), **serving}, "10m")
        )
    groups_worse = series_str(n.model_live_groups_worse, target)
    cases.append(
        Case(
            "LiveGroupWorse",
            "fires: two groups worse than held out, the whole within the noise; names the version",
            {**verdict("within the noise"), groups_worse: "2x60", **serving},
            "10m",
            [{"alertname": "LiveGroupWorse", "service": service, "version": "7"}],
            {"{{ $value }}": "2"},
        )
    )
    for why, held, count in (
        ("no group worse", "within the noise", "0x60"),
        ("the whole is worse: LiveQualityWorse tells it", "worse", "1x60"),
        ("a run that compared no group", "within the noise", ""),
    ):
        series = {**verdict(held), **serving, **({groups_worse: count} if count else {})}
        cases.append(Case("LiveGroupWorse", f"quiet: {why}", series, "10m"))
    # Outcome drift: training says 80% "x" / 20% "y".
    train_x = series_str(n.training_outcome_share, {**target, "outcome": "x"})
    train_y = series_str(n.training_outcome_share, {**target, "outcome": "y"})
    pred_x = series_str(n.predictions_total, {**target, "outcome": "x"})
    pred_y = series_str(n.predictions_total, {**target, "outcome": "y"})
    baseline = {train_x: "0.8x60", train_y: "0.2x60", **ready}
    drift = [
        {"alertname": "PredictionDrift", "service": service, "outcome": outcome} for outcome in ("x", "y")
    ]
    cases.append(
        Case(
            "PredictionDrift",
            "fires: live shares 20/80 against training 80/20",
            {**baseline, pred_x: "0+20x60", pred_y: "0+80x60"},
            "45m",
            drift,
        )
    )
    cases.append(
        Case(
            "PredictionDrift",
            "quiet: live shares 75/25 (within the threshold)",
            {**baseline, pred_x: "0+75x60", pred_y: "0+25x60"},
            "45m",
        )
    )
    cases.append(
        Case(
            "PredictionDrift",
            "quiet: too few predictions to judge (1 per minute)",
            {**baseline, pred_x: "0+0x60", pred_y: "0+1x60"},
            "45m",
        )
    )
    # Attribution drift: training spreads |SHAP| 50/50 over f1 and f2.
    info = series_str(n.model_info, {**target, "version": "7", "run_id": "abc"})
    mean = {
        series_str(n.training_attribution_mean, {**target, "feature": "f1"}): "0.4x60",
        series_str(n.training_attribution_mean, {**target, "feature": "f2"}): "0.4x60",
        info: "1x60",
        **ready,
    }
    attr1 = series_str(n.attribution_abs_sum_total, {**target, "feature": "f1"})
    attr2 = series_str(n.attribution_abs_sum_total, {**target, "feature": "f2"})
    explained = series_str(n.explanations_total, target)
    attribution = [
        {"alertname": "AttributionDrift", "service": service, "version": "7", "feature": f}
        for f in ("f1", "f2")
    ]
    cases.append(
        Case(
            "AttributionDrift",
            "fires: live |SHAP| split 90/10 against training 50/50",
            {**mean, explained: "0+10x60", attr1: "0+9x60", attr2: "0+1x60"},
            "45m",
            attribution,
        )
    )
    cases.append(
        Case(
            "AttributionDrift",
            "quiet: live split 55/45, overall scale doubled (shares, not magnitudes, drift)",
            {**mean, explained: "0+10x60", attr1: "0+11x60", attr2: "0+9x60"},
            "45m",
        )
    )
    cases.append(
        Case(
            "AttributionDrift",
            "quiet: too few explanations to judge (1 per minute)",
            {**mean, explained: "0+1x60", attr1: "0+1x60", attr2: "0+0x60"},
            "45m",
        )
    )
    # Input drift: the training rows fall 50/50 in bins 01 and 02 of input f (none missing).
    share = {
        series_str(n.training_input_share, {**target, "feature": "f", "bin": label}): value
        for label, value in (("01", "0.5x60"), ("02", "0.5x60"), ("missing", "0x60"))
    }
    counted = {
        label: series_str(n.input_values_total, {**target, "feature": "f", "bin": label})
        for label in ("01", "02", "missing")
    }
    rows = series_str(n.predictions_total, {**target, "outcome": "x"})

    def per_minute(predictions: int, in_bins: tuple[int, int, int]) -> dict[str, str]:
        """The baseline, and ``predictions`` a minute whose values of f fall in 01, 02 and missing."""
        series = {counted[label]: f"0+{count}x60" for label, count in zip(counted, in_bins, strict=True)}
        return {**share, info: "1x60", **ready, rows: f"0+{predictions}x60", **series}

    input_drift = [{"alertname": "InputDrift", "service": service, "version": "7", "feature": "f"}]
    cases.append(
        Case(
            "InputDrift",
            "fires: 90% of live values in bin 01 and 10% missing, against 50/50 in training",
            per_minute(20, in_bins=(18, 0, 2)),
            "45m",
            input_drift,
        )
    )
    cases.append(
        Case(
            "InputDrift",
            "quiet: live 55/45 (PSI 0.01, sampling noise)",
            per_minute(20, in_bins=(11, 9, 0)),
            "45m",
        )
    )
    cases.append(
        Case(
            "InputDrift",
            "quiet: too few predictions to judge (1 per minute, all in bin 01)",
            per_minute(1, in_bins=(1, 0, 0)),
            "45m",
        )
    )
    rss = series_str("process_resident_memory_bytes", target)
    limit = series_str(
        "container_spec_memory_limit_bytes",
        {"container": o.container, "pod": f"{service}-7d9f8b6c5-x2x4q", "namespace": "ml"},
    )
    memory = {"alertname": "MemoryNearLimit", "service": service, **target}
    default_limit = o.memory_limit_bytes
    cases.append(
        Case(
            "MemoryNearLimit",
            "fires: resident memory at 95% of the configured limit (no cAdvisor)",
            {rss: f"{int(default_limit * 0.95)}x20", **ready},
            "10m",
            [memory],
        )
    )
    cases.append(
        Case(
            "MemoryNearLimit",
            "fires: resident memory at 97% of the container limit reported by cAdvisor",
            {rss: f"{int(0.97 * GiB // 4)}x20", limit: f"{GiB // 4}x20", **ready},
            "10m",
            [memory],
        )
    )
    cases.append(
        Case(
            "MemoryNearLimit",
            "quiet: the same memory under a 4x larger cAdvisor limit",
            {rss: f"{int(default_limit * 0.95)}x20", limit: f"{default_limit * 4}x20", **ready},
            "10m",
        )
    )
    cases.append(
        Case(
            "MemoryNearLimit",
            "quiet: a process that is not a target of this service (no model_ready) is ignored",
            {
                series_str(
                    "process_resident_memory_bytes", {**target, "instance": "other"}
                ): f"{default_limit}x20",
                **ready,
            },
            "10m",
        )
    )
    if keeps_training_ranges(service):
        cases += outside_training_cases(service, target, ready)
    cases += capture_cases(service, target, ready)
    cases += shed_cases(service, target, ready)
    cases += loop_lag_cases(service, target, ready)
    cases += unauthenticated_cases(service, target, ready)
    cases += client_refused_cases(service, target, ready)
    cases += key_expiry_cases(service, target, ready)
    cases += key_reload_cases(service, target, ready)
    cases += shadow_cases(service, target, ready)
    cases += canary_cases(service, target, ready)
    cases += cluster_cases(service)
    cases += evaluation_cases(service)
    cases += batch_scoring_cases(service)
    return cases


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


def daily_test_file(service: str) -> dict[str, Any]:
    """The alerts over a day's window, evaluated every DAILY_INTERVAL: at the minute a day of every
    rule takes promtool minutes."""
    return {
        "rule_files": [f"../rules/{service}.rules.yaml"],
        "evaluation_interval": DAILY_INTERVAL,
        "tests": alert_tests(
            alerts(service),
            log_volume_cases(service) + overdue_cases(service) + batch_scoring_overdue_cases(service),
            interval=DAILY_INTERVAL,
        ),
    }


#: The namespace of the rule tests' objects and pods: the alerts whose kubectl hints name it keep it.
NAMESPACE = "ml-platform"
#: The labels of a kube-state-metrics series, as Prometheus keeps them (honor_labels) for an object of
#: the service's namespace.
CLUSTER_TARGET = {"job": JOB, "instance": "kube-state-metrics:8080", "namespace": NAMESPACE}


def cluster_cases(service: str) -> list[Case]:
    """The alerts on what kube-state-metrics says of the service's Deployment and autoscaler."""
    deployment = {**CLUSTER_TARGET, "deployment": service}
    hpa = {**CLUSTER_TARGET, "horizontalpodautoscaler": service}

    def replicas(wanted: int, available: str, updated: str) -> dict[str, str]:
        return {
            series_str(DEPLOYMENT_REPLICAS, deployment): f"{wanted}x40",
            series_str(DEPLOYMENT_AVAILABLE, deployment): available,
            series_str(DEPLOYMENT_UPDATED, deployment): updated,
        }

    def scaled(current: str, maximum: int = 10) -> dict[str, str]:
        return {
            series_str(AUTOSCALER_CURRENT, hpa): current,
            series_str(AUTOSCALER_MAX, hpa): f"{maximum}x40",
        }

    def condition(active: bool) -> dict[str, str]:
        def held(status: str) -> str:
            return series_str(AUTOSCALER_CONDITION, {**hpa, "condition": "ScalingActive", "status": status})

        return {held("true"): "1x40" if active else "0x40", held("false"): "0x40" if active else "1x40"}

    def fires(alert: str, when: str, series: dict[str, str], labels: dict[str, str], value: str) -> Case:
        expected = [{"alertname": alert, **labels, "service": service}]
        return Case(alert, f"fires: {when}", series, "30m", expected, {"{{ $value }}": value})

    return [
        # Two of four pods pending for half an hour, the template unchanged: a scheduling problem.
        fires(
            "ReplicasUnavailable",
            "2 of 4 pods available for 30 minutes",
            replicas(4, "2x40", "4x40"),
            deployment,
            "4",
        ),
        Case("ReplicasUnavailable", "quiet: every replica available", replicas(4, "4x40", "4x40"), "30m"),
        # A rollout of 20 replicas, one pod a minute, one pod short throughout: without the guard on
        # the updated replicas it would fire at 15 minutes.
        Case(
            "ReplicasUnavailable",
            "quiet: a slow rollout under way",
            replicas(20, "19x40", "0+1x20 20x20"),
            "19m",
        ),
        fires("AutoscalerAtMaximum", "10 of at most 10 replicas for 30 minutes", scaled("10x40"), hpa, "10"),
        Case("AutoscalerAtMaximum", "quiet: at the maximum for 10 minutes only", scaled("6x20 10x20"), "30m"),
        Case("AutoscalerAtMaximum", "quiet: 9 of at most 10", scaled("9x40"), "30m"),
        fires(
            "AutoscalerInactive",
            "ScalingActive false for 30 minutes",
            condition(active=False),
            {**hpa, "condition": "ScalingActive", "status": "false"},
            "1",
        ),
        Case("AutoscalerInactive", "quiet: ScalingActive true", condition(active=True), "30m"),
    ]


def evaluation_job_series(name: str, runs: Sequence[tuple[int, bool]]) -> dict[str, str]:
    """kube-state-metrics' series of the Jobs of the CronJob ``name``: per run, when it was created
    (its name's suffix, as the CronJob controller names them) and whether it failed."""
    series = {}
    for created, failed in runs:
        job = {**CLUSTER_TARGET, "job_name": f"{name}-{created}"}
        series[series_str(JOB_CREATED, job)] = f"{created}x40"
        for condition, value in (("true", failed), ("false", not failed)):
            series[series_str(JOB_FAILED, {**job, "condition": condition})] = f"{int(value)}x40"
    return series


def evaluation_cases(service: str) -> list[Case]:
    """LiveEvaluationFailed, on the live-evaluation component's Jobs and the verdict the pods read."""
    name = live_evaluation(service)
    n = MetricNames(service)
    pod = {"instance": "10.0.0.1:8080", "job": "model-servers", "service": service}
    # Beside another service's CronJob whose newest run failed, so an alert that missed the
    # service's name would fire in the quiet case.
    other = evaluation_job_series(live_evaluation(f"other-{service}"), [(9000, True)])
    newest_failed = {**other, **evaluation_job_series(name, [(1000, False), (2000, True)])}
    fired = [
        {
            "alertname": "LiveEvaluationFailed",
            "job_name": f"{name}-2000",
            "namespace": NAMESPACE,
            "service": service,
        }
    ]

    newest = f"{name}-2000"

    def recorded(verdict: str, ended: int, by: str | None = newest) -> dict[str, str]:
        """The verdict the pods read from the registry two minutes in, from a run ended at ``ended``
        by the Job ``by`` (None: by hand, so the series has no ``job_name``)."""
        job = {} if by is None else {"job_name": by}
        return {
            series_str(n.model_live_evaluation_timestamp_seconds, {**pod, **job}): f"_x2 {ended}x38",
            **{
                series_str(n.model_live_verdict, {**pod, "verdict": v}): f"_x2 {int(v == verdict)}x38"
                for v in LIVE_VERDICTS
            },
        }

    return [
        Case("LiveEvaluationFailed", "fires: the newest run failed", newest_failed, "15m", fired),
        Case(
            "LiveEvaluationFailed",
            "quiet: an older run failed, the newest succeeded",
            {**other, **evaluation_job_series(name, [(1000, True), (2000, False)])},
            "15m",
        ),
        Case(
            "LiveEvaluationFailed",
            "quiet: the newest run failed on the worse verdict it recorded (LiveQualityWorse names it)",
            {**newest_failed, **recorded("worse", 2100)},
            "15m",
        ),
        Case(
            "LiveEvaluationFailed",
            "quiet: a minute after the run failed, before the pods read its verdict",
            {**newest_failed, **recorded("worse", 2100)},
            "1m",
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the worse verdict the pods hold is an earlier run's",
            {**newest_failed, **recorded("worse", 1100, by=f"{name}-1000")},
            "15m",
            fired,
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the worse verdict the pods hold was recorded by hand while the newest run failed",
            {**newest_failed, **recorded("worse", 2100, by=None)},
            "15m",
            fired,
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the worse verdict is an earlier Job's of the same name, from before this one began",
            {**newest_failed, **recorded("worse", 1900)},
            "15m",
            fired,
        ),
        Case(
            "LiveEvaluationFailed",
            "fires: the newest run recorded no worse verdict on the version served (a canary's, or none)",
            {**newest_failed, **recorded("within the noise", 2100)},
            "15m",
            fired,
        ),
    ]


#: A CronJob's series at an eval time (:func:`schedule_series`): at, created, period, last run, success.
Scheduled = Callable[[int, int, int, int | None, int | None], tuple[dict[str, str], str]]


def schedule_series(service: str, name_of: Callable[[str], str]) -> Scheduled:
    """The series of the service's CronJob ``name_of(service)`` at ``at`` seconds (the eval time, in
    the daily file), constant until then: created, last started a run at ``last_run`` (None: never),
    its next time one ``period`` later (or after its creation), and its last success. Times before
    the test's start are negative: a monthly schedule needs no month of samples."""
    cronjob = {**CLUSTER_TARGET, "cronjob": name_of(service)}
    # Beside another service's CronJob created at the start, never run since and long past its
    # time, so an alert that missed the service's name would fire in every quiet case.
    other = {**CLUSTER_TARGET, "cronjob": name_of(f"other-{service}")}

    def scheduled(
        at: int, created: int, period: int, last_run: int | None, succeeded: int | None
    ) -> tuple[dict[str, str], str]:
        samples = f"x{at // DAILY_INTERVAL_SECONDS + 1}"
        series = {
            series_str(CRONJOB_CREATED, other): f"0{samples}",
            series_str(CRONJOB_NEXT_SCHEDULE, other): f"60{samples}",
            series_str(CRONJOB_CREATED, cronjob): f"{created}{samples}",
            series_str(CRONJOB_NEXT_SCHEDULE, cronjob): (
                f"{(last_run if last_run is not None else created) + period}{samples}"
            ),
        }
        if last_run is not None:
            series[series_str(CRONJOB_LAST_SCHEDULE, cronjob)] = f"{last_run}{samples}"
        if succeeded is not None:
            series[series_str(CRONJOB_LAST_SUCCESS, cronjob)] = f"{succeeded}{samples}"
        return series, f"{at // 60}m"

    return scheduled


def overdue_cases(service: str) -> list[Case]:
    """LiveEvaluationOverdue on the daily schedule, on one patched to hourly or weekly, and on a
    suspended one: in the daily file, a sample every DAILY_INTERVAL (at the minute, the first four
    cases took promtool 55 of the service file's 66 seconds)."""
    hour, day = 3600, 86400
    fired = [{"alertname": "LiveEvaluationOverdue", "namespace": NAMESPACE, "service": service}]
    scheduled = schedule_series(service, live_evaluation)

    cases = [
        # Daily: 36 hours.
        ("fires: daily, the last success 37 hours ago", scheduled(37 * hour, 0, day, day, 0), True),
        ("quiet: daily, a success 7 hours ago", scheduled(37 * hour, 0, day, 30 * hour, 30 * hour), False),
        (
            "fires: daily, none since the CronJob was created 37 hours ago",
            scheduled(37 * hour, 0, day, day, None),
            True,
        ),
        (
            "quiet: daily, none yet, the CronJob created 7 hours ago and its first run started",
            scheduled(37 * hour, 30 * hour, day, 31 * hour, None),
            False,
        ),
        # Patched to hourly: an hour and a half; to weekly: ten and a half days.
        (
            "fires: hourly, the last success 2 hours ago",
            scheduled(10 * hour, 0, hour, 10 * hour - 900, 8 * hour),
            True,
        ),
        (
            "quiet: weekly, the last success 5 days ago",
            scheduled(5 * day, 0, 7 * day, 0, 0),
            False,
        ),
        # Suspended a day ago: its next time passed two hours ago, a success 26 hours ago.
        (
            "fires: daily, a scheduled time passed 2 hours ago with no run started",
            scheduled(26 * hour, 0, day, 0, 0),
            True,
        ),
    ]
    return [
        Case("LiveEvaluationOverdue", description, series, at, fired if fires else [])
        for description, (series, at), fires in cases
    ]


def batch_scoring_cases(service: str) -> list[Case]:
    """BatchScoringFailed on the batch-scoring component's Jobs: the newest run alone counts."""
    name = batch_scoring(service)
    # Beside another service's CronJob whose newest run failed, and the service's live evaluation
    # failing, so an alert that missed the CronJob's name would fire in the quiet case.
    others = {
        **evaluation_job_series(batch_scoring(f"other-{service}"), [(9000, True)]),
        **evaluation_job_series(live_evaluation(service), [(9000, True)]),
    }
    fired = [
        {
            "alertname": "BatchScoringFailed",
            "job_name": f"{name}-2000",
            "namespace": NAMESPACE,
            "service": service,
        }
    ]
    return [
        Case(
            "BatchScoringFailed",
            "fires: the newest run failed",
            {**others, **evaluation_job_series(name, [(1000, False), (2000, True)])},
            "1m",
            fired,
        ),
        Case(
            "BatchScoringFailed",
            "quiet: an older run failed, the newest succeeded",
            {**others, **evaluation_job_series(name, [(1000, True), (2000, False)])},
            "1m",
        ),
    ]


def batch_scoring_overdue_cases(service: str) -> list[Case]:
    """BatchScoringOverdue on the monthly schedule, in the daily file: its times lie before the
    test's start, so a month costs no samples."""
    hour, day = 3600, 86400
    month = 30 * day
    at = 2 * hour
    fired = [{"alertname": "BatchScoringOverdue", "namespace": NAMESPACE, "service": service}]
    scheduled = partial(schedule_series(service, batch_scoring), at)
    cases = [
        # 45 days: a month and a half.
        (
            "fires: monthly, the last success 46 days ago",
            scheduled(-90 * day, month, at - 16 * day, at - 46 * day),
            True,
        ),
        (
            "quiet: monthly, the last success 44 days ago",
            scheduled(-90 * day, month, at - 14 * day, at - 44 * day),
            False,
        ),
        (
            "fires: monthly, none since the CronJob was created 46 days ago",
            scheduled(at - 46 * day, month, at - 16 * day, None),
            True,
        ),
        (
            "quiet: monthly, none yet, the CronJob created 20 days ago",
            scheduled(at - 20 * day, month, None, None),
            False,
        ),
        (
            "fires: monthly, a scheduled time passed 2 hours ago with no run started",
            scheduled(-90 * day, month, at - month - 2 * hour, at - month - hour),
            True,
        ),
    ]
    return [
        Case("BatchScoringOverdue", description, series, when, fired if fires else [])
        for description, (series, when), fires in cases
    ]


def outside_training_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """InputsOutsideTraining: a tenth of version 7's answers with input f outside its training range."""
    n, o = MetricNames(service), objectives(service)
    info = series_str(n.model_info, {**target, "version": "7", "run_id": "abc"})
    answers = series_str(n.predictions_total, {**target, "outcome": "x"})
    outside = series_str(n.inputs_outside_training_total, {**target, "feature": "f"})

    def per_minute(predictions: int, outside_f: int) -> dict[str, str]:
        return {info: "1x60", **ready, answers: f"0+{predictions}x60", outside: f"0+{outside_f}x60"}

    fired = [{"alertname": "InputsOutsideTraining", "service": service, "version": "7", "feature": "f"}]
    # Half as much again as the threshold, and half of it: of 100 answers a minute, those outside.
    over, under = math.ceil(150 * o.outside_training_share), math.floor(50 * o.outside_training_share)
    return [
        Case(
            "InputsOutsideTraining",
            f"fires: {over} of 100 answers a minute with f outside the training range",
            per_minute(100, over),
            "45m",
            fired,
        ),
        Case(
            "InputsOutsideTraining",
            "quiet: still pending after 20 minutes (for: 30m)",
            per_minute(100, over),
            "20m",
        ),
        Case(
            "InputsOutsideTraining",
            f"quiet: {under} of 100 answers a minute outside, under the threshold",
            per_minute(100, under),
            "45m",
        ),
        Case(
            "InputsOutsideTraining",
            "quiet: too few answers to judge (1 a minute, every one outside)",
            per_minute(1, 1),
            "45m",
        ),
    ]


def capture_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """CaptureFailing: one instance a minute left out of the record, and a capture that writes all."""
    n = MetricNames(service)

    def capturing(failed_per_minute: int) -> dict[str, str]:
        return {
            series_str(n.captured_instances_total, target): "0+100x30",
            series_str(n.capture_failures_total, target): f"0+{failed_per_minute}x30",
            **ready,
        }

    return fires_and_quiet(
        "CaptureFailing",
        service,
        "20m",
        ("instances left out of the capture log", capturing(1)),
        ("every drawn instance written", capturing(0)),
    )


def shed_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """PredictionsShed: 5 % of the prediction requests refused, by either limit; a refusal now and then."""
    n = MetricNames(service)
    shed_503 = {**target, "endpoint": "/predict/batch", "method": "POST", "status": "503"}

    def refusing(answered_per_minute: int, by_requests: int, by_instances: int) -> dict[str, str]:
        shed = n.prediction_requests_shed_total
        return {
            **answered(n, {**target, "endpoint": "/predict/batch"}, f"0+{answered_per_minute}x30"),
            series_str(n.requests_total, shed_503): f"0+{by_requests + by_instances}x30",
            series_str(shed, {**target, "limit": "requests"}): f"0+{by_requests}x30",
            series_str(shed, {**target, "limit": "instances"}): f"0+{by_instances}x30",
            **ready,
        }

    return fires_and_quiet(
        "PredictionsShed",
        service,
        "25m",
        # Each limit refuses 0.6 %, under the 1 % threshold: the alert adds them up.
        ("12 in 1,000 refused, half by each limit", refusing(988, 6, 6)),
        ("1 in 1,000 refused", refusing(999, 0, 1)),
    )


def refusal_flood_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """A client's refusals (a keyless scanner, a client looping on an expired key) do not hide a burn
    of 503s from the availability page, nor a replica's refusals from PredictionsShed: 4xx are no
    events of the SLI. Counted as requests, as many 401s as answers halved both ratios, and neither
    fired (a probe's cases, the page's at ten times its rates so that it fires within the hour)."""
    n = MetricNames(service)

    def counted(status: str, per_minute: int, minutes: int) -> tuple[str, str]:
        labels = {**target, "endpoint": "/predict", "method": "POST", "status": status}
        return series_str(n.requests_total, labels), f"0+{per_minute}x{minutes}"

    def ok(per_minute: int, minutes: int) -> dict[str, str]:
        return answered(n, {**target, "endpoint": "/predict"}, f"0+{per_minute}x{minutes}")

    # 1 % of the answers 503 (0.99 % of the events): the 6 h tier's 6x budget, 10 and more an hour.
    burn = {**ok(100, 40), **dict([counted("503", 1, 40), counted("401", 100, 40)])}
    shed, failed = error_kind_actions(n, FAST_BURN[1][0][0])
    # 1.5 % of the answers refused by a full replica: over the 1 % threshold.
    full = {**ok(600, 30), **dict([counted("503", 9, 30), counted("401", 600, 30)])}
    full[series_str(n.prediction_requests_shed_total, {**target, "limit": "requests"})] = "0+9x30"
    return [
        Case(
            "AvailabilityBudgetBurnFast",
            "fires: 1 % of the answers 503, beside as many 401s as answers",
            {**burn, **ready},
            "35m",
            [{"alertname": "AvailabilityBudgetBurnFast", "service": service}],
            {shed: "0%", failed: "0%"},
        ),
        Case(
            "PredictionsShed",
            "fires: 1.5 % of the answers shed, beside as many 401s as answers",
            {**full, **ready},
            "20m",
            [{"alertname": "PredictionsShed", "service": service}],
        ),
    ]


def all_failed(service: str, window: str) -> dict[str, str]:
    """What the availability alerts' shares of 5xx by kind render to when every 5xx is a 500."""
    shed, failed = error_kind_actions(MetricNames(service), window)
    return {shed: "0%", failed: "100%"}


def shed_burst_cases(service: str) -> list[Case]:
    """A 10-second burst of explained batches refused by a full replica pages at once (the availability
    budget burns fast): PredictionsShed fires with the page, and the page names the 503s as refusals.

    As measured on chicagotaxi at its defaults: 5 single predictions a second throughout, and six
    clients looping on 250-row explained batches for 10 s, ignoring Retry-After: 144 answered and 477
    refused by the instance limit. Scraped every SCRAPE_INTERVAL, the burst between two scrapes.
    """
    n = MetricNames(service)
    target = {"instance": "10.0.0.1:8080", "job": "model-servers", "service": service}
    burst_at = 80  # samples: the burst lands in the scrape at 20m15s
    hour = 240

    def counted(endpoint: str, status: str) -> str:
        return series_str(
            n.requests_total, {**target, "endpoint": endpoint, "method": "POST", "status": status}
        )

    def after_burst(value: int) -> str:
        return f"0x{burst_at} {value}x{hour - burst_at - 1}"

    series = {
        **answered(n, {**target, "endpoint": "/predict"}, f"0+75x{hour}"),
        **answered(n, {**target, "endpoint": "/predict/batch"}, after_burst(144)),
        counted("/predict/batch", "503"): after_burst(477),
        # As a pod exports them: every prediction endpoint's 500 and 503, and each limit, from 0.
        counted("/predict", "500"): f"0x{hour}",
        counted("/predict", "503"): f"0x{hour}",
        counted("/predict/batch", "500"): f"0x{hour}",
        series_str(n.prediction_requests_shed_total, {**target, "limit": "instances"}): after_burst(477),
        series_str(n.prediction_requests_shed_total, {**target, "limit": "requests"}): f"0x{hour}",
        series_str(n.model_ready, target): f"1x{hour}",
    }
    paged = {"alertname": "AvailabilityBudgetBurnFast", "service": service}
    shed, failed = error_kind_actions(n, FAST_BURN[1][0][0])
    named = {shed: "100%", failed: "0%"}
    # Both wait the same 2 minutes from the first evaluation after the burst (21m): due at 23m.
    due = f"{21 + int(SHED_FOR.removesuffix('m')) + 1}m"
    return [
        Case(
            "AvailabilityBudgetBurnFast", "fires: a 10-second burst of refusals", series, due, [paged], named
        ),
        Case(
            "PredictionsShed",
            "fires with the page a 10-second burst of refusals raised",
            series,
            due,
            [{"alertname": "PredictionsShed", "service": service}],
        ),
        # The 30-minute window keeps the page firing; its description still names the refusals.
        Case(
            "AvailabilityBudgetBurnFast",
            "fires: 20 minutes after the burst, naming its 503s as refusals",
            series,
            "40m",
            [paged],
            named,
        ),
        Case("PredictionsShed", "quiet: 20 minutes after the burst, out of its window", series, "40m"),
    ]


def key_reload_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ApiKeysReloadFailing: a keys file that stays bad pages, per pod; one fixed within minutes does not."""
    n = MetricNames(service)
    failing = series_str(n.api_keys_reload_failing, target)
    return [
        Case(
            "ApiKeysReloadFailing",
            "fires: a bad keys file for 10 minutes, naming the pod",
            {failing: "0x5 1x20", **ready},
            "15m",
            [{"alertname": "ApiKeysReloadFailing", "service": service, **target}],
        ),
        Case(
            "ApiKeysReloadFailing",
            "quiet: a bad file fixed within 3 minutes",
            {failing: "0x5 1x3 0x20", **ready},
            "15m",
        ),
    ]


def unauthenticated_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """RequestsUnauthenticated: a client's traffic refused; a stray request now and then, among probes."""
    n = MetricNames(service)

    def requests(answered: int, refused: int, probes: int) -> dict[str, str]:
        def counted(endpoint: str, status: str) -> str:
            labels = {**target, "endpoint": endpoint, "method": "POST", "status": status}
            return series_str(n.requests_total, labels)

        return {
            counted("/predict", "200"): f"0+{answered}x40",
            counted("/predict", "401"): f"0+{refused}x40",
            counted("/healthz", "200"): f"0+{probes}x40",
            **ready,
        }

    return fires_and_quiet(
        "RequestsUnauthenticated",
        service,
        "35m",
        ("10 of every 100 prediction requests refused", requests(90, 10, 12)),
        ("1 of every 100 refused", requests(99, 1, 12)),
    )


def client_refused_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ClientRefusedAtItsShare, by client: the service's one caller at ten times what its replica
    answers (90 % of its requests 429, no 5xx, nothing shed: the availability page and PredictionsShed
    stay quiet, a reviewer's case); a client refused a trickle of requests; one client among others
    whose bursts meet its share now and then."""
    n = MetricNames(service)

    def calls(**by_client: tuple[int, int]) -> dict[str, str]:
        """Each client's prediction requests a minute, answered and refused at its share, and the
        service's, which add them up."""
        series = {}
        for status, column in (("200", 0), ("429", 1)):
            request = {**target, "endpoint": "/predict", "method": "POST", "status": status}
            total = sum(counts[column] for counts in by_client.values())
            series[series_str(n.requests_total, request)] = f"0+{total}x40"
            for client, counts in by_client.items():
                # The namespace the model-servers scrape job sets on every pod's series.
                keyed = {
                    "client": client,
                    "key_id": "k1",
                    "endpoint": "/predict",
                    "status": status,
                    "namespace": NAMESPACE,
                }
                series[series_str(n.client_requests_total, {**target, **keyed})] = f"0+{counts[column]}x40"
        return {**series, **ready}

    return [
        Case(
            CLIENT_REFUSED_AT_ITS_SHARE,
            "fires: the one client at 10x a replica's capacity, 90 % of its requests 429, naming it",
            calls(backend=(100, 900)),
            "30m",
            [
                {
                    "alertname": CLIENT_REFUSED_AT_ITS_SHARE,
                    "service": service,
                    "client": "backend",
                    "namespace": NAMESPACE,
                }
            ],
            {"{{ $value | humanizePercentage }}": "90%"},
        ),
        # Half of its requests refused, but 3 a minute: 45 in 15 minutes, under the minimum.
        Case(CLIENT_REFUSED_AT_ITS_SHARE, "quiet: a trickle refused", calls(backend=(3, 3)), "30m"),
        # 2 % of the bursty client's requests refused: its share at work, beside a steady client.
        Case(
            CLIENT_REFUSED_AT_ITS_SHARE,
            "quiet: ordinary traffic, 2 in 100 of one client's requests refused in its bursts",
            calls(backend=(980, 20), reports=(500, 0)),
            "30m",
        ),
    ]


def key_expiry_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ApiKeyExpiresSoon: per client, one whose keys run out in a week, one whose last key lasts a month.

    promtool's clock starts at 0 (1970-01-01), so an expiry is the seconds from the start of the test.
    """
    n, o = MetricNames(service), objectives(service)
    day = 86400

    def expiring(client: str, days: int) -> tuple[str, str]:
        return series_str(
            n.api_key_expiry_timestamp_seconds, {**target, "client": client}
        ), f"{days * day}x90"

    soon, later = o.api_key_expiry_warning_days // 2, o.api_key_expiry_warning_days * 2
    return [
        Case(
            "ApiKeyExpiresSoon",
            f"fires for the client whose last key expires in {soon} days, not the one with {later}",
            dict([expiring("contractor", soon), expiring("risk", later), *ready.items()]),
            "70m",
            [{"alertname": "ApiKeyExpiresSoon", "service": service, "client": "contractor"}],
            {"{{ $value | humanizeTimestamp }}": f"1970-01-{1 + soon:02d} 00:00:00 +0000 UTC"},
        ),
        Case(
            "ApiKeyExpiresSoon",
            "quiet: the expiry is not an hour within the warning yet",
            dict([expiring("contractor", soon), *ready.items()]),
            "50m",
        ),
    ]


def loop_lag_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """EventLoopSaturated: a loop 30 ms late on average, and one 2 ms late."""
    n = MetricNames(service)

    per_minute = round(60 / loop_lag.INTERVAL_SECONDS)  # the timer's wake-ups

    def lagging(ms_late: int) -> dict[str, str]:
        # Every wake-up ms_late late.
        return {
            series_str(f"{n.event_loop_lag_seconds}_sum", target): f"0+{per_minute * ms_late / 1000:g}x30",
            series_str(f"{n.event_loop_lag_seconds}_count", target): f"0+{per_minute}x30",
            **ready,
        }

    return fires_and_quiet(
        "EventLoopSaturated",
        service,
        "25m",
        ("30 ms late on average", lagging(30)),
        ("2 ms late, as below three quarters of capacity", lagging(2)),
    )


def shadow_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ShadowFallingBehind: a shadow whose queue overflows, and one that keeps up."""
    n = MetricNames(service)

    def sampled(per_minute: int, queue_full_per_minute: int) -> dict[str, str]:
        compared = {**target, "outcome": "a", "shadow_outcome": "a", "agree": "true"}
        series = {
            series_str(n.shadow_predictions_total, compared): f"0+{per_minute - queue_full_per_minute}x30"
        }
        for reason in ("queue_full", "not_ready"):
            amount = queue_full_per_minute if reason == "queue_full" else 0
            series[series_str(n.shadow_skipped_total, {**target, "reason": reason})] = f"0+{amount}x30"
        return {**series, **ready}

    falling_behind = fires_and_quiet(
        "ShadowFallingBehind",
        service,
        "25m",
        ("30% of the sampled instances skipped for a full queue", sampled(1000, 300)),
        ("2% skipped (a burst)", sampled(1000, 20)),
    )
    return falling_behind + shadow_better_cases(service, target)


def shadow_better_cases(service: str, target: dict[str, str]) -> list[Case]:
    """ShadowBetter: two pods shadowing v8 against the served v7; it names both versions and the
    metric, and says the paired difference. Once the pods serve another version, a comparison
    with v7 still exported raises nothing."""
    n = MetricNames(service)
    other = {**target, "instance": "10.0.0.2:8080"}

    def compared(
        verdict: str, estimate: float, groups_worse: int | None = 0, serving: str = "7"
    ) -> dict[str, str]:
        series: dict[str, str] = {}
        for pod in (target, other):
            if groups_worse is not None:  # None: a run logged before groups were compared
                series[series_str(n.shadow_live_groups_worse, pod)] = f"{groups_worse}x30"
            series[series_str(n.model_info, {**pod, "version": serving, "run_id": "abc"})] = "1x30"
            series[series_str(n.shadow_model_info, {**pod, "version": "8", "run_id": "def"})] = "1x30"
            for bound, value in (
                ("estimate", estimate),
                ("ci_low", estimate - 0.02),
                ("ci_high", estimate + 0.02),
            ):
                labels = {**pod, "metric": "roc_auc", "bound": bound, "against": "7"}
                series[series_str(n.shadow_live_difference, labels)] = f"{value}x30"
            for v in LIVE_VERDICTS:
                series[series_str(n.shadow_live_verdict, {**pod, "verdict": v})] = f"{int(v == verdict)}x30"
        return series

    fired = {
        "alertname": "ShadowBetter",
        "service": service,
        "version": "8",
        "against": "7",
        "metric": "roc_auc",
    }
    return [
        Case(
            "ShadowBetter",
            "fires: the shadow's paired difference is beyond the noise, above 0",
            compared("better", 0.0553),
            "20m",
            [fired],
            {'{{ $value | printf "%+.4f" }}': "+0.0553"},
        ),
        Case(
            "ShadowBetter",
            "fires: a comparison logged before groups were compared counts none",
            compared("better", 0.0553, groups_worse=None),
            "20m",
            [fired],
            {'{{ $value | printf "%+.4f" }}': "+0.0553"},
        ),
        Case(
            "ShadowBetter",
            "quiet: better on the whole, worse beyond the noise for one group",
            compared("better", 0.0553, groups_worse=1),
            "20m",
        ),
        Case(
            "ShadowBetter",
            "quiet: better than v7, but the pods serve v9 since (promoted)",
            compared("better", 0.0553, serving="9"),
            "20m",
        ),
        *(
            Case("ShadowBetter", f"quiet: the verdict is {held}", compared(held, estimate), "20m")
            for held, estimate in (("within the noise", 0.004), ("worse", -0.05), ("none", 0.0))
        ),
    ]


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


def canary_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """CanaryFailing and CanarySlow: a canary worse than the stable model, and two that are not;
    CanaryStopped, and CanaryRefreshFailing: a canary version the pods cannot load."""
    n, o = MetricNames(service), objectives(service)

    def answered(variant: str, per_minute: int, failed_per_minute: int) -> dict[str, str]:
        def counter(result: str) -> str:
            return series_str(n.variant_requests_total, {**target, "variant": variant, "result": result})

        return {
            counter("ok"): f"0+{per_minute - failed_per_minute}x30",
            counter("failed"): f"0+{failed_per_minute}x30",
        }

    def timed(variant: str, per_minute: int, slowest: str) -> dict[str, str]:
        """``per_minute`` requests a minute, all in the bucket whose upper bound is ``slowest``."""
        bounds = ("0.001", "0.005", "0.01", "+Inf")
        first = bounds.index(slowest)
        return {
            series_str(f"{n.variant_latency_seconds}_bucket", {**target, "variant": variant, "le": b}): (
                f"0+{per_minute if i >= first else 0}x30"
            )
            for i, b in enumerate(bounds)
        }

    # A comparison ignoring ``variant`` drops it: the alerts are labelled with the service alone.
    failing = [{"alertname": "CanaryFailing", "service": service}]
    stopped = {
        pod: series_str(n.canary_stopped, {**target, "instance": f"10.0.0.{pod}:8080"}) for pod in (1, 2)
    }
    slow = [{"alertname": "CanarySlow", "service": service}]
    refresh_failing = series_str(n.canary_refresh_failing, target)
    canary_served = {series_str(n.canary_model_info, {**target, "version": "2", "run_id": "abc"}): "1x30"}
    stable = answered(STABLE, 900, 0)
    few = o.canary_min_requests // 5 // 2  # a minute's share, half the minimum over 5 minutes
    return [
        Case(
            "CanaryFailing",
            "fires: 5% of the canary's requests fail, none of the stable model's",
            {**stable, **answered(CANARY, 100, 5), **ready},
            "15m",
            failing,
        ),
        Case(
            "CanaryFailing",
            "fires: 5% of the canary's requests fail, and it answers them all (--percent 100)",
            {**answered(CANARY, 100, 5), **answered(STABLE, 0, 0), **ready},
            "15m",
            failing,
        ),
        Case(
            "CanaryFailing",
            "quiet: both variants fail 5% (a shared cause, which the availability SLO alerts cover)",
            {**answered(STABLE, 900, 45), **answered(CANARY, 100, 5), **ready},
            "15m",
        ),
        Case(
            "CanaryFailing",
            f"quiet: every canary request fails, but it answered {few * 5} in 5 minutes",
            {**stable, **answered(CANARY, few, few), **ready},
            "15m",
        ),
        Case(
            "CanarySlow",
            "fires: the canary's requests take 5-10 ms, the stable model's under 1 ms",
            {
                **answered(CANARY, 100, 0),
                **timed(STABLE, 900, "0.001"),
                **timed(CANARY, 100, "0.01"),
                **ready,
            },
            "20m",
            slow,
        ),
        *fires_and_quiet(
            "CanaryStopped",
            service,
            "10m",
            ("one of two pods stopped the canary", {stopped[1]: "0x3 1x10", stopped[2]: "0x13", **ready}),
            ("both pods send the canary its share", {stopped[1]: "0x13", stopped[2]: "0x13", **ready}),
        ),
        Case(
            "CanaryRefreshFailing",
            "fires: the version the canary alias names has not loaded for 15 minutes",
            {refresh_failing: "0x3 1x20", **canary_served, **ready},
            "20m",
            [{"alertname": "CanaryRefreshFailing", "service": service, **target}],
        ),
        Case(
            "CanaryRefreshFailing",
            "fires: no canary is loaded (its alias was deleted, then set to a version that does not load)",
            {refresh_failing: "0x3 1x20", **ready},
            "20m",
            [{"alertname": "CanaryRefreshFailing", "service": service, **target}],
        ),
        Case(
            "CanaryRefreshFailing",
            "quiet: the new version loaded at its second attempt, 5 minutes on",
            {refresh_failing: "0x3 1x5 0x15", **canary_served, **ready},
            "20m",
        ),
        Case(
            "CanarySlow",
            "quiet: both variants take 1-5 ms",
            {
                **answered(CANARY, 100, 0),
                **timed(STABLE, 900, "0.005"),
                **timed(CANARY, 100, "0.005"),
                **ready,
            },
            "20m",
        ),
    ]


def rule_test_file(service: str) -> dict[str, Any]:
    return {
        "rule_files": [f"../rules/{service}.rules.yaml"],
        "evaluation_interval": "1m",
        "tests": alert_tests(alerts(service), rule_cases(service))
        + alert_tests(alerts(service), shed_burst_cases(service), interval=SCRAPE_INTERVAL)
        + recording_tests(service)
        + replica_panel_tests(service)
        + autoscaler_condition_panel_tests(service)
        + scheduled_run_panel_tests(service, live_evaluation, "live evaluation", 86400)
        + scheduled_run_panel_tests(service, batch_scoring, "batch scoring", 31 * 86400)
        + live_quality_panel_tests(service)
        + shadow_comparison_panel_tests(service)
        + canary_share_panel_tests(service),
    }


def alert_tests(rules: list[Alert], cases: list[Case], interval: str = "1m") -> list[dict[str, Any]]:
    """promtool's alert_rule_test of each case, its expected labels and annotations rendered."""
    by_name = {a.name: a for a in rules}
    tests = []
    for case in cases:
        alert = by_name[case.alert]
        expected = []
        for labels in case.expected:
            rule_labels = {k: v for k, v in labels.items() if k != "alertname"}
            actions = {**label_actions(rule_labels), **case.rendered}
            expected.append(
                {
                    "exp_labels": {**rule_labels, "severity": alert.severity},
                    "exp_annotations": {k: render(v, actions) for k, v in alert.annotations().items()},
                }
            )
        tests.append(
            {
                "name": f"{case.alert}: {case.description}",
                "interval": interval,
                "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                "alert_rule_test": [
                    {"eval_time": case.eval_time, "alertname": case.alert, "exp_alerts": expected}
                ],
            }
        )
    return tests


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


def replica_panel_tests(service: str) -> list[dict[str, Any]]:
    """The replica panel's queries over kube-state-metrics' series (no live test has them: no cluster).

    Beside another service's objects, so a query that missed its service's name would show.
    """
    # Maximum, desired, available and minimum, in the order of the panel's queries.
    # The other service's are all higher: a query that ignored the name would read them.
    own, other = (10, 6, 5, 2), (12, 8, 7, 4)
    series: dict[str, str] = {}
    for name, (maximum, desired, available, minimum) in ((service, own), (f"other-{service}", other)):
        hpa = {**CLUSTER_TARGET, "horizontalpodautoscaler": name}
        series[series_str(AUTOSCALER_MAX, hpa)] = f"{maximum}x10"
        series[series_str(AUTOSCALER_DESIRED, hpa)] = f"{desired}x10"
        series[series_str(DEPLOYMENT_AVAILABLE, {**CLUSTER_TARGET, "deployment": name})] = f"{available}x10"
        series[series_str(AUTOSCALER_MIN, hpa)] = f"{minimum}x10"
    return panel_tests("replica panel", replica_queries(service), series, own)


def autoscaler_condition_panel_tests(service: str) -> list[dict[str, Any]]:
    """The autoscaler conditions panel over kube-state-metrics' series: a series per condition and
    status, 1 on the status held. Beside another service's autoscaler, whose conditions are the
    opposite, so a query that missed its service's name, or the status, would show."""
    own = {"ScalingActive": 1, "AbleToScale": 1, "ScalingLimited": 0}
    series: dict[str, str] = {}
    for name, held in ((service, own), (f"other-{service}", {c: 1 - v for c, v in own.items()})):
        hpa = {**CLUSTER_TARGET, "horizontalpodautoscaler": name}
        for condition, value in held.items():
            for status, sample in (("true", value), ("false", 1 - value)):
                labels = {**hpa, "condition": condition, "status": status}
                series[series_str(AUTOSCALER_CONDITION, labels)] = f"{sample}x10"
    values = [own[condition] for condition in AUTOSCALER_CONDITIONS]
    return panel_tests("autoscaler conditions panel", autoscaler_condition_queries(service), series, values)


def scheduled_run_panel_tests(
    service: str, name_of: Callable[[str], str], what: str, period: int
) -> list[dict[str, Any]]:
    """A CronJob's panels (the live evaluation's, the batch scoring's): an hour since the last success
    (at 5 minutes, a success at -55 minutes), overdue past OVERDUE_PERIODS of its ``period``, and the
    newest run failed, beside another service's CronJob that did the opposite on an hourly schedule."""
    series: dict[str, str] = {}
    for name, success, runs in (
        (service, -3300, [(100, False), (200, True)]),
        (f"other-{service}", 0, [(100, True), (300, False)]),
    ):
        cronjob = {**CLUSTER_TARGET, "cronjob": name_of(name)}
        series[series_str(CRONJOB_LAST_SUCCESS, cronjob)] = f"{success}x10"
        every = period if name == service else 3600
        series[series_str(CRONJOB_LAST_SCHEDULE, cronjob)] = "100x10"
        series[series_str(CRONJOB_NEXT_SCHEDULE, cronjob)] = f"{100 + every}x10"
        series.update(evaluation_job_series(name_of(name), runs))
    overdue_hours = OVERDUE_PERIODS * period / 3600
    return panel_tests(
        f"{what} panels", scheduled_run_queries(name_of(service)), series, [1, overdue_hours, 1]
    )


def live_quality_panel_tests(service: str) -> list[dict[str, Any]]:
    """The live quality panels, over two pods: one serves version 3, evaluated 2 hours before (worse,
    on 400 answers); the other version 4, never evaluated. Each figure is its own version's, and the
    verdict query gives the verdict held, not the three that are 0."""
    n = MetricNames(service)
    series: dict[str, str] = {}
    for instance, version, figures in (
        ("10.0.0.1:8080", "3", {("held_out", "estimate"): 0.86, ("live", "estimate"): 0.8}),
        ("10.0.0.2:8080", "4", {("held_out", "estimate"): 0.87}),
    ):
        target = {"instance": instance, "job": "model-servers", "service": service}
        series[series_str(n.model_info, {**target, "version": version, "run_id": f"run-{version}"})] = "1x10"
        for (split, bound), value in figures.items():
            labels = {**target, "split": split, "metric": "roc_auc", "bound": bound}
            series[series_str(n.model_quality, labels)] = f"{value}x10"
        if version == "3":
            for verdict in LIVE_VERDICTS:
                series[series_str(n.model_live_verdict, {**target, "verdict": verdict})] = (
                    f"{int(verdict == 'worse')}x10"
                )
            series[series_str(n.model_live_answers, target)] = "400x10"
            series[series_str(n.model_live_groups_worse, target)] = "1x10"
            # Ended 6,900 s before the start: 2 hours before the cases' evaluation, at 5 minutes.
            series[series_str(n.model_live_evaluation_timestamp_seconds, target)] = "-6900x10"
    expected: list[list[tuple[dict[str, str], float]]] = [
        [({"version": "3", "split": "held_out", "bound": "estimate"}, 0.86),
         ({"version": "3", "split": "live", "bound": "estimate"}, 0.8),
         ({"version": "4", "split": "held_out", "bound": "estimate"}, 0.87)],
        [({"version": "3", "verdict": "worse"}, 1)],
        [({"version": "3"}, 400)],
        [({"version": "3"}, 1)],
        [({"version": "3"}, 2)],
    ]  # fmt: skip
    return panel_sample_tests("live quality panels", live_quality_queries(service), series, expected)


def shadow_comparison_panel_tests(service: str) -> list[dict[str, Any]]:
    """The shadow comparison panel, over two pods shadowing with version 5 against version 4: one
    exports its comparison (better, by 0.03, on 900 answers), the other not yet. The figures are
    the shadow's version's (not the served one's), and the verdict query gives the verdict held."""
    n = MetricNames(service)
    series: dict[str, str] = {}
    for instance, compared in (("10.0.0.1:8080", True), ("10.0.0.2:8080", False)):
        target = {"instance": instance, "job": "model-servers", "service": service}
        series[series_str(n.model_info, {**target, "version": "4", "run_id": "run-4"})] = "1x10"
        series[series_str(n.shadow_model_info, {**target, "version": "5", "run_id": "run-5"})] = "1x10"
        if not compared:
            continue
        for bound, value in (("estimate", 0.03), ("ci_low", 0.01), ("ci_high", 0.05)):
            labels = {**target, "metric": "roc_auc", "bound": bound, "against": "4"}
            series[series_str(n.shadow_live_difference, labels)] = f"{value}x10"
        for verdict in LIVE_VERDICTS:
            series[series_str(n.shadow_live_verdict, {**target, "verdict": verdict})] = (
                f"{int(verdict == 'better')}x10"
            )
        series[series_str(n.shadow_live_answers, target)] = "900x10"
        series[series_str(n.shadow_live_groups_worse, target)] = "1x10"
    expected: list[list[tuple[dict[str, str], float]]] = [
        [({"version": "5", "against": "4", "bound": "ci_high"}, 0.05),
         ({"version": "5", "against": "4", "bound": "ci_low"}, 0.01),
         ({"version": "5", "against": "4", "bound": "estimate"}, 0.03)],
        [({"version": "5", "verdict": "better"}, 1)],
        [({"version": "5"}, 900)],
        [({"version": "5"}, 1)],
    ]  # fmt: skip
    return panel_sample_tests("shadow comparison panel", shadow_comparison_queries(service), series, expected)


def canary_share_panel_tests(service: str) -> list[dict[str, Any]]:
    """The canary share panel over two pods, one set to 20 % and one not refreshed yet (30 %), each
    answering 100 requests a minute: 50 drawn at random (10 for the canary), 15 asking for the canary
    (X-Model-Variant) and 35 keyed or pinned to the stable model. The drawn share is the 20 % set
    on the pods whose draws they are; the answered share, 25 %, is not (a probe found 33 % answered
    of 20 % set, which the panel used to show as the canary's share)."""
    n = MetricNames(service)
    series: dict[str, str] = {}
    for instance, percent in (("10.0.0.1:8080", 20), ("10.0.0.2:8080", 30)):
        target = {"instance": instance, "job": "model-servers", "service": service}
        series[series_str(n.canary_traffic_percent, target)] = f"{percent}x10"
        for variant, drawn, answered in ((CANARY, 10, 10 + 15), (STABLE, 40, 40 + 35)):
            series[series_str(n.variant_draws_total, {**target, "variant": variant})] = f"0+{drawn}x10"
            for result, per_minute in (("ok", answered), ("failed", 0)):
                labels = {**target, "variant": variant, "result": result}
                series[series_str(n.variant_requests_total, labels)] = f"0+{per_minute}x10"
    expected: list[list[tuple[dict[str, str], float]]] = [[({}, 0.2)], [({}, 0.3)], [({}, 0.2)], [({}, 0.25)]]
    return panel_sample_tests("canary share panel", canary_share_queries(service), series, expected)


def panel_tests(
    panel: str, queries: Sequence[tuple[str, str]], series: dict[str, str], values: Sequence[float]
) -> list[dict[str, Any]]:
    """One promtool case per query of a panel (its expr and legend): over ``series`` (constant for
    10 minutes), the query gives one sample, of its value in ``values``."""
    return panel_sample_tests(panel, queries, series, [[({}, value)] for value in values])


def panel_sample_tests(
    panel: str,
    queries: Sequence[tuple[str, str]],
    series: dict[str, str],
    samples: Sequence[Sequence[tuple[dict[str, str], float]]],
) -> list[dict[str, Any]]:
    """One promtool case per query of a panel: over ``series`` (constant for 10 minutes), the query
    gives its ``samples``, each labels and value. The dashboard's ``$instance`` reads every pod."""
    return [
        {
            "name": f"{panel}: {legend}",
            "interval": "1m",
            "input_series": [{"series": k, "values": v} for k, v in series.items()],
            "promql_expr_test": [
                {
                    "expr": expr.replace("$instance", VARIABLE_ALL_VALUES["$instance"]),
                    "eval_time": "5m",
                    "exp_samples": [
                        {"labels": series_str("", labels), "value": value} for labels, value in found
                    ],
                }
            ],
        }
        for (expr, legend), found in zip(queries, samples, strict=True)
    ]
