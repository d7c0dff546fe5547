"""What a Pod costs an hour as each cloud bills it (k8s/prices.yaml): on GKE its requests as
Autopilot bills them, on EKS its share of a node; and the nodes a node group needs for its Pods."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from costing.errors import CostError
from costing.rendering import ROOT
from costing.requests import Requests
from costing.workloads import Workload

PRICES = ROOT / "k8s" / "prices.yaml"
HOURS_PER_MONTH = 730


def autopilot_billed(pod: Requests, rounding: Mapping[str, float]) -> Requests:
    """The requests Autopilot bills for a Pod: CPU raised to its minimum (and, in clusters without
    bursting, to its next step), CPU and memory raised into their ratio."""
    step = rounding.get("cpu_step", 0.0)

    def stepped(cpu: float) -> float:
        return math.ceil(round(cpu / step, 9)) * step if step else cpu

    cpu = stepped(max(pod.cpu, rounding["cpu_min"], pod.memory_gib / rounding["memory_gib_per_cpu_max"]))
    memory = max(pod.memory_gib, cpu * rounding["memory_gib_per_cpu_min"])
    return Requests(cpu, memory, pod.ephemeral_gib)


def capacity_prices(prices: Mapping[str, Any], spot: bool, owner: str) -> Mapping[str, Any]:
    """The prices of on-demand capacity, or with the Spot section's unit prices in their place."""
    if not spot:
        return prices
    if "spot" not in prices:
        raise CostError(
            f"{owner} runs only on Spot capacity; {PRICES.name} has no Spot prices for {prices['what']}"
        )
    return {**prices, **prices["spot"]}


def pod_hour(pod: Requests, prices: Mapping[str, Any]) -> float:
    """What one Pod costs an hour: on GKE its requests as Autopilot bills them; on EKS its share of a
    node, by the resource it takes most of (what it leaves unused beside it cannot be sold to another
    Pod)."""
    if prices["billing"] == "pod-requests":
        billed = autopilot_billed(pod, prices["autopilot_rounding"])
        return float(
            billed.cpu * prices["vcpu_hour"]
            + billed.memory_gib * prices["memory_gib_hour"]
            + billed.ephemeral_gib * prices["ephemeral_gib_hour"]
        )
    free = node_room(prices)
    return float(prices["node_hour"]) * max(pod.cpu / free.cpu, pod.memory_gib / free.memory_gib)


def workload_hour(workload: Workload, prices: Mapping[str, Any]) -> float:
    """What one of the workload's Pods costs an hour, on the capacity it runs on."""
    return pod_hour(workload.pod, capacity_prices(prices, workload.spot, f"{workload.kind}/{workload.name}"))


def node_room(prices: Mapping[str, Any]) -> Requests:
    allocatable, daemonsets = prices["node_allocatable"], prices["node_daemonsets"]
    return Requests(
        allocatable["cpu"] - daemonsets["cpu"], allocatable["memory_gib"] - daemonsets["memory_gib"]
    )


def too_large(pod: Requests, room: Requests) -> bool:
    return pod.cpu > room.cpu + 1e-9 or pod.memory_gib > room.memory_gib + 1e-9


def check_fits(name: str, pod: Requests, room: Requests) -> None:
    if too_large(pod, room):
        raise CostError(
            f"{name}: requests {pod.cpu:g} CPU and {pod.memory_gib:.3g} GiB, more than a node leaves to "
            f"Pods ({room.cpu:.3g} CPU and {room.memory_gib:.3g} GiB: node_allocatable minus "
            f"node_daemonsets in {PRICES.name}), so it is never scheduled: lower its requests"
        )


def nodes_needed(pods: Sequence[tuple[str, Requests]], room: Requests) -> int:
    """Nodes a first-fit packing, largest Pod first, puts ``pods`` on (soft spreading ignored)."""
    nodes: list[Requests] = []
    for name, pod in sorted(pods, key=lambda item: (item[1].cpu, item[1].memory_gib), reverse=True):
        check_fits(name, pod, room)
        for index, used in enumerate(nodes):
            if (
                used.cpu + pod.cpu <= room.cpu + 1e-9
                and used.memory_gib + pod.memory_gib <= room.memory_gib + 1e-9
            ):
                nodes[index] = used + pod
                break
        else:
            nodes.append(pod)
    return len(nodes)
