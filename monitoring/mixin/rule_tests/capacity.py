"""The cases of a service's capacity alerts: load shedding, a burst of refusals, the event loop and
memory."""

from __future__ import annotations

from mixin.common import FAST_BURN, SHED_FOR, GiB, objectives
from mixin.rule_tests.cases import Case, answered, fires_and_quiet, series_str
from mixin.rule_tests.error_kinds import error_kinds
from servekit import lag_monitor
from servekit.metrics.names import MetricNames


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
    refusals = ("100%", "0%")
    named = error_kinds(service, FAST_BURN[1][0], refusals, refusals)
    # 20 minutes after the burst its refusals are out of the 5-minute window, not the hour's.
    named_after = error_kinds(service, FAST_BURN[1][0], None, refusals)
    # A model that stopped loading at 26m45s: as many 500s by 40m as the burst's refusals.
    broke_at = 107
    broken = {**series, counted("/predict", "500"): f"0x{broke_at - 1} 0+9x{hour - broke_at - 1}"}
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
            "fires: 20 minutes after the burst, naming its 503s as refusals, over the hour",
            series,
            "40m",
            [paged],
            named_after,
        ),
        Case(
            "AvailabilityBudgetBurnFast",
            "fires: 500s after the burst, the last 5 minutes' 5xx; the burst's refusals half the hour's",
            broken,
            "40m",
            [paged],
            error_kinds(service, FAST_BURN[1][0], ("0%", "100%"), ("50%", "50%")),
        ),
        Case("PredictionsShed", "quiet: 20 minutes after the burst, out of its window", series, "40m"),
    ]


def loop_lag_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """EventLoopSaturated: a loop 30 ms late on average, one 2 ms late, and a burst that is over."""
    n = MetricNames(service)

    per_minute = round(60 / lag_monitor.INTERVAL_SECONDS)  # the timer's wake-ups

    def lagging(ms_late: int, burst: tuple[int, int] | None = None) -> dict[str, str]:
        # Every wake-up ms_late late; or, with a burst (minutes, ms), that late first.
        late = f"0+{per_minute * ms_late / 1000:g}x30"
        if burst is not None:
            minutes, burst_ms = burst
            reached = per_minute * burst_ms / 1000 * minutes
            late = (
                f"0+{per_minute * burst_ms / 1000:g}x{minutes} "
                f"{reached + per_minute * ms_late / 1000:g}+{per_minute * ms_late / 1000:g}x{30 - minutes}"
            )
        return {
            series_str(f"{n.event_loop_lag_seconds}_sum", target): late,
            series_str(f"{n.event_loop_lag_seconds}_count", target): f"0+{per_minute}x30",
            **ready,
        }

    replica = {"alertname": "EventLoopSaturated", "service": service, "instance": target["instance"]}
    return [
        Case(
            "EventLoopSaturated",
            "fires: 30 ms late on average, naming the replica",
            lagging(30),
            "25m",
            [replica],
        ),
        Case(
            "EventLoopSaturated", "quiet: 2 ms late, as below three quarters of capacity", lagging(2), "25m"
        ),
        # Over a 10-minute window the burst held the average above 10 ms long enough to fire.
        Case(
            "EventLoopSaturated",
            "quiet: 4 minutes 100 ms late, then 1 ms: a burst that is over",
            lagging(1, burst=(4, 100)),
            "12m",
        ),
    ]


def memory_cases(service: str, target: dict[str, str], ready: dict[str, str]) -> list[Case]:
    """MemoryNearLimit: at the configured limit or cAdvisor's, and a process that is no target."""
    o = objectives(service)
    cases: list[Case] = []
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
    return cases
