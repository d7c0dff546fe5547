"""What a Pod asks for: Kubernetes quantities, a Pod's (and a claim's) requests, and the node labels
it may run only on: the clouds' Spot labels, and the capacity classes that try Spot first."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from costing.errors import CostError
from costing.rendering import Obj, k8s_check

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
QUANTITY = re.compile(r"^([0-9.]+(?:e[0-9]+)?)([a-zA-Z]*)$")


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


def claim_size(claim: Obj) -> tuple[str, float]:
    """A claim's (or a claim template's) StorageClass and the GiB it requests."""
    storage_class = claim["spec"].get("storageClassName", "default")
    return storage_class, quantity(claim["spec"]["resources"]["requests"]["storage"]) / GIB


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
