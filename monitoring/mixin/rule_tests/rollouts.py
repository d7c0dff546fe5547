"""The cases of the alerts on a second model: a shadow's comparison with the served answers, and a
canary's share and health."""

from __future__ import annotations

from mixin.common import objectives
from mixin.rule_tests.cases import Case, fires_and_quiet, series_str
from servekit.metrics.names import CANARY, LIVE_VERDICTS, STABLE, MetricNames


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
