"""The cases of a service's serving alerts: errors, latency, outcomes, drift and quality, inputs
outside the training range, the capture, load shedding, refusals and the event loop."""

from __future__ import annotations

import math

from mixin.alerts.budget_burn import error_kind_actions
from mixin.common import (
    FAST_BURN,
    MIN_BAD_REQUESTS,
    SHED_FOR,
    SLOW_BURN,
    GiB,
    keeps_training_ranges,
    le,
    objectives,
)
from mixin.rule_tests.access import (
    client_refused_cases,
    key_expiry_cases,
    key_reload_cases,
    unauthenticated_cases,
)
from mixin.rule_tests.cases import Case, answered, fires_and_quiet, series_str
from mixin.rule_tests.rollouts import canary_cases, shadow_cases
from mixin.rule_tests.workloads import batch_scoring_cases, cluster_cases, evaluation_cases
from servekit.metrics import loop_lag
from servekit.metrics.names import LIVE_VERDICTS, OPEN_INFERENCE_INFER, MetricNames


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
