"""The Pods no node of a node group can hold beside its DaemonSets (EKS): never scheduled, they stop
the count, and ``make k8s-check``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from costing.cronjobs import scheduled
from costing.errors import CostError
from costing.pricing import capacity_prices, check_fits, node_room
from costing.rendering import Obj
from costing.workloads import workloads


def unschedulable(objects: Sequence[Obj], prices: Mapping[str, Any]) -> list[str]:
    """Each Pod of a rendered overlay (a Deployment's, a StatefulSet's, a CronJob's) that no node of
    the node group can hold beside its DaemonSets: it would wait Pending for ever (a CronJob's until
    its deadline, failing the run). Empty where the cloud bills Pods and chooses their nodes (GKE
    Autopilot)."""
    if prices["billing"] != "nodes":
        return []
    pods = [(f"{w.kind}/{w.name}", w.pod, w.spot) for w in workloads(objects)]
    pods += [(f"CronJob/{job.name}", job.pod, False) for job in scheduled(objects)]
    problems = []
    for name, pod, spot in pods:
        try:
            check_fits(name, pod, node_room(capacity_prices(prices, spot, name)))
        except CostError as error:
            problems.append(str(error))
    return problems


def check_schedulable(objects: Sequence[Obj], prices: Mapping[str, Any]) -> None:
    """Stops the count at the Pods :func:`unschedulable` finds, naming each."""
    too_big = unschedulable(objects, prices)
    if too_big:
        raise CostError("\n".join(too_big))
