"""The cases of a service's serving alerts: errors, latency, refusals, its targets and their
readiness, the model served and its live quality, the capture. With those of ``drift`` and
``capacity``, what ``rule_cases`` gathers of a service's alerts."""

from __future__ import annotations

from mixin.alerts.model import REFRESH_WINDOW, failures_at_step
from mixin.common import FAST_BURN, MIN_BAD_REQUESTS, SLOW_BURN, keeps_training_ranges, le, objectives
from mixin.rule_tests.access import (
    client_refused_cases,
    key_expiry_cases,
    key_reload_cases,
    unauthenticated_cases,
)
from mixin.rule_tests.capacity import loop_lag_cases, memory_cases, shed_cases
from mixin.rule_tests.cases import Case, answered, fires_and_quiet, model_info, series_str
from mixin.rule_tests.drift import (
    attribution_drift_cases,
    input_drift_cases,
    outcome_drift_cases,
    outside_training_cases,
)
from mixin.rule_tests.error_kinds import all_failed, error_kinds
from mixin.rule_tests.rollouts import canary_cases, shadow_cases
from mixin.rule_tests.workloads import batch_scoring_cases, cluster_cases, evaluation_cases
from servekit.metrics.names import LIVE_VERDICTS, OPEN_INFERENCE_INFER, MetricNames


def rule_cases(service: str) -> list[Case]:
    target = {"instance": "10.0.0.1:8080", "job": "model-servers", "service": service}
    ready = {series_str(MetricNames(service).model_ready, target): "1x60"}
    cases = budget_burn_cases(service, target, ready)
    cases += refusal_flood_cases(service, target, ready)
    cases += availability_cases(service, target, ready)
    cases += model_refresh_cases(service, target, ready)
    cases += verdict_cases(service, target, ready)
    cases += outcome_drift_cases(service, target, ready)
    cases += attribution_drift_cases(service, target, ready)
    cases += input_drift_cases(service, target, ready)
    cases += memory_cases(service, target, ready)
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


def served_version(n: MetricNames, target: dict[str, str]) -> dict[str, str]:
    """Version 7 (run abc) loaded on ``target``: the version the model's alerts name."""
    return {model_info(n, target): "1x60"}


def budget_burn_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """AvailabilityBudgetBurn and LatencyBudgetBurn, Fast and Slow: burns that page and those that do
    not, a burn that stopped, low traffic, and an endpoint label with regex metacharacters."""
    n, o = MetricNames(service), objectives(service)

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
        all_500 = all_failed(service, tiers[0])
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
        fast_500 = all_failed(service, FAST_BURN[1][0])
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
            all_failed(service, FAST_BURN[1][0]),
        )
    )
    return cases


def availability_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ServiceAbsent, ServiceTargetDown and ModelNotReady: of one pod, and of one or two pods of three."""
    n = MetricNames(service)
    cases: list[Case] = []
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
    return cases


def model_refresh_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """ModelRefreshFailing: a version that does not load names the one still served; a blip does not."""
    n = MetricNames(service)
    cases: list[Case] = []
    refresh_failing = series_str(n.model_refresh_failing, target)
    serving = served_version(n, target)

    def failures(step: str, values: str) -> tuple[str, str]:
        return series_str(n.model_refresh_failures_total, {**target, "step": step}), values

    fired = [{"alertname": "ModelRefreshFailing", "service": service, "version": "7", **target}]
    # A failed attempt a minute from 5m: 15 over the 15 minutes before 25m.
    failing, none = "0x5 0+1x30", "0x35"
    by_step = {
        "the alias's version has not loaded for 20 minutes": ((none, failing), ("0", "15")),
        "the registry has not answered the pod for 20 minutes": ((failing, none), ("15", "0")),
    }
    for when, ((asked, loaded), (asking, loading)) in by_step.items():
        alias, load = failures("alias", asked), failures("load", loaded)
        cases.append(
            Case(
                "ModelRefreshFailing",
                f"fires: {when}; names the version still served and the step that fails",
                {refresh_failing: "0x5 1x30", **serving, **dict([alias, load])},
                "25m",
                fired,
                {
                    failures_at_step(n, "alias", REFRESH_WINDOW): asking,
                    failures_at_step(n, "load", REFRESH_WINDOW): loading,
                },
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
    return cases


def verdict_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """LiveQualityWorse and LiveGroupWorse: the verdict of the live evaluation of the version served."""
    n = MetricNames(service)
    serving = served_version(n, target)
    cases: list[Case] = []

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
    return cases


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
            error_kinds(service, FAST_BURN[1][0], ("0%", "0%"), ("0%", "0%")),
        ),
        Case(
            "PredictionsShed",
            "fires: 1.5 % of the answers shed, beside as many 401s as answers",
            {**full, **ready},
            "20m",
            [{"alertname": "PredictionsShed", "service": service}],
        ),
    ]
