"""``make cost``: what an overlay costs to run, read from the manifests it renders.

Every Pod a rendered overlay asks for is counted by its requests, which is what a cluster reserves
and what GKE Autopilot bills: Deployments and StatefulSets at their floor (an HPA's minReplicas, or
``replicas``) and at their ceiling (maxReplicas), their claims' disks, the cluster's fee and the
Ingress's load balancer. k8s/prices.yaml turns them into dollars a month: on GKE per Pod request
(raised to Autopilot's minimums), on EKS per node of a managed node group, the Pods packed onto as
few nodes as their requests allow (first fit, largest first: a lower bound). A workload whose Pods
may run only on Spot capacity (a node selector or required node affinity on the cloud's Spot node
label, as the spot-model-pods component sets) is priced at the Spot prices: on EKS on nodes of its
own, a Spot node group's. So is one whose Pods run on a capacity class that tries Spot first (the
spot-first-model-pods component: a GKE ComputeClass or a Karpenter NodePool of its cluster/
directory), which it does while the cloud has Spot capacity; during a stockout those Pods run, and
are billed, on-demand, as without the component.

With ``--cpu`` (the JSON ``python -m servekit.bench.cpu`` writes: the CPU one prediction costs a
replica, measured) it also prices a million predictions: an HPA holds each pod at its CPU target,
so a pod answers ``target cores / CPU per prediction`` predictions a second, at the pod's price.

A CronJob's Pods are priced for the time they may run: its runs a month (its schedule) times its
Jobs' ``activeDeadlineSeconds``, an upper bound, in every bill. A pod-producing kind it does not
know (a DaemonSet, a Job) or a container without a CPU and memory request stops it, naming the
object: a cost that leaves something out is not a floor. So does, on EKS, a Pod requesting more than
a node leaves beside its DaemonSets (``unschedulable``; ``make k8s-check`` fails on it too): it
would wait Pending, and cost nothing but the failure it causes.

With ``--load SERVICE=PER_SECOND`` too, it prices a steady load: each service at the pods its HPA
settles at for it (within its floor and ceiling), the others at their floor. Where the overlay turns
the prediction capture on (``<SVC>_CAPTURE_PERCENT``, the prediction-capture component), it also
prices the log lines the capture writes, by the bytes the ``--cpu`` file measured per prediction:
at 100 % they cost more than the pods that answer. With a shadow model beside (the shadow-challenger
component), the shadow's answers to the captured requests are lines too, at its sample rate; and
the shadow's CPU is in each prediction's, so a shadowed service gets more pods under the same load:
measured where the --cpu file has ``with_shadow`` figures (``make cost`` measures them), else
estimated as an upper bound, and the output says which.

With a ``--cpu`` file of figures observed in production (``python -m servekit.bench.observed``
reads them from Prometheus), ``--load-observed`` prices each service at the rate it served, its CPU
per prediction the one its traffic mix took, and adds the access and service log lines it wrote;
then again point by point over the window's rate profile, as the HPAs follow the load.

usage: python k8s/cost.py [--overlay gke|eks] [--component NAME ...] [--cpu reports/cpu.json]
                          [--load SERVICE=PER_SECOND ... | --load-observed]
                          [--kind predict|predict+explain|...]
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PRICES = ROOT / "k8s" / "prices.yaml"
HOURS_PER_MONTH = 730
OVERLAYS = ("gke", "eks")
#: Kinds whose Pods are counted; any other kind with a Pod template stops the count.
COUNTED = ("Deployment", "StatefulSet")
#: Kinds whose Pods run on a schedule, priced for the time they may run (:func:`scheduled`).
SCHEDULED = ("CronJob",)
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
WITH_POD_TEMPLATE = (*COUNTED, "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")
GIB = 1024**3
SUFFIXES = {
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": GIB,
    "Ti": 1024**4,
}
#: The node label and value each cloud marks its Spot capacity with: GKE's Spot Pods and Spot VMs,
#: an EKS managed node group's Spot instances, and Karpenter's Spot nodes.
SPOT_NODE_LABELS = {
    "cloud.google.com/gke-spot": "true",
    "eks.amazonaws.com/capacityType": "SPOT",
    "karpenter.sh/capacity-type": "spot",
}
#: The --cpu kind of figures read from production's Prometheus (python -m servekit.bench.observed),
#: and what only those figures carry: the access and service log bytes of a prediction.
OBSERVED = "observed"
#: The measured kind whose capture line a shadow's answer writes: a prediction, never explained.
SHADOW_LINE_KIND = "predict"
#: A measured kind's figures on a replica with a shadow model beside (python -m servekit.bench.cpu).
WITH_SHADOW = "with_shadow"
OPERATIONAL_BYTES = "operational_log_bytes_per_prediction"
QUANTITY = re.compile(r"^([0-9.]+(?:e[0-9]+)?)([a-zA-Z]*)$")

Obj = dict[str, Any]


class CostError(Exception):
    """The manifests or prices cannot be costed as they are; the message names the object."""


def quantity(value: str | int | float) -> float:
    """A Kubernetes quantity (``500m``, ``512Mi``, ``2``) as a plain number (cores, bytes)."""
    match = QUANTITY.match(str(value))
    if not match or match.group(2) not in ("", *SUFFIXES):
        raise CostError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * SUFFIXES.get(match.group(2), 1.0)


@dataclass(frozen=True)
class Requests:
    """What one Pod requests: CPU in cores, memory and ephemeral storage in GiB."""

    cpu: float = 0.0
    memory_gib: float = 0.0
    ephemeral_gib: float = 0.0

    def __add__(self, other: Requests) -> Requests:
        return Requests(
            self.cpu + other.cpu,
            self.memory_gib + other.memory_gib,
            self.ephemeral_gib + other.ephemeral_gib,
        )

    def __mul__(self, count: float) -> Requests:
        return Requests(self.cpu * count, self.memory_gib * count, self.ephemeral_gib * count)

    def largest(self, other: Requests) -> Requests:
        return Requests(
            max(self.cpu, other.cpu),
            max(self.memory_gib, other.memory_gib),
            max(self.ephemeral_gib, other.ephemeral_gib),
        )


@dataclass(frozen=True)
class Workload:
    kind: str
    name: str
    pod: Requests
    floor: int
    ceiling: int
    #: (StorageClass, GiB) of each volume a replica claims (a StatefulSet's volumeClaimTemplates).
    claims: tuple[tuple[str, float], ...] = ()
    #: Cores an HPA holds each pod at (its CPU utilisation target times the pod's CPU request).
    cpu_target: float | None = None
    #: Its Pods run only on Spot capacity (SPOT_NODE_LABELS), which is priced apart, or on a class
    #: that tries Spot first (:func:`spot_first_classes`), priced as Spot too.
    spot: bool = False
    #: The share of its predictions its Pods capture to the log (``<SVC>_CAPTURE_PERCENT``).
    capture_percent: float = 0.0
    #: The share of the captured requests a shadow model answers too, whose answers are captured
    #: as well (``<SVC>_SHADOW_SAMPLE_RATE`` where ``<SVC>_SHADOW_MODEL_URI`` is set; 0 without one).
    shadow_share: float = 0.0
    #: ``spot`` by a class that tries Spot first: on-demand, at on-demand prices, in a stockout.
    spot_first: bool = False


def container_requests(container: Obj, owner: str) -> Requests:
    requests = container.get("resources", {}).get("requests", {})
    missing = [name for name in ("cpu", "memory") if name not in requests]
    if missing:
        raise CostError(f"{owner}: container {container['name']} requests no {' and no '.join(missing)}")
    return Requests(
        quantity(requests["cpu"]),
        quantity(requests["memory"]) / GIB,
        quantity(requests.get("ephemeral-storage", 0)) / GIB,
    )


def pod_requests(pod_spec: Obj, owner: str) -> Requests:
    """A Pod's effective requests, as the scheduler counts them: its containers' sum, or its largest
    init container if that is more (init containers run one at a time, before the others; one with
    ``restartPolicy: Always`` is a sidecar and runs beside them, so it adds)."""
    running = Requests()
    for container in pod_spec["containers"]:
        running += container_requests(container, owner)
    largest_init = Requests()
    for container in pod_spec.get("initContainers", []):
        requested = container_requests(container, owner)
        if container.get("restartPolicy") == "Always":
            running += requested
        else:
            largest_init = largest_init.largest(requested)
    return running.largest(largest_init)


def required_node_labels(pod_spec: Obj) -> dict[str, frozenset[str]]:
    """The values a node label must have for a Pod to be placed there: its nodeSelector's, and a label
    every term of its required node affinity asks for (the terms are alternatives)."""
    required = {label: frozenset([value]) for label, value in pod_spec.get("nodeSelector", {}).items()}
    affinity = pod_spec.get("affinity", {}).get("nodeAffinity", {})
    terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {}).get("nodeSelectorTerms", [])
    asked: list[dict[str, frozenset[str]]] = [
        {e["key"]: frozenset(e["values"]) for e in term.get("matchExpressions", []) if e["operator"] == "In"}
        for term in terms
    ]
    if asked:
        for label in set.intersection(*(set(term) for term in asked)):
            values = frozenset().union(*(term[label] for term in asked))
            required[label] = required.get(label, values) & values
    return required


def tries_spot_first(pod_spec: Obj) -> bool:
    return requires_one_of(pod_spec, spot_first_classes())


def requires_one_of(pod_spec: Obj, labels: Iterable[tuple[str, str]]) -> bool:
    """Whether the Pods may run only on nodes with one of these labels (and value)."""
    required = required_node_labels(pod_spec)
    return any(required.get(label) == frozenset([value]) for label, value in labels)


@functools.cache
def spot_first_classes() -> tuple[tuple[str, str], ...]:
    """The node label and value of each capacity class of the components' cluster resources that
    tries Spot before on-demand: a ComputeClass whose first priority is Spot (GKE selects it by
    ``cloud.google.com/compute-class``), a Karpenter NodePool that allows Spot (by its nodes' labels)."""
    found: list[tuple[str, str]] = []
    for _, doc in k8s_check().cluster_resources():
        spec = doc.get("spec", {})
        if doc["kind"] == "ComputeClass" and (spec.get("priorities") or [{}])[0].get("spot"):
            found.append(("cloud.google.com/compute-class", doc["metadata"]["name"]))
        if doc["kind"] == "NodePool":
            template = spec.get("template", {})
            capacity = [
                r for r in template.get("spec", {}).get("requirements", [])
                if r["key"] == "karpenter.sh/capacity-type" and r["operator"] == "In"
            ]  # fmt: skip
            if capacity and "spot" in capacity[0].get("values", []):
                found += template.get("metadata", {}).get("labels", {}).items()
    return tuple(found)


def container_settings(pod_spec: Obj, config_maps: Mapping[str, Obj]) -> list[dict[str, str]]:
    """Each container's settings as it runs: the ConfigMaps its ``envFrom`` reads, then its ``env``
    (which wins, as in a Pod)."""
    found = []
    for container in pod_spec["containers"]:
        settings: dict[str, str] = {}
        for source in container.get("envFrom", []):
            name = source.get("configMapRef", {}).get("name")
            settings.update(config_maps.get(name, {}).get("data", {}))
        settings.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
        found.append(settings)
    return found


def _number(owner: str, key: str, value: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise CostError(f"{owner}: {key}={value!r} is not {what}") from None


def capture_percent(pod_spec: Obj, config_maps: Mapping[str, Obj], owner: str) -> float:
    """The ``<SVC>_CAPTURE_PERCENT`` a Pod's containers run with; 0 (the capture off) where none sets it."""
    found = [0.0]
    for settings in container_settings(pod_spec, config_maps):
        found += [
            _number(owner, key, value, "a percentage")
            for key, value in settings.items()
            if key.endswith("_CAPTURE_PERCENT")
        ]
    return max(found)


def shadow_share(pod_spec: Obj, config_maps: Mapping[str, Obj], owner: str) -> float:
    """The share of requests a Pod's shadow model answers (``<SVC>_SHADOW_SAMPLE_RATE``, 1 unless
    set, as the service reads it) where ``<SVC>_SHADOW_MODEL_URI`` names one; 0 without one."""
    found = [0.0]
    for settings in container_settings(pod_spec, config_maps):
        for key, value in settings.items():
            if key.endswith("_SHADOW_MODEL_URI") and value:
                rate = key.removesuffix("_MODEL_URI") + "_SAMPLE_RATE"
                found.append(_number(owner, rate, settings.get(rate, "1"), "a share"))
    return max(found)


def autoscalers(objects: Iterable[Obj]) -> dict[tuple[str, str], Obj]:
    return {
        (o["spec"]["scaleTargetRef"]["kind"], o["spec"]["scaleTargetRef"]["name"]): o
        for o in objects
        if o["kind"] == "HorizontalPodAutoscaler"
    }


def cpu_utilisation_target(hpa: Obj) -> float | None:
    for metric in hpa["spec"].get("metrics", []):
        resource = metric.get("resource", {})
        if metric["type"] == "Resource" and resource.get("name") == "cpu":
            target = resource["target"]
            if target["type"] == "Utilization":
                return float(target["averageUtilization"]) / 100
    return None


def workloads(objects: Sequence[Obj]) -> list[Workload]:
    """Every Pod-producing object of a rendered overlay, with its replicas and requests."""
    scaled = autoscalers(objects)
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    found = []
    for o in objects:
        kind, name = o["kind"], o["metadata"]["name"]
        if kind not in WITH_POD_TEMPLATE or kind in SCHEDULED:
            continue
        if kind not in COUNTED:
            raise CostError(f"{kind}/{name}: its Pods are not counted here (only {', '.join(COUNTED)})")
        pod_spec = o["spec"]["template"]["spec"]
        pod = pod_requests(pod_spec, f"{kind}/{name}")
        spot_first = tries_spot_first(pod_spec)
        replicas = int(o["spec"].get("replicas", 1))
        floor = ceiling = replicas
        target = None
        hpa = scaled.get((kind, name))
        if hpa is not None:
            floor, ceiling = int(hpa["spec"].get("minReplicas", 1)), int(hpa["spec"]["maxReplicas"])
            utilisation = cpu_utilisation_target(hpa)
            target = utilisation * pod.cpu if utilisation is not None else None
        claims = tuple(claim_size(template) for template in o["spec"].get("volumeClaimTemplates", []))
        found.append(
            Workload(
                kind,
                name,
                pod,
                floor,
                ceiling,
                claims,
                target,
                spot_first or requires_one_of(pod_spec, SPOT_NODE_LABELS.items()),
                capture_percent(pod_spec, config_maps, f"{kind}/{name}"),
                shadow_share(pod_spec, config_maps, f"{kind}/{name}"),
                spot_first,
            )
        )
    return found


@dataclass(frozen=True)
class ScheduledWorkload:
    """A CronJob: its Pod, how often it runs and for how long at most."""

    name: str
    pod: Requests
    runs_a_month: float
    hours_a_run: float

    def month(self, prices: Mapping[str, Any]) -> float:
        """Dollars a month, each run taking its whole deadline: an upper bound. On EKS a run's share
        of a node (it fits in the room the packing leaves, or a node added for it); a Pod no node
        can hold is never scheduled, and stops the count (:func:`unschedulable`)."""
        if prices["billing"] == "nodes":
            check_fits(f"CronJob/{self.name}", self.pod, node_room(prices))
        return self.runs_a_month * self.hours_a_run * pod_hour(self.pod, prices)


def cron_field(text: str, span: int, what: str) -> int:
    """How many values of a cron schedule's minute or hour field match (``*``, ``*/n``, ``a,b``, ``n``)."""
    if text == "*":
        return span
    if text.startswith("*/") and text[2:].isdigit() and int(text[2:]) > 0:
        return math.ceil(span / int(text[2:]))
    values = text.split(",")
    if all(v.isdigit() and int(v) < span for v in values):
        return len(set(values))
    raise CostError(f"{what}: cannot count the runs of its schedule's field {text!r}")


def days_a_month(text: str, what: str) -> float:
    """Days a month of a schedule's day-of-month field: every day (``*``) or those listed (``1,15``)."""
    if text == "*":
        return DAYS_PER_MONTH
    values = text.split(",")
    if all(v.isdigit() and 1 <= int(v) <= 31 for v in values):
        return len(set(values))
    raise CostError(f"{what}: cannot count the runs of its schedule's field {text!r}")


def runs_a_month(schedule: str, what: str) -> float:
    """Runs a month of a schedule that runs every day (``M H * * *``) or on days of the month
    (``M H D * *``, a monthly run): minutes times hours times days."""
    fields = schedule.split()
    if len(fields) != 5 or fields[3:] != ["*", "*"]:
        raise CostError(
            f"{what}: schedule {schedule!r}: only daily (minute hour * * *) and monthly "
            "(minute hour day * *) schedules are priced here"
        )
    return cron_field(fields[0], 60, what) * cron_field(fields[1], 24, what) * days_a_month(fields[2], what)


def scheduled(objects: Sequence[Obj]) -> list[ScheduledWorkload]:
    """Every CronJob of a rendered overlay, with its Pod's requests and how long it may run a month."""
    found = []
    for o in objects:
        if o["kind"] not in SCHEDULED:
            continue
        what = f"{o['kind']}/{o['metadata']['name']}"
        job = o["spec"]["jobTemplate"]["spec"]
        if "activeDeadlineSeconds" not in job:
            raise CostError(
                f"{what}: its Jobs have no activeDeadlineSeconds, so how long they run is unbounded"
            )
        pod = pod_requests(job["template"]["spec"], what)
        found.append(
            ScheduledWorkload(
                o["metadata"]["name"],
                pod,
                runs_a_month(o["spec"]["schedule"], what),
                int(job["activeDeadlineSeconds"]) / 3600,
            )
        )
    return found


def scheduled_month(objects: Sequence[Obj], prices: Mapping[str, Any]) -> float:
    """Dollars a month of the CronJobs' Pods (:meth:`ScheduledWorkload.month`)."""
    return sum(w.month(prices) for w in scheduled(objects))


def claim_size(claim: Obj) -> tuple[str, float]:
    """A claim's (or a claim template's) StorageClass and the GiB it requests."""
    storage_class = claim["spec"].get("storageClassName", "default")
    return storage_class, quantity(claim["spec"]["resources"]["requests"]["storage"]) / GIB


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


def workload_hour(workload: Workload, prices: Mapping[str, Any]) -> float:
    """What one of the workload's Pods costs an hour, on the capacity it runs on."""
    return pod_hour(workload.pod, capacity_prices(prices, workload.spot, f"{workload.kind}/{workload.name}"))


def per_million(found: Sequence[Workload], prices: Mapping[str, Any], cpu: Mapping[str, Any]) -> list[str]:
    """Lines pricing a million predictions of each measured service at its HPA's CPU target."""
    lines = []
    by_name = {w.name: w for w in found}
    per_gib = prices["log_ingestion"]["gib"]
    for service, kinds in sorted(cpu["services"].items()):
        workload = by_name.get(service)
        if workload is None:
            continue
        if workload.cpu_target is None:
            lines.append(f"  {service}: its HPA has no CPU utilisation target to hold a pod at")
            continue
        price = workload_hour(workload, prices)
        for kind, figures in kinds.items():
            cpu_ms, shadow = cpu_ms_of(workload, kinds, kind)
            per_pod_second = answers_per_second(workload, cpu_ms)
            dollars = price / (per_pod_second * 3600) * 1e6
            floor_month = workload.floor * per_pod_second * 3600 * HOURS_PER_MONTH
            with_shadow = f", {cpu_ms:.2f} ms with its shadow" if shadow else ""
            line = (
                f"  {service} {kind}: {figures['cpu_ms_per_prediction']:.2f} ms of CPU each (measured at "
                f"{figures['cores']:.2f} cores{with_shadow}); a pod held at {workload.cpu_target:.2f} cores "
                f"answers "
                f"{per_pod_second:,.0f}/s: ${dollars:.4f} per million; the floor's {workload.floor} pods "
                f"answer {floor_month / 1e6:,.0f} million a month"
            )
            if workload.capture_percent:
                logged = captured_gib(1e6, workload, kinds, kind) * per_gib
                line += f"; captured ({workload.capture_percent:g} %), ${logged:.4f} per million in log lines"
            if OPERATIONAL_BYTES in figures:
                logged = operational_gib(1e6, figures) * per_gib
                line += f"; ${logged:.4f} per million in access and service log lines (observed)"
            lines.append(line)
            if shadow:
                lines.append(f"    {shadow}")
    return lines


def captured_gib(predictions: float, workload: Workload, kinds: Mapping[str, Any], kind: str) -> float:
    """GiB of log lines ``predictions`` of ``kind`` write at the workload's capture percentage, and
    its shadow's answers to them (``kinds``: the service's figures of every kind measured)."""
    figures = kinds[kind]
    if "capture_bytes_per_prediction" not in figures:
        measure = (
            "python -m servekit.bench.observed read none (the capture was off in the window): price the "
            "capture with make cost's measured figures"
            if kind == OBSERVED
            else "measure again with make cost"
        )
        raise CostError(
            f"{workload.name} captures {workload.capture_percent:g} % of its predictions, and the --cpu file "
            f"has no capture_bytes_per_prediction for {kind!r}: {measure}"
        )
    served_bytes, shadow_bytes = line_bytes(kinds, kind)
    captured = predictions * workload.capture_percent / 100
    return captured * (served_bytes + workload.shadow_share * shadow_bytes) / GIB


def line_bytes(kinds: Mapping[str, Any], kind: str) -> tuple[float, float]:
    """The bytes of a captured line of ``kind``, and of a shadow's answer's line beside it: a shadow
    never explains, so its line weighs a ``predict`` line where one was measured. An observed figure
    is already the mean line of both, as the pods wrote them."""
    served = float(kinds[kind]["capture_bytes_per_prediction"])
    shadow_figures = kinds[kind] if kind == OBSERVED else kinds.get(SHADOW_LINE_KIND, kinds[kind])
    return served, float(shadow_figures.get("capture_bytes_per_prediction", served))


def operational_gib(predictions: float, figures: Mapping[str, Any]) -> float:
    """GiB of access and service log lines ``predictions`` write, as observed in production."""
    return predictions * float(figures[OPERATIONAL_BYTES]) / GIB


def log_lines(
    found: Sequence[Workload],
    prices: Mapping[str, Any],
    cpu: Mapping[str, Any],
    loads: Mapping[str, float],
    kind: str,
) -> tuple[float, list[str]]:
    """Dollars a month for the log lines ``loads`` write, and the lines saying so: the capture's where
    the overlay turns it on, the access and service lines where the figures were observed (a
    measurement here cannot know them). The store's free allowance comes off once."""
    by_name = {w.name: w for w in found}
    logs = prices["log_ingestion"]
    gib, lines = 0.0, []
    for service, per_second in loads.items():
        workload = by_name[service]
        figures = cpu["services"][service][kind]
        predictions = per_second * 3600 * HOURS_PER_MONTH
        if workload.capture_percent:
            month = captured_gib(predictions, workload, cpu["services"][service], kind)
            gib += month
            served_bytes, shadow_bytes = line_bytes(cpu["services"][service], kind)
            weighs = f"{served_bytes:,.0f} bytes a line"
            if workload.shadow_share:
                share = workload.shadow_share
                weighs += f", and its shadow's answers to {share:.0%} of them at {shadow_bytes:,.0f}"
            lines.append(
                f"  {service} captures {workload.capture_percent:g} % of {per_second:g}/s at {weighs}: "
                f"{month:,.0f} GiB a month"
            )
        if OPERATIONAL_BYTES in figures:
            month = operational_gib(predictions, figures)
            gib += month
            lines.append(
                f"  {service} writes {figures[OPERATIONAL_BYTES]:,g} bytes of access and service log lines a "
                f"prediction (observed): {month:,.0f} GiB a month"
            )
    if not lines:
        return 0.0, []
    dollars = max(0.0, gib - logs["free_gib_month"]) * logs["gib"]
    lines.append(
        f"  the log lines: ${dollars:,.0f} a month ({logs['what']}: ${logs['gib']:.2f} per GiB "
        f"after {logs['free_gib_month']:g} GiB free)"
    )
    return dollars, lines


def cpu_ms_of(workload: Workload, kinds: Mapping[str, Any], kind: str) -> tuple[float, str]:
    """The CPU a prediction of ``kind`` costs the workload's pods (``kinds``: the service's figures
    of every kind measured), its shadow's included, and how the shadow's share was found ("" without
    one).

    A shadow runs the challenger on ``shadow_share`` of the requests, in the replica: measured
    (``python -m servekit.bench.cpu``'s ``with_shadow`` runs, the champion as its own shadow on
    every request), it adds the measured difference at that share; not measured, a ``predict`` of
    the service's on each (a shadow never explains), or the prediction's own where less (a batch's
    row), an upper bound: a shadow scores without the HTTP work a measured prediction includes. An
    observed figure is what production's pods took, with the shadow they ran then, or none.
    """
    figures = kinds[kind]
    served = float(figures["cpu_ms_per_prediction"])
    share = workload.shadow_share
    if not share:
        return served, ""
    if kind == OBSERVED:
        return served, (
            f"{workload.name}'s shadow ({share:.0%} of requests): in the observed CPU where production ran "
            "one, not otherwise"
        )
    beside = figures.get(WITH_SHADOW)
    if beside is not None:
        measured_share = float(beside.get("shadow_sample_rate", 1.0))
        added = max(0.0, float(beside["cpu_ms_per_prediction"]) - served) * share / measured_share
        how = f"measured with a shadow on {measured_share:.0%} of requests"
    else:
        # A shadow scores each request the served model answers, unexplained: no more than a
        # predict of the service's, nor than the prediction it shadows (a batch's row).
        alone = float(kinds.get(SHADOW_LINE_KIND, figures)["cpu_ms_per_prediction"])
        added = share * min(alone, served)
        how = "estimated, an upper bound (the --cpu file has no with_shadow figures: make cost measures them)"
    note = (
        f"{workload.name}'s shadow ({share:.0%} of requests) adds {added:.3f} ms of CPU a prediction, {how}"
    )
    return served + added, note


def answers_per_second(workload: Workload, cpu_ms: float) -> float:
    """Predictions a pod answers each second, held at its HPA's CPU target, at ``cpu_ms`` each."""
    if workload.cpu_target is None:
        raise CostError(f"{workload.name}: its HPA has no CPU utilisation target to size it by")
    return workload.cpu_target / (cpu_ms / 1000)


def pods_for(workload: Workload, per_second: float, cpu_ms: float) -> int:
    """Pods an HPA settles at under a steady load: enough to hold each at its CPU target (unbounded:
    the caller compares it with the ceiling)."""
    return math.ceil(round(per_second / answers_per_second(workload, cpu_ms), 9))


def sized(
    found: Sequence[Workload], cpu: Mapping[str, Any], loads: Mapping[str, float], kind: str
) -> tuple[dict[str, int], dict[str, int], list[str]]:
    """Replicas of each workload under ``loads`` (predictions a second of ``kind``, by service),
    within each HPA's floor and ceiling (a service without a load stays at its floor), the pods
    each loaded service would want, unbounded, and how each shadow's CPU was counted
    (:func:`cpu_ms_of`)."""
    replicas = at_scale(found, "floor")
    wanted = {}
    shadows = []
    by_name = {w.name: w for w in found}
    for service, per_second in loads.items():
        if service not in by_name:
            raise CostError(f"--load {service}: no such workload in the overlay")
        workload = by_name[service]
        try:
            cpu_ms, shadow = cpu_ms_of(workload, cpu["services"][service], kind)
        except KeyError:
            raise CostError(f"--load {service}: no CPU figure for {kind!r} in the --cpu file") from None
        wanted[service] = pods_for(workload, per_second, cpu_ms)
        replicas[service] = min(max(wanted[service], workload.floor), workload.ceiling)
        if shadow:
            shadows.append(shadow)
    return replicas, wanted, shadows


def under_load(
    found: Sequence[Workload], cpu: Mapping[str, Any], loads: Mapping[str, float], kind: str
) -> tuple[dict[str, int], list[str]]:
    """Replicas of each workload under ``loads`` (:func:`sized`), and the notes on the services
    their HPA cannot keep up with."""
    replicas, wanted, shadows = sized(found, cpu, loads, kind)
    ceilings = {w.name: w.ceiling for w in found}
    notes = [f"  {shadow}" for shadow in shadows]
    notes += [
        f"  {service} needs {pods} pods for {loads[service]:g}/s; its HPA stops at {ceilings[service]}: "
        "raise maxReplicas, or its pods run past their target"
        for service, pods in wanted.items()
        if pods > ceilings[service]
    ]
    return replicas, notes


def profile_points(cpu: Mapping[str, Any], services: Iterable[str]) -> list[dict[str, float]]:
    """The observed load at each point of the window: every service's rate then (0 where it had none).

    Prometheus aligns a subquery's points to multiples of its step, so the services' points of
    one time are one point of the profile.
    """
    services = list(services)
    by_time: dict[int, dict[str, float]] = {}
    for service in services:
        for at, rate in cpu["services"][service][OBSERVED].get("rate_profile", []):
            by_time.setdefault(int(at), {})[service] = float(rate)
    return [
        {service: point.get(service, 0.0) for service in services} for _, point in sorted(by_time.items())
    ]


def followed(
    objects: Sequence[Obj],
    found: Sequence[Workload],
    prices: Mapping[str, Any],
    cpu: Mapping[str, Any],
    points: Sequence[Mapping[str, float]],
) -> tuple[Bill, list[str]]:
    """The month's bill as the HPAs follow the observed load: at each point the pods each settles
    at (within its floor and ceiling), the bills of the points averaged. An HPA that follows a
    daily peak holds more pods than the mean rate needs, and fewer than the peak's all day.

    Also what it held: each service's pods, least, most and on average, and the points at which
    it would have needed more than its ceiling.
    """
    ceilings = {w.name: w.ceiling for w in found}
    held: dict[str, list[int]] = {service: [] for service in points[0]}
    short: dict[str, int] = dict.fromkeys(points[0], 0)
    bills = []
    for loads in points:
        replicas, wanted, _ = sized(found, cpu, loads, OBSERVED)
        for service, want in wanted.items():
            held[service].append(replicas[service])
            short[service] += want > ceilings[service]
        bills.append(bill(objects, found, prices, replicas))

    def mean(values: Iterable[float]) -> float:
        values = list(values)
        return sum(values) / len(values)

    first = bills[0]
    nodes = None if first.nodes is None else mean(b.nodes or 0 for b in bills)
    averaged = Bill(
        mean(b.compute for b in bills),
        first.storage,
        first.cluster,
        first.load_balancers,
        nodes,
        mean(b.spot_nodes for b in bills),
        # The CronJobs run on their schedule whatever the load: every point's bill has them.
        scheduled=first.scheduled,
    )
    pods = ", ".join(
        f"{service} {min(counts)} pods"
        if min(counts) == max(counts)
        else f"{service} {min(counts)}-{max(counts)} pods ({mean(counts):.2g} on average)"
        for service, counts in held.items()
    )
    lines = [bill_line(averaged, f"as the HPAs follow the observed load ({len(points)} points): {pods}")]
    lines += [
        f"  {service} would have needed more than its {ceilings[service]} pods at {count} of "
        f"{len(points)} points: raise maxReplicas, or its pods ran past their target"
        for service, count in short.items()
        if count
    ]
    return averaged, lines


def bill_line(b: Bill, what: str) -> str:
    nodes = f" on {b.nodes:.3g} node(s)" if b.nodes is not None else ""
    if b.spot_nodes:
        nodes += f" + {b.spot_nodes:.3g} Spot node(s)"
    jobs = f" + scheduled jobs ${b.scheduled:,.2f}" if b.scheduled else ""
    return (
        f"  {what}: ${b.total:,.0f} a month = compute ${b.compute:,.0f}{nodes} + disks "
        f"${b.storage:,.0f} + cluster ${b.cluster:,.0f} + load balancer ${b.load_balancers:,.0f}{jobs}"
    )


def report(
    overlay: str,
    objects: Sequence[Obj],
    prices: Mapping[str, Any],
    *,
    cpu: Mapping[str, Any] | None = None,
    loads: Mapping[str, float] | None = None,
    kind: str = "predict",
    follow_observed: bool = False,
) -> list[str]:
    found = workloads(objects)
    check_schedulable(objects, prices)
    lines = [f"{overlay}: {prices['what']} (list prices of {prices['as_of']}, k8s/prices.yaml)"]
    width = max(len(f"{w.kind}/{w.name}") for w in found)
    lines.append(f"  {'workload':<{width}}  replicas  per pod: CPU  memory GiB  $/pod-hour")
    for w in found:
        span = f"{w.floor}" if w.floor == w.ceiling else f"{w.floor}-{w.ceiling}"
        name = f"{w.kind}/{w.name}"
        line = (
            f"  {name:<{width}}  {span:>8}  {w.pod.cpu:>12.3g}  {w.pod.memory_gib:>10.3g}"
            f"  {workload_hour(w, prices):>10.4f}"
        )
        if w.spot:
            line += "  Spot first (on-demand in a stockout)" if w.spot_first else "  Spot"
        if prices["billing"] == "pod-requests":
            billed = autopilot_billed(w.pod, prices["autopilot_rounding"])
            if billed != w.pod:
                line += f"  billed as {billed.cpu:g} CPU, {billed.memory_gib:.3g} GiB"
        lines.append(line)
    for job in scheduled(objects):
        runs = f"{job.runs_a_month:.3g} run{'' if job.runs_a_month == 1 else 's'}"
        lines.append(
            f"  CronJob/{job.name}: {runs} a month of at most {job.hours_a_run:g} h, "
            f"a pod of {job.pod.cpu:g} CPU and {job.pod.memory_gib:.3g} GiB: "
            f"at most ${job.month(prices):.2f} a month"
        )
    for scale in ("floor", "ceiling"):
        lines.append(bill_line(bill(objects, found, prices, at_scale(found, scale)), f"at the {scale}"))
    if prices.get("cluster_monthly_credit"):
        full = prices["cluster_hour"] * HOURS_PER_MONTH
        credit = prices["cluster_monthly_credit"]
        lines.append(
            f"  (the cluster's ${full:.0f} a month is paid by the free tier's ${credit:.2f} monthly credit, "
            "for one cluster per billing account: a second one pays it)"
        )
    if cpu is not None:
        lines += per_million(found, prices, cpu)
    if loads:
        if cpu is None:
            raise CostError("--load needs --cpu: the CPU a prediction costs sizes the pods")
        sized, notes = under_load(found, cpu, loads, kind)
        given = ", ".join(f"{service} {per_second:g}/s" for service, per_second in loads.items())
        pods = ", ".join(f"{service} {sized[service]} pods" for service in loads)
        priced = bill(objects, found, prices, sized)
        lines.append(bill_line(priced, f"at {given} ({kind}): {pods}"))
        lines += notes
        # Observed rates: the mean rate's bill, then the one of the HPAs following the load.
        points = profile_points(cpu, loads) if follow_observed else []
        if points:
            priced, followed_lines = followed(objects, found, prices, cpu, points)
            lines += followed_lines
            given = "the observed load"
        logged, logged_lines = log_lines(found, prices, cpu, loads, kind)
        lines += logged_lines
        if logged_lines:
            lines.append(f"  at {given} with the log lines: ${priced.total + logged:,.0f} a month")
    return lines


def render(overlay: str, components: Sequence[str]) -> list[Obj]:
    """The overlay's objects with k8s/components/<name> added, rendered as ``make k8s-check`` does."""
    result = k8s_check().kustomize(overlay, components)
    if result.returncode != 0:
        raise CostError(f"kubectl kustomize k8s/overlays/{overlay} failed:\n{result.stderr}")
    return list(k8s_check().objects(result.stdout))


def k8s_check() -> ModuleType:
    """k8s/check.py as a module (a script beside this one, not a package), imported once."""
    if "k8s_check" not in sys.modules:
        spec = importlib.util.spec_from_file_location("k8s_check", ROOT / "k8s" / "check.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["k8s_check"] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules["k8s_check"]


#: How a --cpu file is made, for the message that finds none (or another report).
MAKE_CPU = (
    "make cost measures it (python -m servekit.bench.cpu --output reports/cpu.json), make cost-observed "
    "reads it from production"
)


def read_cpu(path: Path) -> dict[str, Any]:
    """A --cpu file's figures: each service's kinds, each with its CPU a prediction; else a
    :class:`CostError` naming the file, what is wrong, and how to make one."""
    try:
        text = path.read_text()
    except OSError as error:
        raise CostError(f"--cpu {path}: {error.strerror or error}; {MAKE_CPU}") from None
    try:
        figures: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise CostError(f"--cpu {path}: not JSON ({error}); {MAKE_CPU}") from None
    services = figures.get("services") if isinstance(figures, dict) else None
    if not isinstance(services, dict) or not services:
        raise CostError(f'--cpu {path}: no "services" with CPU figures; {MAKE_CPU}')
    for service, kinds in services.items():
        wrong = (
            [f"{service} is {type(kinds).__name__}"]
            if not isinstance(kinds, dict) or not kinds
            else [
                kind
                for kind, found in kinds.items()
                if not isinstance(found, dict)
                or not isinstance(found.get("cpu_ms_per_prediction"), int | float)
                or found["cpu_ms_per_prediction"] <= 0
            ]
        )
        if wrong:
            # bench.json and soak.json have "services" too, of other figures.
            raise CostError(
                f"--cpu {path}: {service}'s {', '.join(map(repr, wrong[:3]))} carry no "
                "cpu_ms_per_prediction: not the CPU figures of python -m servekit.bench.cpu or "
                f"servekit.bench.observed; {MAKE_CPU}"
            )
    checked: dict[str, Any] = figures
    return checked


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", choices=OVERLAYS, action="append", help="default: both")
    parser.add_argument("--component", action="append", default=[], help="k8s/components/<NAME> added")
    parser.add_argument("--cpu", type=Path, help="CPU per prediction, from python -m servekit.bench.cpu")
    parser.add_argument(
        "--load",
        action="append",
        default=[],
        metavar="SERVICE=PER_SECOND",
        help="a steady load to price (with --cpu): predictions a second of --kind",
    )
    parser.add_argument("--kind", default="predict", help="the kind of prediction --load sends")
    parser.add_argument(
        "--load-observed",
        action="store_true",
        help=f"each service of an observed --cpu file at the rate it served (--kind {OBSERVED})",
    )
    parser.add_argument("--prices", type=Path, default=PRICES)
    args = parser.parse_args(argv)
    loads = {}
    for given in args.load:
        service, _, per_second = given.partition("=")
        try:
            loads[service] = float(per_second)
        except ValueError:
            parser.error(f"--load {given}: SERVICE=PER_SECOND, e.g. bankchurn=300")
    prices = yaml.safe_load(args.prices.read_text())
    try:
        cpu = read_cpu(args.cpu) if args.cpu else None
    except CostError as error:
        print(f"cost: {error}", file=sys.stderr)
        return 2
    if args.load_observed:
        if args.load:
            parser.error("--load-observed prices the observed rates: leave --load out")
        observed = {
            service: kinds[OBSERVED]["predictions_per_second"]
            for service, kinds in (cpu or {}).get("services", {}).items()
            if OBSERVED in kinds
        }
        if not observed:
            parser.error(
                "--load-observed needs a --cpu file of observed figures: python -m servekit.bench.observed "
                "--prometheus URL writes reports/observed.json"
            )
        loads, args.kind = observed, OBSERVED
    try:
        for overlay in args.overlay or OVERLAYS:
            suffix = f" + {', '.join(args.component)}" if args.component else ""
            objects = render(overlay, args.component)
            print(
                "\n".join(
                    report(
                        overlay + suffix,
                        objects,
                        prices[overlay],
                        cpu=cpu,
                        loads=loads,
                        kind=args.kind,
                        follow_observed=args.load_observed,
                    )
                )
            )
    except CostError as error:
        print(f"cost: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
