"""``make cost`` (k8s/cost.py): the requests of the rendered overlays, priced as each cloud bills them."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifests import OVERLAYS, SERVICES, Rendered, render

from scripts import load_k8s_cost

cost = load_k8s_cost()
PRICES = yaml.safe_load(cost.PRICES.read_text())
GIB = 1024**3


def container(name: str, cpu: str, memory: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


def deployment(
    name: str, containers: list[dict[str, Any]], replicas: int | None = None, **pod: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {"template": {"spec": {"containers": containers, **pod}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"kind": "Deployment", "metadata": {"name": name}, "spec": spec}


def hpa(target: str, low: int, high: int, utilisation: int | None = 60) -> dict[str, Any]:
    metrics = (
        [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": utilisation},
                },
            }
        ]
        if utilisation is not None
        else [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "concurrency"},
                    "target": {"type": "AverageValue", "averageValue": "500m"},
                },
            }
        ]
    )
    return {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": target},
            "minReplicas": low,
            "maxReplicas": high,
            "metrics": metrics,
        },
    }


def claim(name: str, size: str, storage_class: str) -> dict[str, Any]:
    return {
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name},
        "spec": {"storageClassName": storage_class, "resources": {"requests": {"storage": size}}},
    }


def statefulset(
    name: str, container_spec: dict[str, Any], replicas: int, size: str, storage_class: str
) -> dict[str, Any]:
    """A StatefulSet of ``replicas``, each with a claim of ``size`` from its template."""
    workload = deployment(name, [container_spec], replicas=replicas)
    workload["kind"] = "StatefulSet"
    workload["spec"]["volumeClaimTemplates"] = [claim("data", size, storage_class)]
    return workload


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", 0.5),
        ("2", 2.0),
        ("1.5", 1.5),
        ("512Mi", 512 * 1024**2),
        ("1Gi", GIB),
        ("10G", 1e10),
        (3, 3.0),
    ],
)
def test_quantities_read_as_kubernetes_writes_them(text: str | int, value: float) -> None:
    assert cost.quantity(text) == pytest.approx(value)


def test_a_quantity_it_cannot_read_is_named() -> None:
    with pytest.raises(cost.CostError, match="not a Kubernetes quantity: '5 cores'"):
        cost.quantity("5 cores")


def test_a_pod_requests_its_containers_sum_or_its_largest_init_container() -> None:
    pod = {
        "containers": [container("a", "250m", "256Mi"), container("b", "100m", "128Mi")],
        "initContainers": [container("migrate", "1", "128Mi"), container("fetch", "100m", "1Gi")],
    }
    requests = cost.pod_requests(pod, "Deployment/x")
    # CPU from the largest init container, memory from the one needing most: each resource on its own.
    assert requests.cpu == pytest.approx(1.0)
    assert requests.memory_gib == pytest.approx(1.0)
    # A sidecar (an init container that keeps running) adds to the containers instead.
    pod["initContainers"] = [container("proxy", "100m", "64Mi", restartPolicy="Always")]
    sidecar = cost.pod_requests(pod, "Deployment/x")
    assert sidecar.cpu == pytest.approx(0.45)
    assert sidecar.memory_gib == pytest.approx((256 + 128 + 64) / 1024)


def test_replicas_come_from_the_autoscaler_where_one_targets_the_workload() -> None:
    objects = [
        deployment("server", [container("s", "500m", "512Mi")]),
        hpa("server", 2, 10),
        deployment("mlflow", [container("m", "250m", "768Mi")], replicas=1),
        deployment("batch", [container("b", "1", "1Gi")], replicas=3),
    ]
    found = {w.name: w for w in cost.workloads(objects)}
    assert (found["server"].floor, found["server"].ceiling) == (2, 10)
    assert found["server"].cpu_target == pytest.approx(0.3)  # 60 % of 500m
    assert (found["mlflow"].floor, found["mlflow"].ceiling, found["mlflow"].cpu_target) == (1, 1, None)
    assert (found["batch"].floor, found["batch"].ceiling) == (3, 3)


def test_an_autoscaler_without_a_cpu_target_holds_no_pod_at_a_cpu_figure() -> None:
    objects = [
        deployment("server", [container("s", "500m", "512Mi")]),
        hpa("server", 2, 10, utilisation=None),
    ]
    (workload,) = cost.workloads(objects)
    assert workload.cpu_target is None
    measured = {"services": {"server": {"predict": {"cpu_ms_per_prediction": 1.0, "cores": 0.3}}}}
    (line,) = cost.per_million([workload], PRICES["gke"], measured)
    assert "no CPU utilisation target" in line


def test_what_it_cannot_count_stops_it_naming_the_object() -> None:
    daemonset = {"kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {"template": {"spec": {}}}}
    with pytest.raises(cost.CostError, match="DaemonSet/agent: its Pods are not counted"):
        cost.workloads([daemonset])
    no_memory = deployment("server", [{"name": "s", "resources": {"requests": {"cpu": "1"}}}])
    with pytest.raises(cost.CostError, match="Deployment/server: container s requests no memory"):
        cost.workloads([no_memory])


def test_statefulset_claims_count_per_replica_and_standalone_claims_once() -> None:
    objects = [
        statefulset("db", container("d", "500m", "1Gi"), 3, "5Gi", "standard-rwo"),
        claim("data", "10Gi", "standard-rwo"),
    ]
    found = cost.workloads(objects)
    assert cost.claimed_storage(objects, found, {"db": 3}) == {"standard-rwo": pytest.approx(25.0)}
    assert cost.claimed_storage(objects, found, {"db": 1}) == {"standard-rwo": pytest.approx(15.0)}


def test_a_claim_under_the_smallest_disk_is_billed_as_the_smallest() -> None:
    """A balanced persistent disk is 10 GiB at least: Alertmanager's 1Gi claims are billed as 10."""
    objects = [
        statefulset("alertmanager", container("a", "10m", "32Mi"), 2, "1Gi", "standard-rwo"),
        claim("prometheus", "20Gi", "standard-rwo"),
    ]
    found = cost.workloads(objects)
    smallest = PRICES["gke"]["storage_smallest_gib"]
    assert cost.claimed_storage(objects, found, {"alertmanager": 2}, smallest) == {"standard-rwo": 40.0}
    assert cost.claimed_storage(objects, found, {"alertmanager": 2}) == {"standard-rwo": pytest.approx(22.0)}


BURSTING = PRICES["gke"]["autopilot_rounding"]
#: A cluster created before GKE 1.30.2 (no bursting): CPU in steps of 0.25 vCPU.
STEPPED = {**BURSTING, "cpu_min": 0.25, "cpu_step": 0.25}


@pytest.mark.parametrize(
    ("rounding", "cpu", "memory_gib", "billed_cpu", "billed_memory"),
    [
        (BURSTING, 0.5, 0.5, 0.5, 0.5),  # at its minimums and in the ratio: as requested
        (BURSTING, 0.1, 0.25, 0.1, 0.25),  # no steps where the cluster allows bursting
        (BURSTING, 0.02, 0.0625, 0.05, 0.0625),  # CPU up to its minimum
        (BURSTING, 0.5, 0.25, 0.5, 0.5),  # memory up to 1 GiB per vCPU
        (BURSTING, 0.25, 4.0, 4.0 / 6.5, 4.0),  # CPU raised to keep memory at most 6.5 GiB per vCPU
        (STEPPED, 0.5, 0.5, 0.5, 0.5),
        (STEPPED, 0.1, 0.25, 0.25, 0.25),  # CPU up to its step
        (STEPPED, 0.05, 0.0625, 0.25, 0.25),  # and memory up to 1 GiB per vCPU
        (STEPPED, 0.6, 1.0, 0.75, 1.0),  # the next step
        (STEPPED, 0.25, 4.0, 0.75, 4.0),  # raised into the ratio, then to the step
    ],
)
def test_autopilot_bills_a_pods_requests_raised_as_its_pricing_page_says(
    rounding: dict[str, float], cpu: float, memory_gib: float, billed_cpu: float, billed_memory: float
) -> None:
    billed = cost.autopilot_billed(cost.Requests(cpu, memory_gib), rounding)
    assert (billed.cpu, billed.memory_gib) == (pytest.approx(billed_cpu), pytest.approx(billed_memory))


def test_a_pod_hour_on_autopilot_is_its_billed_requests_at_the_unit_prices() -> None:
    prices = PRICES["gke"]
    pod = cost.Requests(0.02, 0.25, 0.25)  # billed as 0.05 CPU
    expected = (
        0.05 * prices["vcpu_hour"] + 0.25 * prices["memory_gib_hour"] + 0.25 * prices["ephemeral_gib_hour"]
    )
    assert cost.pod_hour(pod, prices) == pytest.approx(expected)


def test_nodes_are_packed_largest_pod_first_and_a_pod_too_large_is_named() -> None:
    room = cost.Requests(2.0, 8.0)
    pods = [(f"p{i}", cost.Requests(cpu, 1.0)) for i, cpu in enumerate((0.5, 0.7, 0.5, 1.3, 1.0))]
    # 1.3 + 0.7 on one node, 1.0 + 0.5 + 0.5 on another: two, where filling in this order takes three.
    assert cost.nodes_needed(pods, room) == 2
    assert cost.nodes_needed([("m", cost.Requests(0.1, 3.0))] * 5, room) == 3  # two to a node by memory
    with pytest.raises(cost.CostError, match=r"big: requests 2\.5 CPU and 1 GiB, more than a node leaves"):
        cost.nodes_needed([("big", cost.Requests(2.5, 1.0))], room)


def test_a_bill_on_nodes_prices_whole_nodes_and_the_fixed_lines() -> None:
    prices = PRICES["eks"]
    room = cost.node_room(prices)
    pod = f"{room.cpu / 2:.3f}"  # two to a node
    objects = [
        deployment("server", [container("s", pod, "1Gi")]),
        hpa("server", 3, 8),
        claim("data", "20Gi", "gp3"),
        {"kind": "Ingress", "metadata": {"name": "web"}, "spec": {}},
    ]
    found = cost.workloads(objects)
    floor, ceiling = (
        cost.bill(objects, found, prices, cost.at_scale(found, scale)) for scale in ("floor", "ceiling")
    )
    assert (floor.nodes, ceiling.nodes) == (2, 4)
    assert floor.compute == pytest.approx(2 * prices["node_hour"] * cost.HOURS_PER_MONTH)
    assert floor.storage == pytest.approx(20 * prices["storage_gib_month"]["gp3"])
    assert floor.cluster == pytest.approx(prices["cluster_hour"] * cost.HOURS_PER_MONTH)
    assert floor.load_balancers == pytest.approx(prices["load_balancer_hour"] * cost.HOURS_PER_MONTH)
    assert floor.total == pytest.approx(floor.compute + floor.storage + floor.cluster + floor.load_balancers)


def test_a_storage_class_without_a_price_is_named() -> None:
    objects = [deployment("s", [container("s", "1", "1Gi")], replicas=1), claim("data", "1Gi", "premium-rwo")]
    found = cost.workloads(objects)
    with pytest.raises(cost.CostError, match="no price for the StorageClass"):
        cost.bill(objects, found, PRICES["gke"], cost.at_scale(found, "floor"))


def spot_affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    required = {"nodeSelectorTerms": [{"matchExpressions": [term]} for term in terms]}
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}}


GKE_SPOT = {"key": "cloud.google.com/gke-spot", "operator": "In", "values": ["true"]}


@pytest.mark.parametrize(
    ("pod", "spot"),
    [
        ({}, False),
        ({"nodeSelector": {"cloud.google.com/gke-spot": "true"}}, True),
        ({"nodeSelector": {"eks.amazonaws.com/capacityType": "SPOT"}}, True),
        ({"nodeSelector": {"eks.amazonaws.com/capacityType": "ON_DEMAND"}}, False),
        ({"affinity": spot_affinity(GKE_SPOT)}, True),
        (
            {
                "affinity": spot_affinity(
                    {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot"]}
                )
            },
            True,
        ),
        # Either capacity will do: it may land on on-demand nodes, so it is not priced as Spot.
        (
            {
                "affinity": spot_affinity(
                    {**GKE_SPOT, "key": "karpenter.sh/capacity-type", "values": ["spot", "on-demand"]}
                )
            },
            False,
        ),
        # Two alternative terms: Spot only if every one asks for it.
        (
            {
                "affinity": spot_affinity(
                    GKE_SPOT, {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}
                )
            },
            False,
        ),
        ({"affinity": spot_affinity(GKE_SPOT, GKE_SPOT)}, True),
        ({"affinity": spot_affinity({**GKE_SPOT, "operator": "NotIn"})}, False),
        # A capacity class that tries Spot first (spot-first-model-pods' ComputeClass and NodePool,
        # read from its cluster/ files): priced at what it runs on while the cloud has Spot capacity.
        ({"nodeSelector": {"cloud.google.com/compute-class": "model-servers"}}, True),
        (
            {
                "affinity": spot_affinity(
                    {"key": "ml-platform.io/capacity-class", "operator": "In", "values": ["model-servers"]}
                )
            },
            True,
        ),
        # Another class (GKE's built-in Performance class is on-demand).
        ({"nodeSelector": {"cloud.google.com/compute-class": "Performance"}}, False),
        # A preference is not a placement.
        (
            {
                "affinity": {
                    "nodeAffinity": {
                        "preferredDuringSchedulingIgnoredDuringExecution": [
                            {"weight": 100, "preference": {"matchExpressions": [GKE_SPOT]}}
                        ]
                    }
                }
            },
            False,
        ),
    ],
)
def test_a_workload_is_on_spot_when_every_node_it_may_run_on_is_a_spot_node(
    pod: dict[str, Any], spot: bool
) -> None:
    (workload,) = cost.workloads([deployment("server", [container("s", "500m", "512Mi")], replicas=1, **pod)])
    assert workload.spot is spot


def test_spot_pods_are_priced_at_the_spot_prices_on_autopilot() -> None:
    prices = PRICES["gke"]
    pod = [container("s", "500m", "512Mi")]
    objects = [
        deployment("spot", pod, replicas=2, nodeSelector={"cloud.google.com/gke-spot": "true"}),
        deployment("regular", pod, replicas=2),
    ]
    spot, regular = cost.workloads(objects)
    expected = 0.5 * prices["spot"]["vcpu_hour"] + 0.5 * prices["spot"]["memory_gib_hour"]
    assert cost.workload_hour(spot, prices) == pytest.approx(expected)
    assert cost.workload_hour(regular, prices) == pytest.approx(
        0.5 * prices["vcpu_hour"] + 0.5 * prices["memory_gib_hour"]
    )
    assert cost.workload_hour(spot, prices) < cost.workload_hour(regular, prices) / 2
    billed = cost.bill(objects, [spot, regular], prices, {"spot": 2, "regular": 2})
    hourly = 2 * cost.workload_hour(spot, prices) + 2 * cost.workload_hour(regular, prices)
    assert billed.compute == pytest.approx(hourly * cost.HOURS_PER_MONTH)


def test_spot_pods_on_eks_fill_spot_nodes_of_their_own() -> None:
    prices = PRICES["eks"]
    room = cost.node_room(prices)
    half = f"{room.cpu / 2:.3f}"  # two to a node
    objects = [
        deployment(
            "spot",
            [container("s", half, "1Gi")],
            replicas=3,
            nodeSelector={"eks.amazonaws.com/capacityType": "SPOT"},
        ),
        deployment("regular", [container("r", half, "1Gi")], replicas=1),
    ]
    found = cost.workloads(objects)
    billed = cost.bill(objects, found, prices, {"spot": 3, "regular": 1})
    # Four pods two to a node would take two nodes; Spot and on-demand are separate groups: 1 + 2.
    assert (billed.nodes, billed.spot_nodes) == (1, 2)
    hourly = prices["node_hour"] + 2 * prices["spot"]["node_hour"]
    assert billed.compute == pytest.approx(hourly * cost.HOURS_PER_MONTH)
    assert "on 1 node(s) + 2 Spot node(s)" in cost.bill_line(billed, "at the floor")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_spot_pod_without_spot_prices_is_named(overlay: str) -> None:
    prices = {k: v for k, v in PRICES[overlay].items() if k != "spot"}
    objects = [
        deployment(
            "server",
            [container("s", "1", "1Gi")],
            replicas=1,
            nodeSelector={"karpenter.sh/capacity-type": "spot"},
        )
    ]
    found = cost.workloads(objects)
    with pytest.raises(
        cost.CostError, match=r"Deployment/server runs only on Spot capacity; prices\.yaml has no Spot prices"
    ):
        cost.bill(objects, found, prices, {"server": 1})


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def test_the_capture_percentage_is_what_the_pods_environment_sets() -> None:
    from_config_map = container("s", "500m", "512Mi", envFrom=[{"configMapRef": {"name": "settings-h4sh"}}])
    overridden = container(
        "s",
        "500m",
        "512Mi",
        envFrom=[{"configMapRef": {"name": "settings-h4sh"}}],
        env=[{"name": "BANKCHURN_CAPTURE_PERCENT", "value": "5"}],
    )
    objects = [
        config_map("settings-h4sh", BANKCHURN_CAPTURE_PERCENT="100", BANKCHURN_LOG_LEVEL="INFO"),
        deployment("read", [from_config_map], replicas=1),
        deployment("overridden", [overridden], replicas=1),  # env wins over envFrom, as in a Pod
        deployment("unset", [container("s", "500m", "512Mi")], replicas=1),
    ]
    found = {w.name: w.capture_percent for w in cost.workloads(objects)}
    assert found == {"read": 100.0, "overridden": 5.0, "unset": 0.0}
    with pytest.raises(
        cost.CostError, match="Deployment/bankchurn: BANKCHURN_CAPTURE_PERCENT='all' is not a percentage"
    ):
        cost.workloads(capturing("all"))


def test_a_shadow_models_captured_answers_are_lines_too_at_its_sample_rate() -> None:
    shadowed = container(
        "s",
        "500m",
        "512Mi",
        envFrom=[{"configMapRef": {"name": "settings"}}],
        env=[{"name": "BANKCHURN_SHADOW_SAMPLE_RATE", "value": "0.25"}],
    )
    uri = {"name": "NLPINSIGHT_SHADOW_MODEL_URI", "value": "models:/nlpinsight@challenger"}
    every = container("s", "500m", "512Mi", env=[uri])
    objects = [
        config_map("settings", BANKCHURN_SHADOW_MODEL_URI="models:/bankchurn@challenger"),
        deployment("sampled", [shadowed], replicas=1),
        deployment("every", [every], replicas=1),  # 1 unless set, as the service reads it
        deployment(
            "none",
            [container("s", "500m", "512Mi", env=[{"name": "X_SHADOW_MODEL_URI", "value": ""}])],
            replicas=1,
        ),
    ]
    found = {w.name: w.shadow_share for w in cost.workloads(objects)}
    assert found == {"sampled": 0.25, "every": 1.0, "none": 0.0}
    prices = PRICES["gke"]
    server = container("s", "500m", "512Mi", envFrom=[{"configMapRef": {"name": "bankchurn"}}])
    with_shadow = [
        config_map(
            "bankchurn",
            BANKCHURN_CAPTURE_PERCENT="50",
            BANKCHURN_SHADOW_MODEL_URI="models:/bankchurn@challenger",
            BANKCHURN_SHADOW_SAMPLE_RATE="0.5",
        ),
        deployment("bankchurn", [server]),
        hpa("bankchurn", 2, 10),
    ]
    load, figures = {"bankchurn": 100.0}, measured_with_capture(1024)
    _, alone = cost.log_lines(cost.workloads(capturing("50")), prices, figures, load, "predict+explain")
    _, beside = cost.log_lines(cost.workloads(with_shadow), prices, figures, load, "predict+explain")
    # Half captured, and the shadow answers half of those: 1.5 lines a captured prediction.
    gib = 50 * 1.5 * 1024 * 3600 * cost.HOURS_PER_MONTH / GIB
    assert beside[0] == (
        f"  bankchurn captures 50 % of 100/s at 1,024 bytes a line, and its shadow's answers to 50% of "
        f"them at 1,024: {gib:,.0f} GiB a month"
    )
    assert alone[0].endswith(f"{gib / 1.5:,.0f} GiB a month")
    # A shadow never explains: where a predict line was measured, its answers weigh what one does.
    figures["services"]["bankchurn"]["predict"] = {**figures["services"]["bankchurn"]["predict+explain"]}
    figures["services"]["bankchurn"]["predict"]["capture_bytes_per_prediction"] = 512
    _, lighter = cost.log_lines(cost.workloads(with_shadow), prices, figures, load, "predict+explain")
    lighter_gib = 50 * (1024 + 0.5 * 512) * 3600 * cost.HOURS_PER_MONTH / GIB
    assert lighter[0].endswith(f"50% of them at 512: {lighter_gib:,.0f} GiB a month")
    half = {"name": "NLPINSIGHT_SHADOW_SAMPLE_RATE", "value": "half"}
    bad = container("s", "1", "1Gi", env=[uri, half])
    with pytest.raises(
        cost.CostError, match="Deployment/bad: NLPINSIGHT_SHADOW_SAMPLE_RATE='half' is not a share"
    ):
        cost.workloads([deployment("bad", [bad])])


def measured_with_capture(bytes_per_line: int | None) -> dict[str, Any]:
    figures: dict[str, Any] = {"cpu_ms_per_prediction": 2.0, "cores": 0.3}
    if bytes_per_line is not None:
        figures["capture_bytes_per_prediction"] = bytes_per_line
    return {"services": {"bankchurn": {"predict+explain": figures}}}


def capturing(percent: str) -> list[dict[str, Any]]:
    server = container("s", "500m", "512Mi", envFrom=[{"configMapRef": {"name": "bankchurn"}}])
    return [
        config_map("bankchurn", BANKCHURN_CAPTURE_PERCENT=percent),
        deployment("bankchurn", [server]),
        hpa("bankchurn", 2, 10),
        deployment("mlflow", [container("m", "250m", "768Mi")], replicas=1),
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_captures_log_lines_are_priced_by_the_bytes_measured_after_the_free_allowance(
    overlay: str,
) -> None:
    prices = PRICES[overlay]
    found = cost.workloads(capturing("50"))
    logs = prices["log_ingestion"]
    dollars, lines = cost.log_lines(
        found, prices, measured_with_capture(1024), {"bankchurn": 100.0}, "predict+explain"
    )
    # 100 a second, half of them captured, 1 KiB each: 50 KiB a second.
    gib = 50 * 1024 * 3600 * cost.HOURS_PER_MONTH / GIB
    assert dollars == pytest.approx((gib - logs["free_gib_month"]) * logs["gib"])
    assert lines[0] == f"  bankchurn captures 50 % of 100/s at 1,024 bytes a line: {gib:,.0f} GiB a month"
    # Under the allowance, nothing to pay; with the capture off, nothing to say.
    small, _ = cost.log_lines(
        found, prices, measured_with_capture(1024), {"bankchurn": 0.01}, "predict+explain"
    )
    assert small == 0.0
    off = cost.workloads(capturing("0"))
    assert cost.log_lines(
        off, prices, measured_with_capture(1024), {"bankchurn": 100.0}, "predict+explain"
    ) == (0.0, [])


def test_a_capture_without_measured_bytes_is_refused_naming_what_to_run() -> None:
    found = cost.workloads(capturing("100"))
    with pytest.raises(
        cost.CostError, match=r"bankchurn captures 100 % .* no capture_bytes_per_prediction .* make cost"
    ):
        cost.log_lines(
            found, PRICES["gke"], measured_with_capture(None), {"bankchurn": 10.0}, "predict+explain"
        )
    # Without the capture the old figures still price the pods.
    assert cost.per_million(cost.workloads(capturing("0")), PRICES["gke"], measured_with_capture(None))


def test_a_million_captured_predictions_cost_their_gib_of_log_lines() -> None:
    (line,) = cost.per_million(
        cost.workloads(capturing("100"))[:1], PRICES["gke"], measured_with_capture(1074)
    )
    per_million = 1e6 * 1074 / GIB * PRICES["gke"]["log_ingestion"]["gib"]
    assert line.endswith(f"; captured (100 %), ${per_million:.4f} per million in log lines")


def observed_figures(capture_bytes: int | None = None, operational_bytes: int = 120) -> dict[str, Any]:
    """A --cpu file as python -m servekit.bench.observed writes it: bankchurn's traffic of a day."""
    figures: dict[str, Any] = {
        "window": "1d",
        "predictions_per_second": 250.0,
        "cpu_ms_per_prediction": 1.5,
        "cores": 0.2,
        "operational_log_bytes_per_prediction": operational_bytes,
    }
    if capture_bytes is not None:
        figures["capture_bytes_per_prediction"] = capture_bytes
    return {"services": {"bankchurn": {cost.OBSERVED: figures}}}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_observed_access_and_service_lines_are_priced_with_the_capture_after_one_allowance(
    overlay: str,
) -> None:
    prices = PRICES[overlay]
    logs = prices["log_ingestion"]
    month = 250 * 3600 * cost.HOURS_PER_MONTH
    # The capture off: the operational lines alone are priced.
    dollars, lines = cost.log_lines(
        cost.workloads(capturing("0")), prices, observed_figures(), {"bankchurn": 250.0}, cost.OBSERVED
    )
    operational = month * 120 / GIB
    assert lines[0] == (
        f"  bankchurn writes 120 bytes of access and service log lines a prediction (observed): "
        f"{operational:,.0f} GiB a month"
    )
    assert dollars == pytest.approx(max(0.0, operational - logs["free_gib_month"]) * logs["gib"])
    # At 10 %, 1,000 bytes a captured line as observed: both, the allowance taken off once.
    dollars, lines = cost.log_lines(
        cost.workloads(capturing("10")), prices, observed_figures(1000), {"bankchurn": 250.0}, cost.OBSERVED
    )
    captured = month * 0.1 * 1000 / GIB
    assert len(lines) == 3
    assert dollars == pytest.approx((operational + captured - logs["free_gib_month"]) * logs["gib"])
    (line,) = cost.per_million(cost.workloads(capturing("10"))[:1], prices, observed_figures(1000))
    assert line.endswith(
        f"; ${1e6 * 120 / GIB * logs['gib']:.4f} per million in access and service log lines (observed)"
    )


def test_an_overlay_capturing_what_production_did_not_capture_is_refused_naming_the_other_figures() -> None:
    with pytest.raises(
        cost.CostError, match=r"capture was off in the window\): price the capture with make cost"
    ):
        cost.log_lines(
            cost.workloads(capturing("100")),
            PRICES["gke"],
            observed_figures(),
            {"bankchurn": 1.0},
            cost.OBSERVED,
        )


def test_make_cost_prices_each_service_at_the_rate_it_was_observed_to_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = tmp_path / "observed.json"
    with_profile = observed_figures()
    with_profile["services"]["bankchurn"][cost.OBSERVED]["rate_profile"] = [[0, 0.0], [360, 500.0]]
    figures.write_text(json.dumps(with_profile))
    assert cost.main(["--overlay", "gke", "--cpu", str(figures), "--load-observed"]) == 0
    out = capsys.readouterr().out
    # 250 a second at 1.5 ms is 0.375 cores: two pods held at 0.3 (the floor); at 500/s, three.
    assert "at bankchurn 250/s (observed): bankchurn 2 pods: $" in out
    assert "as the HPAs follow the observed load (2 points): bankchurn 2-3 pods (2.5 on average): $" in out
    # A service the floor held throughout is said as such.
    flat = observed_figures()
    flat["services"]["bankchurn"][cost.OBSERVED]["rate_profile"] = [[0, 10.0], [360, 20.0]]
    figures.write_text(json.dumps(flat))
    assert cost.main(["--overlay", "gke", "--cpu", str(figures), "--load-observed"]) == 0
    assert "as the HPAs follow the observed load (2 points): bankchurn 2 pods: $" in capsys.readouterr().out
    figures.write_text(json.dumps(with_profile))
    assert "at the observed load with the log lines: $" in out
    assert "bankchurn writes 120 bytes of access and service log lines a prediction (observed)" in out
    with pytest.raises(SystemExit):
        cost.main(["--overlay", "gke", "--cpu", str(figures), "--load-observed", "--load", "bankchurn=5"])
    assert "leave --load out" in capsys.readouterr().err
    measured = tmp_path / "cpu.json"
    measured.write_text(json.dumps(measured_with_capture(1000)))
    with pytest.raises(SystemExit):
        cost.main(["--overlay", "gke", "--cpu", str(measured), "--load-observed"])
    assert "python -m servekit.bench.observed" in capsys.readouterr().err


def test_a_million_predictions_cost_a_pods_hour_over_what_it_answers_at_its_cpu_target() -> None:
    objects = [deployment("bankchurn", [container("s", "500m", "512Mi")]), hpa("bankchurn", 2, 10)]
    found = cost.workloads(objects)
    measured = {"services": {"bankchurn": {"predict": {"cpu_ms_per_prediction": 1.5, "cores": 0.3}}}}
    (line,) = cost.per_million(found, PRICES["gke"], measured)
    # 0.3 cores / 1.5 ms = 200 predictions a second = 720,000 an hour.
    dollars = cost.pod_hour(found[0].pod, PRICES["gke"]) / 720_000 * 1e6
    assert "answers 200/s" in line
    assert f"${dollars:.4f} per million" in line


def served(low: int = 2, high: int = 10) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A service of 500m pods held at 0.3 cores, a database beside it, and 1.5 ms of CPU a prediction."""
    objects = [
        deployment("bankchurn", [container("s", "500m", "512Mi")]),
        hpa("bankchurn", low, high),
        deployment("mlflow", [container("m", "250m", "768Mi")], replicas=1),
    ]
    measured = {"services": {"bankchurn": {"predict": {"cpu_ms_per_prediction": 1.5, "cores": 0.3}}}}
    return objects, measured


@pytest.mark.parametrize(
    ("per_second", "pods", "note"),
    [
        (100, 2, False),  # 0.15 cores of work: the floor holds it
        (600, 3, False),  # 0.9 cores: three pods at 0.3
        (601, 4, False),  # a little more: a fourth
        (3000, 10, True),  # 4.5 cores want 15 pods; the HPA stops at 10 and says so
    ],
)
def test_a_steady_load_is_priced_at_the_pods_its_hpa_settles_at(
    per_second: int, pods: int, note: bool
) -> None:
    objects, measured = served()
    found = cost.workloads(objects)
    replicas, notes = cost.under_load(found, measured, {"bankchurn": per_second}, "predict")
    assert replicas == {"bankchurn": pods, "mlflow": 1}
    assert bool(notes) == note
    if note:
        assert "bankchurn needs 15 pods for 3000/s; its HPA stops at 10" in notes[0]
    under = cost.bill(objects, found, PRICES["gke"], replicas)
    floor = cost.bill(objects, found, PRICES["gke"], cost.at_scale(found, "floor"))
    added = (pods - 2) * cost.pod_hour(found[0].pod, PRICES["gke"]) * cost.HOURS_PER_MONTH
    assert under.total - floor.total == pytest.approx(added)


def observed_profile(*rates: tuple[int, float]) -> dict[str, Any]:
    """served()'s figures as observed, with bankchurn's rate at the given (time, rate) points."""
    _, measured = served()
    figures = {**measured["services"]["bankchurn"]["predict"], "rate_profile": [list(p) for p in rates]}
    return {"services": {"bankchurn": {cost.OBSERVED: figures}}}


def test_the_profile_is_every_services_rate_at_each_time_and_zero_where_it_had_none() -> None:
    observed = {
        "services": {
            "a": {cost.OBSERVED: {"rate_profile": [[60, 1.0], [120, 2.0]]}},
            "b": {cost.OBSERVED: {"rate_profile": [[120, 5.0], [180, 6.0]]}},
        }
    }
    assert cost.profile_points(observed, ["a", "b"]) == [
        {"a": 1.0, "b": 0.0},
        {"a": 2.0, "b": 5.0},
        {"a": 0.0, "b": 6.0},
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_varying_load_is_priced_as_the_hpa_follows_it_not_at_its_mean(overlay: str) -> None:
    objects, _ = served()
    found = cost.workloads(objects)
    prices = PRICES[overlay]
    # Half the time idle, half at 1,200/s: 6 pods held at 0.3 cores (1.5 ms each), the floor's 2 else.
    observed = observed_profile((0, 0.0), (360, 1200.0))
    points = cost.profile_points(observed, ["bankchurn"])
    averaged, lines = cost.followed(objects, found, prices, observed, points)
    at = {pods: cost.bill(objects, found, prices, {"bankchurn": pods, "mlflow": 1}) for pods in (2, 3, 6)}
    assert averaged.total == pytest.approx((at[2].total + at[6].total) / 2)
    # The mean rate, 600/s, would take 3 pods all month: less than the HPA's 4 on average.
    assert averaged.total > at[3].total
    assert lines == [
        cost.bill_line(
            averaged, "as the HPAs follow the observed load (2 points): bankchurn 2-6 pods (4 on average)"
        )
    ]
    if averaged.nodes is not None:
        assert averaged.nodes == pytest.approx(((at[2].nodes or 0) + (at[6].nodes or 0)) / 2)
    # A point past the ceiling is held at it, and said.
    peak = observed_profile((0, 0.0), (360, 3000.0))
    _, lines = cost.followed(objects, found, prices, peak, cost.profile_points(peak, ["bankchurn"]))
    assert "bankchurn 2-10 pods" in lines[0]
    assert lines[1].startswith("  bankchurn would have needed more than its 10 pods at 1 of 2 points")


def test_a_load_it_cannot_size_is_refused_with_the_reason() -> None:
    objects, measured = served()
    found = cost.workloads(objects)
    with pytest.raises(cost.CostError, match="--load taxi: no such workload"):
        cost.under_load(found, measured, {"taxi": 10}, "predict")
    with pytest.raises(cost.CostError, match="no CPU figure for 'predict\\+explain'"):
        cost.under_load(found, measured, {"bankchurn": 10}, "predict+explain")
    with pytest.raises(cost.CostError, match="mlflow: its HPA has no CPU utilisation target"):
        cost.under_load(
            found, {"services": {"mlflow": measured["services"]["bankchurn"]}}, {"mlflow": 1}, "predict"
        )
    with pytest.raises(cost.CostError, match="--load needs --cpu"):
        cost.report("gke", objects, PRICES["gke"], loads={"bankchurn": 10})


def test_make_cost_reads_a_load_as_service_equals_rate(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cost.main(["--overlay", "gke", "--load", "bankchurn:300"])
    assert "--load bankchurn:300: SERVICE=PER_SECOND" in capsys.readouterr().err


def test_every_price_says_where_it_comes_from_and_when() -> None:
    for overlay in OVERLAYS:
        prices = PRICES[overlay]
        assert prices["sources"]
        assert prices["as_of"]
        assert prices["billing"] in ("pod-requests", "nodes")


@pytest.fixture(scope="module")
def rendered_objects() -> dict[str, Rendered]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


def test_every_workload_of_both_overlays_is_counted_with_its_autoscaler(
    rendered_objects: dict[str, Rendered],
) -> None:
    for overlay, rendered in rendered_objects.items():
        found = {w.name: w for w in cost.workloads(rendered.objects)}
        workloads = {o["metadata"]["name"] for o in rendered.workloads()}
        assert set(found) == workloads, overlay
        # A StatefulSet at its replicas, each with its own claim (Alertmanager's pair).
        alertmanager = rendered.get("StatefulSet", "alertmanager")["spec"]
        assert found["alertmanager"].floor == found["alertmanager"].ceiling == alertmanager["replicas"]
        for service in SERVICES:
            autoscaler = rendered.get("HorizontalPodAutoscaler", service)["spec"]
            assert (found[service].floor, found[service].ceiling) == (
                autoscaler["minReplicas"],
                autoscaler["maxReplicas"],
            )
            assert found[service].cpu_target is not None


def test_a_component_adds_exactly_the_pods_it_brings(rendered_objects: dict[str, Rendered]) -> None:
    """autoscale-on-concurrency adds prometheus-adapter: the floor grows by its replicas' price, no more."""
    prices = PRICES["gke"]
    plain = rendered_objects["gke"].objects
    with_adapter = render("gke", components=["autoscale-on-concurrency"]).objects
    adapter = next(w for w in cost.workloads(with_adapter) if w.name == "prometheus-adapter")
    before, after = (
        cost.bill(objects, found, prices, cost.at_scale(found, "floor"))
        for objects in (plain, with_adapter)
        for found in [cost.workloads(objects)]
    )
    added = cost.pod_hour(adapter.pod, prices) * adapter.floor * cost.HOURS_PER_MONTH
    assert after.total - before.total == pytest.approx(added)
    assert added > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_cronjob_is_priced_for_its_runs_at_their_deadline_in_every_bill(
    overlay: str, rendered_objects: dict[str, Rendered]
) -> None:
    """live-evaluation's CronJobs: daily runs of at most an hour, added to the floor and the ceiling."""
    prices = PRICES[overlay]
    plain = render(overlay, components=["prediction-capture"]).objects
    evaluated = render(overlay, components=["prediction-capture", "live-evaluation"]).objects
    assert not cost.scheduled(rendered_objects[overlay].objects)
    jobs = cost.scheduled(evaluated)
    assert sorted(j.name for j in jobs) == sorted(f"{s}-live-evaluation" for s in SERVICES)
    assert all(j.runs_a_month == pytest.approx(730 / 24) and j.hours_a_run == 1 for j in jobs)
    # The Pod as the scheduler counts it: the evaluate container (the larger of it and the copy).
    assert {(j.pod.cpu, j.pod.memory_gib, j.pod.ephemeral_gib) for j in jobs} == {(0.5, 1.0, 4.0)}
    added = sum(730 / 24 * cost.pod_hour(j.pod, prices) for j in jobs)
    assert cost.workloads(evaluated) == cost.workloads(plain)
    for scale in ("floor", "ceiling"):
        before, after = (
            cost.bill(objects, found, prices, cost.at_scale(found, scale))
            for objects in (plain, evaluated)
            for found in [cost.workloads(objects)]
        )
        assert after.scheduled == pytest.approx(added)
        assert after.total - before.total == pytest.approx(added)
    assert 0 < added < 5


def asking(objects: list[dict[str, Any]], cpu: str) -> list[dict[str, Any]]:
    """``objects`` with each batch-scoring CronJob's score step asking ``cpu`` (and its limit so)."""
    changed = copy.deepcopy(objects)
    for o in changed:
        if o["kind"] == "CronJob" and o["metadata"]["name"].endswith("-batch-scoring"):
            [score] = [
                c
                for c in o["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"]
                if c["name"] == "score"
            ]
            score["resources"]["requests"]["cpu"] = score["resources"]["limits"]["cpu"] = cpu
    return changed


def test_a_pod_no_node_can_hold_beside_the_daemonsets_is_named_by_make_cost_and_k8s_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """batch-scoring's pod once asked 2 CPUs: an m6i.large leaves 1.93 - 0.15 = 1.78 to Pods, so on
    EKS it waited Pending until its deadline, the run failed, and make cost still priced it."""
    eks = render("eks", components=["batch-scoring"]).objects
    assert cost.unschedulable(eks, PRICES["eks"]) == []  # as it is
    too_big = asking(eks, "2")
    problems = cost.unschedulable(too_big, PRICES["eks"])
    assert len(problems) == len(SERVICES)
    assert all("requests 2 CPU" in p and "more than a node leaves to Pods (1.78 CPU" in p for p in problems)
    assert any(p.startswith("CronJob/bankchurn-batch-scoring: ") for p in problems)
    with pytest.raises(cost.CostError, match="bankchurn-batch-scoring: requests 2 CPU"):
        cost.report("eks", too_big, PRICES["eks"])
    with pytest.raises(cost.CostError, match="never scheduled"):
        cost.scheduled(too_big)[0].month(PRICES["eks"])
    check = cost.k8s_check()
    assert check.too_large_for_a_node("eks", too_big, "eks + batch-scoring") == [
        f"eks + batch-scoring: {p}" for p in problems
    ]
    assert check.too_large_for_a_node("eks", eks, "eks") == []
    # A Deployment's pod too: the packing names it.
    big_model = copy.deepcopy(eks)
    model = next(o for o in big_model if o["kind"] == "Deployment" and o["metadata"]["name"] == SERVICES[0])
    model["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "7Gi"
    assert [p.split(":")[0] for p in cost.unschedulable(big_model, PRICES["eks"])] == [
        f"Deployment/{SERVICES[0]}"
    ]
    # Autopilot chooses a node for each Pod: nothing to flag there at these sizes.
    assert (
        cost.unschedulable(asking(render("gke", components=["batch-scoring"]).objects, "2"), PRICES["gke"])
        == []
    )


@pytest.mark.parametrize(
    ("schedule", "runs_a_day"),
    [("17 3 * * *", 1), ("0,30 * * * *", 48), ("*/15 */6 * * *", 16), ("* 2 * * *", 60)],
)
def test_a_daily_schedule_is_counted_and_others_are_refused(schedule: str, runs_a_day: int) -> None:
    assert cost.runs_a_month(schedule, "CronJob/x") == pytest.approx(runs_a_day * 730 / 24)


@pytest.mark.parametrize(("schedule", "runs"), [("0 5 1 * *", 1), ("0 5 1,15 * *", 2), ("0,30 5 31 * *", 2)])
def test_a_monthly_schedule_is_counted_by_its_days(schedule: str, runs: int) -> None:
    assert cost.runs_a_month(schedule, "CronJob/x") == runs


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("0 3 * * 1", "only daily (minute hour * * *) and monthly (minute hour day * *) schedules"),
        ("0 3 1 1 *", "only daily (minute hour * * *) and monthly"),
        ("@daily", "only daily"),
        ("0 3 0 * *", "cannot count the runs of its schedule's field '0'"),
        ("0 3 */2 * *", "cannot count the runs of its schedule's field '*/2'"),
        ("0 3-5 * * *", "cannot count the runs of its schedule's field '3-5'"),
        ("0 24 * * *", "cannot count the runs of its schedule's field '24'"),
    ],
)
def test_a_schedule_it_cannot_count_stops_the_cost_naming_it(schedule: str, problem: str) -> None:
    with pytest.raises(cost.CostError, match=re.escape(problem)):
        cost.runs_a_month(schedule, "CronJob/x")


def test_a_cronjob_without_a_deadline_stops_the_cost() -> None:
    evaluated = render("gke", components=["prediction-capture", "live-evaluation"]).objects
    unbounded = copy.deepcopy(evaluated)
    for o in unbounded:
        if o["kind"] == "CronJob":
            del o["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    with pytest.raises(cost.CostError, match="its Jobs have no activeDeadlineSeconds"):
        cost.scheduled(unbounded)


def test_the_staging_footprint_takes_one_pod_a_service_and_a_prometheus_off_the_floor(
    rendered_objects: dict[str, Rendered],
) -> None:
    prices = PRICES["gke"]
    plain = rendered_objects["gke"].objects
    staging = render("gke", components=["staging-footprint"]).objects
    before, after = (
        cost.bill(objects, found, prices, cost.at_scale(found, "floor"))
        for objects in (plain, staging)
        for found in [cost.workloads(objects)]
    )
    by_name = {w.name: w for w in cost.workloads(plain)}
    model_pod, prometheus = by_name[SERVICES[0]].pod, by_name["prometheus"]
    pods = len(SERVICES) * cost.pod_hour(model_pod, prices) + cost.pod_hour(prometheus.pod, prices)
    [(storage_class, size)] = prometheus.claims
    disk = size * prices["storage_gib_month"][storage_class]
    assert before.compute - after.compute == pytest.approx(pods * cost.HOURS_PER_MONTH)
    assert before.storage - after.storage == pytest.approx(disk)
    assert before.total - after.total == pytest.approx(pods * cost.HOURS_PER_MONTH + disk)


@pytest.mark.parametrize("component", ["spot-model-pods", "spot-first-model-pods"])
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_spot_components_price_the_model_pods_and_only_them_at_spot_prices(
    rendered_objects: dict[str, Rendered], overlay: str, component: str
) -> None:
    prices = PRICES[overlay]
    plain = rendered_objects[overlay].objects
    spot = render(overlay, components=[component]).objects
    found = {w.name: w for w in cost.workloads(spot)}
    assert {name for name, w in found.items() if w.spot} == set(SERVICES)
    # The table says which may fall back to on-demand in a stockout.
    first = {name for name, w in found.items() if w.spot_first}
    assert first == (set(SERVICES) if component == "spot-first-model-pods" else set())
    before, after = (
        cost.bill(objects, workloads, prices, cost.at_scale(workloads, "floor"))
        for objects in (plain, spot)
        for workloads in [cost.workloads(objects)]
    )
    assert after.total < before.total
    if overlay == "gke":  # Pods are billed: each model pod saves what its Spot price takes off
        saving = sum(
            w.floor * (cost.pod_hour(w.pod, prices) - cost.workload_hour(w, prices)) for w in found.values()
        )
        assert before.total - after.total == pytest.approx(saving * cost.HOURS_PER_MONTH)
    else:  # nodes are billed: the model pods leave the on-demand group for a Spot one
        assert after.nodes is not None
        assert before.nodes is not None
        assert after.spot_nodes > 0
        assert after.nodes < before.nodes


def test_make_cost_prints_each_overlay_and_prices_a_million_predictions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = {"services": {s: {"predict": {"cpu_ms_per_prediction": 2.0, "cores": 0.3}} for s in SERVICES}}
    figures = tmp_path / "cpu.json"
    figures.write_text(json.dumps(measured))
    assert cost.main(["--cpu", str(figures), "--load", "bankchurn=600"]) == 0
    out = capsys.readouterr().out
    # 600 a second at 2 ms is 1.2 cores: four pods held at 0.3.
    assert out.count("at bankchurn 600/s (predict): bankchurn 4 pods: $") == len(OVERLAYS)
    for overlay in OVERLAYS:
        assert f"{overlay}: " in out
    assert out.count("at the floor: $") == len(OVERLAYS)
    assert out.count("per million") == len(OVERLAYS) * len(SERVICES)
    for name in ("Deployment/mlflow", "StatefulSet/prometheus", "Deployment/grafana"):
        assert name in out


def test_make_cost_prices_the_capture_an_overlay_turns_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = {
        "services": {
            s: {"predict": {"cpu_ms_per_prediction": 2.0, "cores": 0.3, "capture_bytes_per_prediction": 1000}}
            for s in SERVICES
        }
    }
    figures = tmp_path / "cpu.json"
    figures.write_text(json.dumps(measured))
    arguments = ["--overlay", "gke", "--cpu", str(figures), "--load", "bankchurn=600"]
    assert cost.main(arguments) == 0
    assert "capture" not in capsys.readouterr().out  # off in the base
    assert cost.main([*arguments, "--component", "prediction-capture"]) == 0
    out = capsys.readouterr().out
    gib = 600 * 1000 * 3600 * cost.HOURS_PER_MONTH / GIB
    assert f"bankchurn captures 100 % of 600/s at 1,000 bytes a line: {gib:,.0f} GiB a month" in out
    assert "the log lines: $" in out
    assert "at bankchurn 600/s with the log lines: $" in out
    assert out.count("in log lines") == len(SERVICES)  # and each service's million


def test_make_cost_fails_with_the_reason_when_the_manifests_cannot_be_costed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prices = copy.deepcopy(PRICES)
    prices["gke"]["storage_gib_month"] = {}
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(prices))
    assert cost.main(["--overlay", "gke", "--prices", str(path)]) == 1
    assert "no price for the StorageClass(es) standard-rwo" in capsys.readouterr().err


def test_the_readmes_give_the_floors_and_ceilings_make_cost_computes(
    rendered_objects: dict[str, Rendered],
) -> None:
    """The figures written in the READMEs are this tool's on the manifests as they are: a change to a
    request, a replica count or a price that moves them fails here until the text follows."""
    readme = (cost.ROOT / "README.md").read_text()
    components = cost.ROOT / "k8s" / "components"
    staging_readme = (components / "staging-footprint" / "README.md").read_text()
    spot_readme = (components / "spot-model-pods" / "README.md").read_text()
    spot_first_readme = (components / "spot-first-model-pods" / "README.md").read_text()

    def monthly(objects: list[dict[str, Any]], prices: dict[str, Any], scale: str = "floor") -> int:
        found = cost.workloads(objects)
        return round(cost.bill(objects, found, prices, cost.at_scale(found, scale)).total)

    spot_floors, spot_staging_floors = {}, {}
    for overlay in OVERLAYS:
        prices = PRICES[overlay]
        plain = rendered_objects[overlay].objects
        staging = render(overlay, components=["staging-footprint"]).objects
        spot = render(overlay, components=["spot-model-pods"]).objects
        both = render(overlay, components=["spot-model-pods", "staging-footprint"]).objects
        floor, ceiling = monthly(plain, prices), monthly(plain, prices, "ceiling")
        staging_floor, spot_floor, spot_ceiling = (
            monthly(staging, prices),
            monthly(spot, prices),
            monthly(spot, prices, "ceiling"),
        )
        overlay_readme = (cost.ROOT / "k8s" / "overlays" / overlay / "README.md").read_text()
        assert f"**${floor} a month**" in overlay_readme, overlay
        assert f"${ceiling} with every HPA at its ceiling" in overlay_readme, overlay
        assert f"**${floor} a month**" in readme, overlay
        assert f"| ${floor} a month | **${staging_floor}**" in staging_readme, overlay
        if overlay == "gke":  # and the component's own comment
            comment = " ".join((components / "staging-footprint" / "kustomization.yaml").read_text().split())
            assert f"(GKE Autopilot: ${floor} to ${staging_floor} a month," in comment
        assert f"| ${floor} a month | **${spot_floor}**" in spot_readme, overlay
        assert f"${spot_ceiling} instead of ${ceiling}" in spot_readme, overlay
        # Spot first: the same while the cloud has Spot capacity (on-demand, as without, in a stockout).
        spot_first = render(overlay, components=["spot-first-model-pods"]).objects
        spot_first_floor = monthly(spot_first, prices)
        assert f"| ${floor} a month | **${spot_first_floor}**" in spot_first_readme, overlay
        assert f"${monthly(spot_first, prices, 'ceiling')} instead of ${ceiling}" in spot_first_readme, (
            overlay
        )
        assert re.search(
            rf"spot-first-model-pods` \(the model pods[^)]*\), \${spot_first_floor}\b", overlay_readme
        )
        assert re.search(rf"spot-model-pods` \(the model pods[^)]*\), \${spot_floor}\b", overlay_readme), (
            overlay
        )
        spot_floors[overlay] = spot_floor
        spot_staging_floors[overlay] = monthly(both, prices)
    assert f"spot-model-pods`: ${spot_floors['gke']} a month on GKE, ${spot_floors['eks']} on EKS" in readme
    # A GKE cluster created before bursting was allowed bills CPU in steps (k8s/prices.yaml).
    stepped_floor = monthly(rendered_objects["gke"].objects, {**PRICES["gke"], "autopilot_rounding": STEPPED})
    assert re.search(rf"the floor is \${stepped_floor} \(`cpu_min` and `cpu_step`", readme)
    gke, eks = spot_staging_floors["gke"], spot_staging_floors["eks"]
    both_text = f"too (one pod a service, one Prometheus): ${gke} on GKE, ${eks} on EKS."
    assert f"With `staging-footprint` {both_text}" in spot_readme


def cronjob(name: str, schedule: str = "0 3 * * *", deadline: int = 3600) -> dict[str, Any]:
    pod = {"containers": [container("job", "500m", "1Gi")]}
    template = {"spec": {"activeDeadlineSeconds": deadline, "template": {"spec": pod}}}
    return {
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {"schedule": schedule, "jobTemplate": template},
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_followed_bill_keeps_the_cronjobs_of_the_mean_rates_bill(
    overlay: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    objects, _ = served()
    objects.append(cronjob("bankchurn-live-evaluation"))
    found = cost.workloads(objects)
    prices = PRICES[overlay]
    jobs = cost.scheduled_month(objects, prices)
    assert jobs > 0
    observed = observed_profile((0, 0.0), (360, 1200.0))
    observed["services"]["bankchurn"][cost.OBSERVED][cost.OPERATIONAL_BYTES] = 100
    averaged, _ = cost.followed(
        objects, found, prices, observed, cost.profile_points(observed, ["bankchurn"])
    )
    at = {pods: cost.bill(objects, found, prices, {"bankchurn": pods, "mlflow": 1}) for pods in (2, 6)}
    assert averaged.scheduled == pytest.approx(jobs)
    assert averaged.total == pytest.approx((at[2].total + at[6].total) / 2)
    load = {"bankchurn": 600.0}
    lines = cost.report(
        overlay, objects, prices, cpu=observed, loads=load, kind=cost.OBSERVED, follow_observed=True
    )
    [followed_line] = [line for line in lines if "as the HPAs follow" in line]
    assert f"+ scheduled jobs ${jobs:,.2f}" in followed_line
    logged, _ = cost.log_lines(found, prices, observed, load, cost.OBSERVED)
    assert lines[-1] == f"  at the observed load with the log lines: ${averaged.total + logged:,.0f} a month"


def shadowed(rate: str | None = None) -> list[dict[str, Any]]:
    """served()'s service with a shadow model (the shadow-challenger component) at ``rate``."""
    env = [{"name": "BANKCHURN_SHADOW_MODEL_URI", "value": "models:/bankchurn@challenger"}]
    if rate is not None:
        env.append({"name": "BANKCHURN_SHADOW_SAMPLE_RATE", "value": rate})
    return [
        deployment("bankchurn", [container("s", "500m", "512Mi", env=env)]),
        hpa("bankchurn", 2, 10),
        deployment("mlflow", [container("m", "250m", "768Mi")], replicas=1),
    ]


def probe_figures(*, with_shadow: bool) -> dict[str, Any]:
    """The probe's bankchurn: 0.88 ms a predict and 1.33 ms a predict+explain alone; with a shadow on
    every request, 0.98 and 1.575 ms."""
    kinds: dict[str, Any] = {
        "predict": {"cpu_ms_per_prediction": 0.88, "cores": 0.18},
        "predict+explain": {"cpu_ms_per_prediction": 1.33, "cores": 0.13},
    }
    if with_shadow:
        kinds["predict"]["with_shadow"] = {"cpu_ms_per_prediction": 0.98, "shadow_sample_rate": 1.0}
        kinds["predict+explain"]["with_shadow"] = {"cpu_ms_per_prediction": 1.575, "shadow_sample_rate": 1.0}
    return {"services": {"bankchurn": kinds}}


def test_a_shadowed_service_is_sized_with_its_shadows_measured_cpu() -> None:
    load = {"bankchurn": 1000.0}
    plain = cost.workloads(served()[0])
    every = cost.workloads(shadowed())
    measured = probe_figures(with_shadow=True)
    # 1000/s at 1.33 ms is 1.33 cores: 5 pods held at 0.3; at 1.575 ms, 1.575 cores: 6.
    assert cost.under_load(plain, measured, load, "predict+explain")[0]["bankchurn"] == 5
    replicas, notes = cost.under_load(every, measured, load, "predict+explain")
    assert replicas["bankchurn"] == 6
    assert notes == [
        "  bankchurn's shadow (100% of requests) adds 0.245 ms of CPU a prediction, measured with a shadow "
        "on 100% of requests"
    ]
    # At a sample rate of a quarter, a quarter of the difference.
    quarter = cost.workloads(shadowed("0.25"))
    assert cost.cpu_ms_of(quarter[0], measured["services"]["bankchurn"], "predict")[0] == pytest.approx(0.905)
    lines = cost.per_million(every, PRICES["gke"], measured)
    assert (
        "bankchurn predict+explain: 1.33 ms of CPU each (measured at 0.13 cores, 1.57 ms with its shadow)"
        in ("\n".join(lines))
    )


def test_a_shadow_not_measured_is_estimated_and_said_so() -> None:
    every = cost.workloads(shadowed())
    figures = probe_figures(with_shadow=False)
    cpu_ms, note = cost.cpu_ms_of(every[0], figures["services"]["bankchurn"], "predict+explain")
    # A predict of the service's on each request: more than it measured (1.575), never less.
    assert cpu_ms == pytest.approx(1.33 + 0.88)
    assert note.startswith(
        "bankchurn's shadow (100% of requests) adds 0.880 ms of CPU a prediction, estimated"
    )
    assert "make cost measures them" in note
    replicas, notes = cost.under_load(every, figures, {"bankchurn": 1000.0}, "predict+explain")
    assert replicas["bankchurn"] == 8
    assert notes == [f"  {note}"]
    # Without a shadow, nothing is added and nothing said.
    assert cost.cpu_ms_of(cost.workloads(served()[0])[0], figures["services"]["bankchurn"], "predict") == (
        0.88,
        "",
    )


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "No such file or directory"),
        ("not json", "not JSON"),
        (
            json.dumps({"machine": {}, "services": {"bankchurn": {"version": "3", "http": {}}}}),
            "'version', 'http'",
        ),
        (
            json.dumps({"services": {"bankchurn": {"settings": {}, "load": {"requests": 5}}}}),
            "'settings', 'load'",
        ),
        (json.dumps([1, 2]), 'no "services"'),
    ],
)
def test_a_cpu_file_that_is_missing_or_another_report_is_one_line_naming_it_and_make_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    path = tmp_path / "cpu.json"
    if content is not None:
        path.write_text(content)
    assert cost.main(["--overlay", "gke", "--cpu", str(path), "--load", "bankchurn=1000"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cost: --cpu {path}: ")
    assert says in err
    assert "make cost measures it" in err
    assert err.count("\n") == 1
