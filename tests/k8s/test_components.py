"""Kustomize components an overlay may add: each renders on both overlays and says only what it should."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml
from manifests import K8S_CHECK, OVERLAYS, ROOT, SERVICES, Obj, Rendered, configmap_env, container, render
from test_manifests import model_deployments

from scripts import load_k8s_cost
from servekit import settings

#: Each component and the settings it adds to, or changes in, every service (``<SVC>_`` left out).
COMPONENTS = {
    "shadow-challenger": {"SHADOW_MODEL_URI", "SHADOW_SAMPLE_RATE", "SHADOW_MAX_PENDING"},
    "canary-rollout": {"CANARY_MODEL_URI", "CANARY_TRAFFIC_PERCENT"},
    "prediction-capture": {"CAPTURE_PERCENT"},
}


@pytest.fixture(scope="module", params=[(o, c) for o in OVERLAYS for c in COMPONENTS], ids=str)
def composed(request: pytest.FixtureRequest) -> tuple[str, Rendered, Rendered]:
    """A component, and an overlay as it is and with that component."""
    overlay, component = request.param
    return component, render(overlay), render(overlay, components=[component])


@pytest.mark.parametrize("service", SERVICES)
def test_a_component_sets_its_settings_for_each_service(
    composed: tuple[str, Rendered, Rendered], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    component, plain, with_component = composed
    before = configmap_env(plain, model_deployments(plain)[service])
    after = configmap_env(with_component, model_deployments(with_component)[service])
    prefix = f"{service.upper()}_"
    changed = {k for k, v in after.items() if before.get(k) != v}
    assert changed == {prefix + name for name in COMPONENTS[component]}
    assert set(before) <= set(after)  # nothing removed
    for name, value in after.items():  # as the pod's environment
        monkeypatch.setenv(name, value)
    loaded = settings.load_settings(service)
    if component == "shadow-challenger":
        assert loaded.shadow_model_uri == f"models:/{service}@challenger"
        assert 0 < loaded.shadow_sample_rate <= 1
    elif component == "prediction-capture":
        assert before[prefix + "CAPTURE_PERCENT"] == "0"  # off in the base
        assert loaded.capture_percent == 100
    else:
        assert loaded.canary_model_uri == f"models:/{service}@canary"
        assert 0 < loaded.canary_traffic_percent < 50  # a canary, not a second champion


def test_a_component_changes_only_the_settings(composed: tuple[str, Rendered, Rendered]) -> None:
    """The Deployments roll (the ConfigMap names carry a new hash); no other object changes."""
    _, plain, with_component = composed

    def kinds(rendered: Rendered) -> list[tuple[str, str]]:
        return sorted((o["kind"], o["metadata"]["name"].rsplit("-", 1)[0]) for o in rendered.objects)

    assert kinds(plain) == kinds(with_component)
    old = {o["metadata"]["name"] for o in plain.of_kind("ConfigMap")}
    new = {o["metadata"]["name"] for o in with_component.of_kind("ConfigMap")}
    assert len(old - new) == len(SERVICES)  # one settings ConfigMap per service, renamed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_staging_footprint_lowers_each_model_hpas_floor_and_prometheus_to_one_and_changes_nothing_else(
    overlay: str,
) -> None:
    plain, staging = render(overlay), render(overlay, components=["staging-footprint"])
    autoscalers = {o["metadata"]["name"]: o for o in staging.of_kind("HorizontalPodAutoscaler")}
    assert set(autoscalers) == set(SERVICES)
    for service in SERVICES:
        assert autoscalers[service]["spec"]["minReplicas"] == 1
        before = plain.get("HorizontalPodAutoscaler", service)["spec"]
        assert before["minReplicas"] > 1
        assert {**autoscalers[service]["spec"], "minReplicas": before["minReplicas"]} == before
    prometheus = plain.get("StatefulSet", "prometheus")
    assert prometheus["spec"]["replicas"] > 1
    one = {**prometheus, "spec": {**prometheus["spec"], "replicas": 1}}
    assert staging.get("StatefulSet", "prometheus") == one
    changed = {"HorizontalPodAutoscaler", "StatefulSet/prometheus"}

    def others(rendered: Rendered) -> list[Obj]:
        return [
            o
            for o in rendered.objects
            if o["kind"] not in changed and f"{o['kind']}/{o['metadata']['name']}" not in changed
        ]

    assert others(staging) == others(plain)


#: The node label each cloud marks Spot capacity with, and its value (GKE Autopilot's Spot Pods; the
#: nodes of an EKS managed node group of Spot instances).
SPOT_NODES = {"gke": ("cloud.google.com/gke-spot", "true"), "eks": ("eks.amazonaws.com/capacityType", "SPOT")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_spot_model_pods_puts_only_the_model_pods_on_the_clouds_spot_nodes(overlay: str) -> None:
    plain, spot = render(overlay), render(overlay, components=["spot-model-pods"])
    label, value = SPOT_NODES[overlay]
    assert load_k8s_cost().SPOT_NODE_LABELS[label] == value  # so make cost prices them as Spot
    pods = assert_only_the_model_pods_placed(plain, spot, label, value, "tolerations")
    # The Spot nodes' taint, of the same label and value: only the model pods tolerate it, so MLflow,
    # Prometheus and Grafana, which may go to any node, stay off Spot.
    for pod in pods.values():
        assert pod["tolerations"] == [
            {"key": label, "operator": "Equal", "value": value, "effect": "NoSchedule"}
        ]


def test_spot_model_pods_readme_taints_the_spot_nodes_with_what_the_model_pods_tolerate() -> None:
    """Neither an eksctl Spot node group nor a GKE Standard Spot pool is tainted unless told: the
    README's recipes taint them, with the key and value each overlay's values.yaml names."""
    readme = (ROOT / "k8s" / "components" / "spot-model-pods" / "README.md").read_text()
    [eksctl] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.DOTALL) if "managedNodeGroups" in b]
    groups = {g["name"]: g for g in yaml.safe_load(eksctl)["managedNodeGroups"]}
    label, value = SPOT_NODES["eks"]
    assert render("eks").values()["spotNodeLabel"] == label
    assert groups["spot"]["taints"] == [{"key": label, "value": value, "effect": "NoSchedule"}]
    assert "taints" not in groups["on-demand"]
    label, value = SPOT_NODES["gke"]
    assert f"--spot --node-taints={label}={value}:NoSchedule" in readme


def assert_only_the_model_pods_placed(
    plain: Rendered, placed: Rendered, label: str, value: str, *also: str
) -> dict[str, Obj]:
    """Every model pod of ``placed`` may run only on nodes labelled ``label=value`` and is given 25 s
    at most to stop, its servers' shutdown grace shortened to fit; nothing else changes from
    ``plain`` but the pod fields ``also``. Returns the pods."""
    models = model_deployments(placed)
    assert set(models) == set(SERVICES)
    pods = {}
    for service, deployment in models.items():
        pod = pods[service] = deployment["spec"]["template"]["spec"]
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert terms["nodeSelectorTerms"] == [
            {"matchExpressions": [{"key": label, "operator": "In", "values": [value]}]}
        ]
        # GKE gives a preempted Spot Pod 25 s at most: the preStop sleep and the shutdown grace fit
        # (with the slack to exit: test_shutdown.py).
        assert pod["terminationGracePeriodSeconds"] <= 25
        before = copy.deepcopy(plain.get("Deployment", service))
        # The settings ConfigMap differs by the grace alone; its name, by its hash.
        grace = f"{service.upper()}_SHUTDOWN_GRACE_SECONDS"
        assert configmap_env(placed, deployment) == {**configmap_env(plain, before), grace: "12"}
        changed = ("affinity", "terminationGracePeriodSeconds", *also)
        before["spec"]["template"]["spec"].update({field: pod[field] for field in changed})
        container(before)["envFrom"] = container(deployment)["envFrom"]
        assert deployment == before, service  # nothing else of the pod changes

    def others(rendered: Rendered) -> list[Obj]:
        """What is neither a model Deployment nor its settings ConfigMap."""
        models = model_deployments(rendered).values()
        settings_maps = {s["configMapRef"]["name"] for d in models for s in container(d)["envFrom"]}
        return [
            o
            for o in rendered.objects
            if o not in models and not (o["kind"] == "ConfigMap" and o["metadata"]["name"] in settings_maps)
        ]

    unchanged = others(placed)
    assert unchanged == others(plain)
    assert all(
        "affinity" not in o["spec"]["template"]["spec"] for o in unchanged if o["kind"] == "Deployment"
    )
    return pods


def test_spot_model_pods_in_an_overlay_without_the_spot_label_names_the_value_it_lacks(
    tmp_path: Path,
) -> None:
    """An overlay of one's own must say which node label is Spot on its cluster; kustomize says so."""
    overlay = tmp_path / "overlay"
    shutil.copytree(ROOT / "k8s" / "overlays" / "gke", overlay)
    values = overlay / "values.yaml"
    values.write_text("".join(line for line in values.read_text().splitlines(True) if "spotNode" not in line))
    kustomization = overlay / "kustomization.yaml"
    text = kustomization.read_text().replace("../../base", os.path.relpath(ROOT / "k8s" / "base", overlay))
    component = os.path.relpath(ROOT / "k8s" / "components" / "spot-model-pods", overlay)
    kustomization.write_text(f"{text}components:\n  - {component}\n")
    result = K8S_CHECK.run([str(K8S_CHECK.BIN / "kubectl"), "kustomize", str(overlay)])
    assert result.returncode != 0
    assert "data.spotNodeLabel` is missing" in result.stderr


SPOT_FIRST = ROOT / "k8s" / "components" / "spot-first-model-pods"


def cluster_resource(kind: str) -> Obj:
    """spot-first-model-pods' object of ``kind`` that the cluster's administrator applies by hand."""
    [found] = [doc for _, doc in K8S_CHECK.cluster_resources() if doc["kind"] == kind]
    return dict(found)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_spot_first_model_pods_puts_only_the_model_pods_on_a_class_that_tries_spot_then_on_demand(
    overlay: str,
) -> None:
    plain, spot_first = render(overlay), render(overlay, components=["spot-first-model-pods"])
    values = spot_first.values()
    label, value = values["spotFirstNodeLabel"], values["spotFirstNodeValue"]
    # The class the label names, as its cluster/ file defines it: Spot, then on-demand.
    if overlay == "gke":
        assert label == "cloud.google.com/compute-class"  # how GKE's Pods select a ComputeClass
        computeclass = cluster_resource("ComputeClass")
        assert computeclass["metadata"]["name"] == value
        spec = computeclass["spec"]
        assert spec["priorities"] == [{"spot": True}, {"spot": False}]
        # Back to Spot once it can be had: a stockout costs on-demand prices only while it lasts.
        assert spec["activeMigration"] == {"optimizeRulePriority": True}
        assert spec["whenUnsatisfiable"] == "ScaleUpAnyway"  # a node of any kind, not a Pending pod
    else:
        nodepool = cluster_resource("NodePool")["spec"]
        template = nodepool["template"]
        assert template["metadata"]["labels"] == {label: value}
        # Karpenter launches Spot first when both are allowed, on-demand when EC2 has no Spot.
        capacity = {r["key"]: r["values"] for r in template["spec"]["requirements"]}
        assert capacity["karpenter.sh/capacity-type"] == ["spot", "on-demand"]
        # The size make cost packs pods by (k8s/prices.yaml's node).
        assert "m6i.large" in capacity["node.kubernetes.io/instance-type"]
        # The taint the model pods tolerate: the class's nodes are theirs alone, as on GKE.
        assert template["spec"]["taints"] == [{"key": label, "value": value, "effect": "NoSchedule"}]
        # Karpenter does not move pods back from on-demand: a node's life bounds a stockout's cost.
        assert template["spec"]["expireAfter"] == "24h"
    assert (label, value) in load_k8s_cost().spot_first_classes()  # so make cost prices them as Spot
    pods = assert_only_the_model_pods_placed(plain, spot_first, label, value, "tolerations")
    for pod in pods.values():  # the class's taint, of the same label and value
        assert pod["tolerations"] == [
            {"key": label, "operator": "Equal", "value": value, "effect": "NoSchedule"}
        ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_two_spot_components_refuse_to_render_together_in_either_order(overlay: str) -> None:
    """Listed together (switching from one to the other and keeping both), half of each would place
    the pods: Spot-only affinity with the class's toleration. The render stops, naming the second."""
    for first, second in (K8S_CHECK.EXCLUSIVE, K8S_CHECK.EXCLUSIVE[::-1]):
        result = K8S_CHECK.kustomize(overlay, [first, second])
        assert result.returncode != 0
        assert (
            f"k8s/components/{second}': testing value /spec/template/spec/terminationGracePeriodSeconds"
            in (result.stderr)
        )
    # Each is rendered with every other component by make k8s-check.
    assert [set(K8S_CHECK.EXCLUSIVE) & set(c) for c in K8S_CHECK.component_sets()] == [
        {one} for one in K8S_CHECK.EXCLUSIVE
    ]
    assert set().union(*K8S_CHECK.component_sets()) == set(K8S_CHECK.COMPONENTS)


def test_spot_first_cluster_resources_match_their_schemas_which_reject_typos() -> None:
    assert K8S_CHECK.cluster_resource_problems() == []
    assert {p.name for p in K8S_CHECK.CLUSTER_RESOURCES} == {"computeclass.yaml", "nodepool.yaml"}
    for kind, path in (("ComputeClass", ["spec", "activeMigration"]), ("NodePool", ["spec", "disruption"])):
        broken = cluster_resource(kind)
        section = broken
        for key in path:
            section = section[key]
        section["optimiseRulePriority" if kind == "ComputeClass" else "consolidationpolicy"] = True
        [problem] = K8S_CHECK.schema_problems("test", broken)
        assert "was unexpected" in problem


GOSSIP_TLS = ROOT / "k8s" / "components" / "alertmanager-gossip-tls"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_alertmanager_gossip_tls_mounts_what_its_file_names_and_changes_nothing_else(overlay: str) -> None:
    plain, tls = render(overlay), render(overlay, components=["alertmanager-gossip-tls"])
    statefulset = tls.get("StatefulSet", "alertmanager")
    pod = statefulset["spec"]["template"]["spec"]
    [flag] = [a for a in container(statefulset)["args"] if a.startswith("--cluster.tls-config=")]
    config_path = Path(flag.split("=", 1)[1])
    mounts = {m["mountPath"]: m for m in container(statefulset)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # The file the flag names is the component's, in the ConfigMap mounted there.
    config_volume = volumes[mounts[str(config_path.parent)]["name"]]
    configmap = tls.configmap(config_volume["configMap"]["name"].rsplit("-", 1)[0])
    assert configmap["metadata"]["name"] == config_volume["configMap"]["name"]
    text = configmap["data"][config_path.name]
    assert text == (GOSSIP_TLS / config_path.name).read_text()
    config = yaml.safe_load(text)
    # Mutual: each side presents the certificate and checks the other's against the CA.
    assert config["tls_server_config"]["client_auth_type"] == "RequireAndVerifyClientCert"
    files = [
        *(config["tls_server_config"][k] for k in ("cert_file", "key_file", "client_ca_file")),
        *(config["tls_client_config"][k] for k in ("cert_file", "key_file", "ca_file")),
    ]
    # Every file it names is a key of the Secret, mounted where it looks, and the Secret is required.
    for path in map(Path, files):
        mount = mounts[str(path.parent)]
        assert mount["readOnly"], path
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == "alertmanager-gossip-tls"
        assert not secret.get("optional", False)
        assert {"key": path.name, "path": path.name} in secret["items"], path
    assert not tls.of_kind("Secret"), "the certificate's Secret is never committed"
    # Nothing else changes: the StatefulSet gains the flag, the mounts and the volumes and loses the
    # UDP port, as do the gossip's Service and NetworkPolicy; the ConfigMap is new.
    before = copy.deepcopy(plain.get("StatefulSet", "alertmanager"))
    spec = before["spec"]["template"]["spec"]
    spec["containers"][0]["args"].append(flag)
    spec["containers"][0]["volumeMounts"] = container(statefulset)["volumeMounts"]
    spec["containers"][0]["ports"] = without_udp(spec["containers"][0]["ports"])
    spec["volumes"] = pod["volumes"]
    assert statefulset == before
    service = copy.deepcopy(plain.get("Service", "alertmanager-cluster"))
    service["spec"]["ports"] = without_udp(service["spec"]["ports"])
    assert tls.get("Service", "alertmanager-cluster") == service
    policy = copy.deepcopy(plain.get("NetworkPolicy", "alertmanager-gossip"))
    for rule in (*policy["spec"]["ingress"], *policy["spec"]["egress"]):
        rule["ports"] = without_udp(rule["ports"])
    assert tls.get("NetworkPolicy", "alertmanager-gossip") == policy
    added = [o for o in tls.objects if o not in plain.objects]
    assert sorted(f"{o['kind']}/{o['metadata']['name']}" for o in added) == sorted(
        [
            "StatefulSet/alertmanager",
            "Service/alertmanager-cluster",
            "NetworkPolicy/alertmanager-gossip",
            f"ConfigMap/{configmap['metadata']['name']}",
        ]
    )
    # And no UDP is left anywhere on Alertmanager: over TLS, memberlist never opens a UDP socket.
    alertmanager_objects = [o for o in tls.objects if "alertmanager" in o["metadata"]["name"]]
    assert "UDP" not in yaml.safe_dump_all(alertmanager_objects)


def without_udp(ports: list[Obj]) -> list[Obj]:
    """``ports`` as they would be if the base had never opened UDP (the plain render has it)."""
    kept = [p for p in ports if p.get("protocol") != "UDP"]
    assert len(kept) == len(ports) - 1, ports
    return kept


#: Where "ml-platform" is the product's name, not its namespace: labels and their keys, the runbooks'
#: repository, the dashboards' tag and folder provider, the image repository, the
#: static IP's and the IAM role's names (values.yaml), the ALB's group, and the cluster-scoped names of
#: autoscale-on-concurrency's RBAC, which no `namespace:` renames (its rbac.yaml says so).
PRODUCT_NAME = re.compile(
    "|".join(
        [
            r"app\.kubernetes\.io/part-of: ml-platform$",
            r"ml-platform\.io/",
            r"image: \S+/ml-platform/",
            r"global-static-ip-name: ml-platform-ip$",
            r"role/ml-platform-mlflow$",
            r"sslPolicy: ml-platform-modern$",
            r"github\.com/ml-platform/ml-platform/",
            r'^\s*"ml-platform",?$',
            r"^\s*- name: ml-platform$",
            r"name: ml-platform:prometheus-adapter:",
        ]
    )
)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_an_overlay_renaming_the_namespace_leaves_no_reference_to_the_old_one(
    overlay: str, tmp_path: Path
) -> None:
    """An overlay of one's own with ``namespace: ml-staging`` on top of an overlay and every component:
    every object, subject and Service reference moves, and no address names ml-platform (the
    prometheus-adapter once asked for prometheus.ml-platform.svc, which then did not resolve, so the
    HPAs held their count and AutoscalerInactive fired)."""
    [components, *_] = K8S_CHECK.component_sets()
    directory = K8S_CHECK.composed(overlay, components, tmp_path)
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump({**kustomization, "namespace": "ml-staging"})
    )
    result = K8S_CHECK.run([str(K8S_CHECK.BIN / "kubectl"), "kustomize", str(directory)])
    assert result.returncode == 0, result.stderr
    objects = K8S_CHECK.objects(result.stdout)
    assert "autoscale-on-concurrency" in components
    for o in objects:
        namespace = o["metadata"].get("namespace")
        assert namespace in (None, "ml-staging"), f"{o['kind']}/{o['metadata']['name']}"
        for subject in o.get("subjects", []):
            assert subject["namespace"] == "ml-staging", o["metadata"]["name"]
        if o["kind"] == "APIService":
            assert o["spec"]["service"]["namespace"] == "ml-staging"
    left = [
        line for line in result.stdout.splitlines() if "ml-platform" in line and not PRODUCT_NAME.search(line)
    ]
    assert left == []
    adapter = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "prometheus-adapter"
    )
    assert "--prometheus-url=http://prometheus:9090/" in container(adapter)["args"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_request_traces_points_every_model_server_at_the_collector_and_opens_only_its_port(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import urlsplit

    from opentelemetry.sdk.trace import sampling

    from servekit import spans

    plain, traced = render(overlay), render(overlay, components=["request-traces"])
    endpoints = set()
    for service in SERVICES:
        before = configmap_env(plain, model_deployments(plain)[service])
        after = configmap_env(traced, model_deployments(traced)[service])
        assert not spans.enabled(before)  # off in the base
        assert spans.enabled(after)
        assert {k for k, v in after.items() if before.get(k) != v} == {
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_TRACES_SAMPLER",
            "OTEL_TRACES_SAMPLER_ARG",
        }
        # As the SDK reads them: the callers' decisions followed, 5 % of the traces a service starts.
        for name, value in after.items():
            monkeypatch.setenv(name, value)
        sampler = sampling._get_from_env_or_default()
        assert isinstance(sampler, sampling.ParentBased)
        assert "TraceIdRatioBased{0.05}" in sampler.get_description()
        endpoints.add(after["OTEL_EXPORTER_OTLP_ENDPOINT"])
    [endpoint] = endpoints
    url = urlsplit(endpoint)
    host, namespace = url.hostname or "", (url.hostname or "").split(".")[1]
    assert (url.scheme, url.port) == ("http", 4318)  # OTLP/HTTP, the exporter the services have
    assert host.endswith(".svc.cluster.local")
    # The one flow added: model servers to that namespace's collector, on that port.
    [policy] = [o for o in traced.of_kind("NetworkPolicy") if o not in plain.of_kind("NetworkPolicy")]
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "model-server"}}
    assert spec["policyTypes"] == ["Egress"]
    [rule] = spec["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": url.port}]
    [peer] = rule["to"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": namespace}}

    def others(rendered: Rendered) -> list[Obj]:
        return [o for o in rendered.objects if o["kind"] != "ConfigMap" and o is not policy]

    renamed = {o["metadata"]["name"] for o in plain.of_kind("ConfigMap")} - {
        o["metadata"]["name"] for o in traced.of_kind("ConfigMap")
    }
    assert len(renamed) == len(SERVICES)  # one settings ConfigMap per service, with a new hash
    strip = re.compile(r"\b(" + "|".join(SERVICES) + r")-[a-z0-9]{10}\b")
    assert [strip.sub(r"\1", str(o)) for o in others(traced)] == [
        strip.sub(r"\1", str(o)) for o in others(plain)
    ]
