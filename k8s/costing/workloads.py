"""The Pod-producing objects of a rendered overlay, each with its replicas (an HPA's floor and
ceiling), its Pod's requests and what else its bill depends on: Spot capacity, the prediction
capture, a shadow model."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from costing.errors import CostError
from costing.rendering import Obj
from costing.requests import (
    SPOT_NODE_LABELS,
    Requests,
    claim_size,
    pod_requests,
    requires_one_of,
    tries_spot_first,
)

#: Kinds whose Pods are counted; any other kind with a Pod template stops the count.
COUNTED = ("Deployment", "StatefulSet")
#: Kinds whose Pods run on a schedule, priced for the time they may run (:func:`scheduled`).
SCHEDULED = ("CronJob",)
WITH_POD_TEMPLATE = (*COUNTED, "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod")


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
