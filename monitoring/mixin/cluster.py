"""What the cluster knows of a service and the service cannot: its replicas and its autoscaler.

A pod does not know how many siblings the cluster wanted, that some cannot be scheduled, or that
its HorizontalPodAutoscaler is at its ceiling. kube-state-metrics (k8s/base/kube-state-metrics)
reads these from the API server. Its ``--metric-allowlist`` is exactly :data:`CLUSTER_METRICS`, and
a service's Deployment and HorizontalPodAutoscaler are named after it (tests/k8s hold both).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The scrape job of kube-state-metrics (k8s/base/prometheus/prometheus.yml).
JOB = "kube-state-metrics"
#: Whether Prometheus scrapes kube-state-metrics: without it every series below is missing.
SCRAPED = f'up{{job="{JOB}"}}'

DEPLOYMENT_REPLICAS = "kube_deployment_spec_replicas"
DEPLOYMENT_AVAILABLE = "kube_deployment_status_replicas_available"
#: Replicas of the current template: it changes while a rollout is under way.
DEPLOYMENT_UPDATED = "kube_deployment_status_replicas_updated"
AUTOSCALER_MIN = "kube_horizontalpodautoscaler_spec_min_replicas"
AUTOSCALER_MAX = "kube_horizontalpodautoscaler_spec_max_replicas"
AUTOSCALER_CURRENT = "kube_horizontalpodautoscaler_status_current_replicas"
AUTOSCALER_DESIRED = "kube_horizontalpodautoscaler_status_desired_replicas"
#: One series per condition (AbleToScale, ScalingActive, ScalingLimited) and status; 1 is the one held.
AUTOSCALER_CONDITION = "kube_horizontalpodautoscaler_status_condition"
#: The platform's StatefulSets (Prometheus's and Alertmanager's pairs): replicas wanted, and ready.
STATEFULSET_REPLICAS = "kube_statefulset_replicas"
STATEFULSET_READY = "kube_statefulset_status_replicas_ready"

CLUSTER_METRICS = (
    DEPLOYMENT_REPLICAS,
    DEPLOYMENT_AVAILABLE,
    DEPLOYMENT_UPDATED,
    AUTOSCALER_MIN,
    AUTOSCALER_MAX,
    AUTOSCALER_CURRENT,
    AUTOSCALER_DESIRED,
    AUTOSCALER_CONDITION,
    STATEFULSET_REPLICAS,
    STATEFULSET_READY,
)


def deployment(metric: str, service: str) -> str:
    """A Deployment series of the service's Deployment."""
    return f'{metric}{{job="{JOB}",deployment="{service}"}}'


def statefulset(metric: str, name: str) -> str:
    """A StatefulSet series of the StatefulSet ``name``."""
    return f'{metric}{{job="{JOB}",statefulset="{name}"}}'


def autoscaler(metric: str, service: str, extra: str = "") -> str:
    """A HorizontalPodAutoscaler series of the service's autoscaler."""
    return f'{metric}{{job="{JOB}",horizontalpodautoscaler="{service}"{"," + extra if extra else ""}}}'


def replica_queries(service: str) -> list[tuple[str, str]]:
    """The dashboard's replica panel: the autoscaler's bounds, what it wants, and what is available."""
    return [
        (f"max({autoscaler(AUTOSCALER_MAX, service)})", "maximum"),
        (f"max({autoscaler(AUTOSCALER_DESIRED, service)})", "desired by the autoscaler"),
        (f"max({deployment(DEPLOYMENT_AVAILABLE, service)})", "available"),
        (f"max({autoscaler(AUTOSCALER_MIN, service)})", "minimum"),
    ]


#: The HorizontalPodAutoscaler's conditions, as the conditions panel names each when it holds.
AUTOSCALER_CONDITIONS = {
    "ScalingActive": "reads its metrics (ScalingActive)",
    "AbleToScale": "able to scale (AbleToScale)",
    "ScalingLimited": "held at a bound (ScalingLimited)",
}


def autoscaler_condition_queries(service: str) -> list[tuple[str, str]]:
    """The dashboard's autoscaler conditions panel: 1 while each condition holds, 0 while it does not."""
    queries = []
    for condition, legend in AUTOSCALER_CONDITIONS.items():
        holds = autoscaler(AUTOSCALER_CONDITION, service, f'condition="{condition}",status="true"')
        queries.append((f"max({holds})", legend))
    return queries


def statefulset_queries(names: Sequence[str]) -> list[tuple[str, str]]:
    """The alerting pipeline dashboard's replica panel: each StatefulSet's replicas ready and wanted,
    and last whether kube-state-metrics, which counts them, is scraped."""
    return [
        *(
            (f"max({statefulset(metric, name)})", f"{name} {what}")
            for name in names
            for metric, what in ((STATEFULSET_READY, "ready"), (STATEFULSET_REPLICAS, "wanted"))
        ),
        (f"sum({SCRAPED})", "kube-state-metrics up"),
    ]
