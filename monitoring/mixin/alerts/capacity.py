"""Capacity: the autoscaler, the requests shed by full replicas, the event loop, the memory limit."""

from __future__ import annotations

from mixin.alerts.alert import POD, Alert
from mixin.cluster import AUTOSCALER_CONDITION, AUTOSCALER_CURRENT, AUTOSCALER_MAX, autoscaler
from mixin.common import NAMESPACE_LABEL, SHED_FOR, SHED_WINDOW, kubectl, number, objectives, sel, spelled
from mixin.recorded import MEMORY_RATIO, availability_events
from servekit.metrics.names import MetricNames


def autoscaler_alerts(service: str) -> list[Alert]:
    """AutoscalerAtMaximum and AutoscalerInactive."""
    s = service
    return [
        Alert(
            "AutoscalerAtMaximum",
            f"{autoscaler(AUTOSCALER_CURRENT, service)}\n>=\n{autoscaler(AUTOSCALER_MAX, service)}",
            "warning",
            f"{s} has run at its autoscaler's maximum of {{{{ $value }}}} replicas for 15 minutes",
            f"The HorizontalPodAutoscaler of {s} has held its maximum replica count for 15 minutes: "
            "more traffic cannot be spread over more pods, so the pods shed it (PredictionsShed) or "
            "answer it late. Raise maxReplicas in the overlay if the nodes and the budget allow "
            "(`make cost` prices the ceiling), or find the client that brought the load.",
            "15m",
        ),
        Alert(
            "AutoscalerInactive",
            autoscaler(AUTOSCALER_CONDITION, service, 'condition="ScalingActive",status="false"') + " == 1",
            "warning",
            f"{s}'s autoscaler cannot compute how many replicas it needs",
            f"For 15 minutes the HorizontalPodAutoscaler of {s} has been unable to read its metrics "
            "(ScalingActive is false), so it holds the replica count whatever the load. The "
            "concurrency metric comes through prometheus-adapter (k8s/components/autoscale-on-"
            f"concurrency), CPU through metrics-server: {kubectl(f'describe hpa {s}', NAMESPACE_LABEL)} "
            "names the one it cannot read.",
            "15m",
        ),
    ]


def shedding_alerts(service: str) -> list[Alert]:
    """PredictionsShed: the prediction requests refused at once by a full replica (503 overloaded)."""
    n, o = MetricNames(service), objectives(service)
    s = service
    return [
        Alert(
            "PredictionsShed",
            f"sum(rate({n.prediction_requests_shed_total}[{SHED_WINDOW}]))\n/\n"
            f"{availability_events(n, SHED_WINDOW)}\n> {number(o.shed_ratio)}",
            "warning",
            f"{s}'s replicas are full and refuse prediction requests",
            f"For {spelled(SHED_FOR)} {s}'s replicas have refused more than {o.shed_ratio:.0%} of the "
            f"prediction requests of the last {spelled(SHED_WINDOW)} (those the availability SLI counts: "
            "answered, failed or given up by their client waiting, not the client's own refusals, 4xx) "
            "with "
            "503 overloaded at once "
            "(Retry-After: 1), each having <SVC>_MAX_CONCURRENT_REQUESTS requests or "
            "<SVC>_MAX_CONCURRENT_INSTANCES batch instances in flight (the shed counter's limit label). "
            "They are 5xx in the availability SLO too: a burst of them pages AvailabilityBudgetBurnFast "
            "as well, and that page calls for capacity, not a rollback. The autoscaler is at its "
            "maximum or cannot add pods fast enough: raise the HorizontalPodAutoscaler's maxReplicas, "
            "or find the client sending large explained batches and have it honour Retry-After.",
            SHED_FOR,
        ),
    ]


def event_loop_alerts(service: str) -> list[Alert]:
    """EventLoopSaturated."""
    n, o = MetricNames(service), objectives(service)
    s = service
    return [
        Alert(
            "EventLoopSaturated",
            # A short window held for 10 minutes: over a 10-minute window a 4-minute burst kept the
            # average up, and the alert fired 7 minutes after the load had stopped, on an idle loop.
            # Per replica, so the alert names the one and its link opens on it.
            f"max by (instance) (\n  rate({n.event_loop_lag_seconds}_sum[2m])\n  /\n"
            f"  rate({n.event_loop_lag_seconds}_count[2m])\n)\n> {number(o.event_loop_lag)}",
            "warning",
            f"The {s} replica at {{{{ $labels.instance }}}} has a saturated event loop: requests wait "
            "before they are answered",
            f"For 10 minutes the {s} replica at {{{{ $labels.instance }}}} has run ready work more than "
            f"{o.event_loop_lag * 1000:g} ms late on average (each 2-minute average). Single requests "
            "then queue before the app "
            "sees them, so they are neither refused nor counted in flight, and answers arrive late. "
            "Add replicas (the HorizontalPodAutoscaler's target or maxReplicas) or give the pods CPU.",
            "10m",
            opens_on=(POD,),
        ),
    ]


def memory_alerts(service: str) -> list[Alert]:
    """MemoryNearLimit."""
    o = objectives(service)
    s = service
    return [
        Alert(
            "MemoryNearLimit",
            f"{sel(MEMORY_RATIO, service)} > {number(o.memory_ratio)}",
            "warning",
            f"{s} at {{{{ $labels.instance }}}} uses over {o.memory_ratio:.0%} of its memory limit",
            f"Resident memory of {s} at {{{{ $labels.instance }}}} has been above {o.memory_ratio:.0%} of "
            "the container memory limit for 5 minutes; it will be OOM-killed if it grows further.",
            "5m",
            opens_on=(POD,),
        ),
    ]
