"""A month's bill at some number of replicas of each workload: compute (Pods, or nodes), disks, the
cluster's fee, load balancers and the CronJobs; and its line in the report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from costing.cronjobs import scheduled_month
from costing.errors import CostError
from costing.pricing import HOURS_PER_MONTH, PRICES, capacity_prices, node_room, nodes_needed, workload_hour
from costing.rendering import Obj
from costing.requests import claim_size
from costing.workloads import Workload


def claimed_storage(
    objects: Sequence[Obj],
    found: Sequence[Workload],
    replicas: Mapping[str, int],
    smallest: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """GiB per StorageClass the cloud provisions: standalone claims, and each StatefulSet's per
    replica it runs, each raised to its class's ``smallest`` disk (a balanced persistent disk is
    10 GiB at least: a claim of 1Gi is billed as 10)."""
    smallest = smallest or {}
    volumes = [claim_size(o) for o in objects if o["kind"] == "PersistentVolumeClaim"]
    volumes += [claim for w in found for claim in w.claims * replicas[w.name]]
    storage: dict[str, float] = {}
    for storage_class, size in volumes:
        storage[storage_class] = storage.get(storage_class, 0.0) + max(size, smallest.get(storage_class, 0.0))
    return storage


def load_balancers(objects: Sequence[Obj]) -> int:
    """One per Ingress (GCE and ALB ingress controllers each make one) and per LoadBalancer Service."""
    return sum(
        o["kind"] == "Ingress" or (o["kind"] == "Service" and o["spec"].get("type") == "LoadBalancer")
        for o in objects
    )


@dataclass(frozen=True)
class Bill:
    """Dollars a month with some number of replicas of each workload, by line."""

    compute: float
    storage: float
    cluster: float
    load_balancers: float
    #: Nodes of the node group (EKS; a mean over time where the load varies); None where Pods are
    #: billed (GKE).
    nodes: float | None
    #: Nodes of the Spot node group (EKS), for the workloads that run only on Spot capacity.
    spot_nodes: float = 0
    #: The CronJobs' Pods, for the time they may run (:func:`scheduled_month`).
    scheduled: float = 0

    @property
    def total(self) -> float:
        return self.compute + self.storage + self.cluster + self.load_balancers + self.scheduled


def at_scale(found: Sequence[Workload], scale: str) -> dict[str, int]:
    """Replicas of each workload at its ``floor`` or its ``ceiling``."""
    return {w.name: getattr(w, scale) for w in found}


def bill(
    objects: Sequence[Obj],
    found: Sequence[Workload],
    prices: Mapping[str, Any],
    replicas: Mapping[str, int],
) -> Bill:
    """Dollars a month with ``replicas`` of each workload (by name)."""
    storage = claimed_storage(objects, found, replicas, prices.get("storage_smallest_gib"))
    unpriced = sorted(set(storage) - set(prices["storage_gib_month"]))
    if unpriced:
        raise CostError(f"no price for the StorageClass(es) {', '.join(unpriced)} in {PRICES.name}")
    storage_month = sum(size * prices["storage_gib_month"][name] for name, size in storage.items())
    cluster = max(0.0, prices["cluster_hour"] * HOURS_PER_MONTH - prices.get("cluster_monthly_credit", 0.0))
    balancers = load_balancers(objects) * prices["load_balancer_hour"] * HOURS_PER_MONTH
    jobs = scheduled_month(objects, prices)
    if prices["billing"] == "pod-requests":
        hourly = sum(workload_hour(w, prices) * replicas[w.name] for w in found)
        return Bill(hourly * HOURS_PER_MONTH, storage_month, cluster, balancers, None, scheduled=jobs)
    # Spot and on-demand instances are separate node groups: a Pod of one never fills the other's room.
    node_hours, nodes = 0.0, {}
    for spot in (False, True):
        pods = [
            (f"{w.kind}/{w.name}", w.pod) for w in found if w.spot == spot for _ in range(replicas[w.name])
        ]
        if not pods:
            nodes[spot] = 0
            continue
        group = capacity_prices(prices, spot, pods[0][0])
        nodes[spot] = nodes_needed(pods, node_room(group))
        node_hours += nodes[spot] * group["node_hour"]
    return Bill(
        node_hours * HOURS_PER_MONTH, storage_month, cluster, balancers, nodes[False], nodes[True], jobs
    )


def bill_line(b: Bill, what: str) -> str:
    nodes = f" on {b.nodes:.3g} node(s)" if b.nodes is not None else ""
    if b.spot_nodes:
        nodes += f" + {b.spot_nodes:.3g} Spot node(s)"
    jobs = f" + scheduled jobs ${b.scheduled:,.2f}" if b.scheduled else ""
    return (
        f"  {what}: ${b.total:,.0f} a month = compute ${b.compute:,.0f}{nodes} + disks "
        f"${b.storage:,.0f} + cluster ${b.cluster:,.0f} + load balancer ${b.load_balancers:,.0f}{jobs}"
    )
