"""How full the replicas are and what the autoscaler makes of it."""

from __future__ import annotations

from mixin.autoscaling import AUTOSCALING_TARGET_CONCURRENCY
from mixin.cluster import autoscaler_condition_queries, replica_queries
from mixin.common import number, objectives, sel
from mixin.grafana import Grid, panel
from mixin.recorded import CONCURRENCY
from mixin.service_dashboard.variables import INSTANCE
from servekit.metrics.names import MetricNames


def add_capacity_panels(g: Grid, service: str) -> None:
    """Requests and batch instances in flight, event loop lag, concurrency, the autoscaler's replicas
    and conditions, and the requests shed when a replica is full."""
    n, o = MetricNames(service), objectives(service)
    g.add(
        panel(
            "timeseries",
            "Prediction requests in flight",
            "Prediction requests each replica was answering when scraped. At "
            f"{service.upper()}_MAX_CONCURRENT_REQUESTS it refuses the next at once (503, Retry-After).",
            "short",
            [(f"max by (instance) ({n.prediction_requests_in_flight}{{{INSTANCE}}})", "{{instance}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Batch instances in flight",
            "Instances of the batches each replica was predicting in worker threads when scraped (single "
            f"records and small batches are answered on the event loop). At {service.upper()}_MAX_CONCURRENT_"
            "INSTANCES it refuses the next batch that would pass it (503, Retry-After).",
            "short",
            [(f"max by (instance) ({n.prediction_instances_in_flight}{{{INSTANCE}}})", "{{instance}}")],
        ),
        12,
        6,
    )
    lag = n.event_loop_lag_seconds
    g.add(
        panel(
            "timeseries",
            "Event loop lag (mean, 1 m)",
            "How late each replica's event loop runs ready work. Single requests wait that long before "
            f"the app sees them; EventLoopSaturated past {number(o.event_loop_lag * 1000)} ms for 10 m.",
            "s",
            [
                (
                    f"sum by (instance) (rate({lag}_sum{{{INSTANCE}}}[1m]))\n/\n"
                    f"sum by (instance) (rate({lag}_count{{{INSTANCE}}}[1m]))",
                    "{{instance}}",
                )
            ],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction concurrency (1 m)",
            "Seconds spent answering prediction requests per second: the mean number in the app (the "
            "latency histogram's sum: refusals and 5xx, mostly instant, are left out). "
            "The autoscaler's metric with k8s/components/autoscale-on-concurrency (target "
            f"{number(AUTOSCALING_TARGET_CONCURRENCY)} per pod).",
            "short",
            [(f"max by (instance) ({sel(CONCURRENCY, service, INSTANCE)})", "{{instance}}")],
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Replicas: the autoscaler's bounds, what it wants, what is available",
            "From kube-state-metrics. Desired at the maximum: more load is shed or answered late "
            "(AutoscalerAtMaximum). Available under desired: pods that cannot be scheduled, pulled or "
            "made ready (ReplicasUnavailable).",
            "none",
            replica_queries(service),
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Autoscaler conditions (1 = holds)",
            "From kube-state-metrics. ScalingActive at 0: the autoscaler cannot read its metrics and "
            "holds the replica count whatever the load (AutoscalerInactive). ScalingLimited at 1: it "
            "wants more, or fewer, replicas than its bounds allow.",
            "none",
            autoscaler_condition_queries(service),
        ),
        12,
        6,
    )
    g.add(
        panel(
            "timeseries",
            "Prediction requests shed (per second, 5 m)",
            "Refused at once because the replica was full, by the limit they would have passed: requests "
            "in flight or batch instances in flight. They are 503s in the error ratio too. Sustained, the "
            "autoscaler needs more room (PredictionsShed).",
            "reqps",
            [
                (
                    f"sum by (instance, limit) (rate({n.prediction_requests_shed_total}{{{INSTANCE}}}[5m]))",
                    "{{instance}} ({{limit}})",
                )
            ],
        ),
        12,
        6,
    )
