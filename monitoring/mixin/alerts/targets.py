"""Whether the service is there at all: its metrics scraped, its targets up, its models loaded, its
replicas available."""

from __future__ import annotations

from mixin.alerts.alert import POD, Alert
from mixin.cluster import DEPLOYMENT_AVAILABLE, DEPLOYMENT_REPLICAS, DEPLOYMENT_UPDATED, deployment
from mixin.common import NAMESPACE_LABEL, kubectl
from servekit.metrics.names import MetricNames


def half_or_more(failing: str, every: str) -> str:
    """The pods ``failing`` selects, while they are half or more of the service's (``every``).

    One pod of ten that cannot load or be scraped is kept out of the Service while nine serve: no
    page at night for it (ReplicasUnavailable tells it in working hours). Half of them is capacity
    the others may not carry, and all of them is an outage the SLO alerts cannot see, since a pod
    out of the Service counts no request.
    """
    return (
        f"{failing}\nand on (service)\n(count by (service) ({failing}) / count by (service) ({every}) >= 0.5)"
    )


def target_alerts(service: str) -> list[Alert]:
    """ServiceAbsent, ServiceTargetDown, ModelNotReady and ReplicasUnavailable."""
    n = MetricNames(service)
    s = service
    return [
        Alert(
            "ServiceAbsent",
            f"absent({n.model_ready})",
            "critical",
            f"{s} exports no metrics",
            f"No target of {s} has been scraped successfully for 5 minutes: every replica is down, "
            "or Prometheus no longer discovers it.",
            "5m",
        ),
        Alert(
            "ServiceTargetDown",
            half_or_more(f'up{{service="{service}"}} == 0', f'up{{service="{service}"}}'),
            "critical",
            f"{s} target {{{{ $labels.instance }}}} is down",
            f"Prometheus cannot scrape {s} at {{{{ $labels.instance }}}} for 2 minutes, nor half or "
            "more of the service's targets (one of many is ReplicasUnavailable's, in working hours).",
            "2m",
            opens_on=(POD,),
        ),
        Alert(
            "ModelNotReady",
            half_or_more(f"{n.model_ready} == 0", n.model_ready),
            "critical",
            f"{s} at {{{{ $labels.instance }}}} has no model loaded",
            f"{s} at {{{{ $labels.instance }}}} has been alive but not ready (model not loaded or not "
            "warmed up) for 5 minutes, and so have half or more of its replicas; /readyz says why.",
            "5m",
            opens_on=(POD,),
        ),
        Alert(
            "ReplicasUnavailable",
            f"(\n  {deployment(DEPLOYMENT_REPLICAS, service)}\n  >\n"
            f"  {deployment(DEPLOYMENT_AVAILABLE, service)}\n)\nand\n"
            f"changes({deployment(DEPLOYMENT_UPDATED, service)}[10m]) == 0",
            "warning",
            f"{s} has had fewer available replicas than the {{{{ $value }}}} it wants for 15 minutes",
            f"The {s} Deployment wants {{{{ $value }}}} replicas and fewer have been available for 15 "
            "minutes, with no rollout under way. Pods that cannot be scheduled (no node fits, a Spot "
            "stockout, a quota), cannot pull their image, or never become ready (see ModelNotReady). "
            f"{kubectl(f'describe deployment {s}', NAMESPACE_LABEL)} and its pods' events say which.",
            "15m",
        ),
    ]
