"""k8s/components/autoscale-on-concurrency: the HPAs' metric, the adapter serving it, and no more.

The adapter's rule and the HPAs' target are checked against the monitoring mixin (the rule
files' recorded name); tests/monitoring/test_live_prometheus.py runs the adapter's query against a
live Prometheus scraping the services.
"""

from __future__ import annotations

import pytest
import yaml
from manifests import OVERLAYS, SERVICES, Rendered, container, flags, pod_labels, render
from test_manifests import flow, pod

from mixin.autoscaling import AUTOSCALING_METRIC, AUTOSCALING_TARGET_CONCURRENCY, adapter_config
from mixin.recorded import CONCURRENCY, recording_rules

COMPONENT = "autoscale-on-concurrency"


def quantity(value: str) -> float:
    """A Kubernetes quantity as the HPA reads it ("500m" is 0.5)."""
    return float(value[:-1]) / 1000 if value.endswith("m") else float(value)


@pytest.fixture(scope="module", params=OVERLAYS)
def plain_and_scaled(request: pytest.FixtureRequest) -> tuple[Rendered, Rendered]:
    return render(request.param), render(request.param, components=[COMPONENT])


@pytest.fixture(scope="module")
def scaled(plain_and_scaled: tuple[Rendered, Rendered]) -> Rendered:
    return plain_and_scaled[1]


def test_each_hpa_scales_on_concurrency_with_cpu_behind(
    plain_and_scaled: tuple[Rendered, Rendered],
) -> None:
    plain, scaled = plain_and_scaled
    hpas = {h["metadata"]["name"]: h for h in scaled.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == set(SERVICES)
    for name, hpa in hpas.items():
        concurrency, cpu = hpa["spec"]["metrics"]
        assert concurrency["type"] == "Pods"
        assert concurrency["pods"]["metric"] == {"name": AUTOSCALING_METRIC}
        target = concurrency["pods"]["target"]
        assert target["type"] == "AverageValue"
        assert quantity(target["averageValue"]) == AUTOSCALING_TARGET_CONCURRENCY
        assert cpu["resource"]["name"] == "cpu"
        assert cpu["resource"]["target"]["type"] == "AverageValue"
        # The backstop is above what the base scaled at (60 % of the request), or it would decide.
        request = container(scaled.get("Deployment", name))["resources"]["requests"]["cpu"]
        assert quantity(cpu["resource"]["target"]["averageValue"]) > 0.6 * quantity(request)
        # Only the metrics change: bounds and behaviour are the base's.
        before = plain.get("HorizontalPodAutoscaler", name)["spec"]
        assert {k: v for k, v in hpa["spec"].items() if k != "metrics"} == {
            k: v for k, v in before.items() if k != "metrics"
        }


def test_the_adapter_serves_the_recorded_series(scaled: Rendered) -> None:
    adapter = scaled.get("Deployment", "prometheus-adapter")
    args = flags(adapter)
    # Its rules: the generated file, naming the series every service's rule file records.
    mounts = {m["name"]: m["mountPath"] for m in container(adapter)["volumeMounts"]}
    volumes = {v["name"]: v for v in adapter["spec"]["template"]["spec"]["volumes"]}
    config_dir, config_file = args["config"].rsplit("/", 1)
    [volume] = [name for name, path in mounts.items() if path.rstrip("/") == config_dir]
    config = scaled.get("ConfigMap", volumes[volume]["configMap"]["name"])
    rules = yaml.safe_load(config["data"][config_file])
    assert rules == adapter_config()
    [rule] = rules["rules"]
    for service in SERVICES:
        records = [r["record"] for r in recording_rules(service)]
        assert CONCURRENCY in records
    assert rule["seriesQuery"].startswith(CONCURRENCY + "{")
    assert rule["name"]["as"] == AUTOSCALING_METRIC
    # The Prometheus it asks is the platform's, on the port its Service serves, by the Service's
    # name alone: the resolver finds it in the adapter's own namespace, whatever an overlay names it.
    host, port = args["prometheus-url"].removeprefix("http://").rstrip("/").split(":")
    prometheus = scaled.get("Service", host)
    adapter = scaled.get("Deployment", "prometheus-adapter")
    assert prometheus["metadata"]["namespace"] == adapter["metadata"]["namespace"]
    assert int(port) in {p["port"] for p in prometheus["spec"]["ports"]}


def test_the_api_server_reaches_the_adapter(scaled: Rendered) -> None:
    [api] = scaled.of_kind("APIService")
    assert (api["spec"]["group"], api["spec"]["version"]) == ("custom.metrics.k8s.io", "v1beta1")
    assert api["metadata"]["name"] == "v1beta1.custom.metrics.k8s.io"
    ref = api["spec"]["service"]
    service = scaled.get("Service", ref["name"])
    assert service["metadata"]["namespace"] == ref["namespace"]
    [port] = [p for p in service["spec"]["ports"] if p["port"] == ref["port"]]
    adapter = scaled.get("Deployment", "prometheus-adapter")
    ports = {p["name"]: p["containerPort"] for p in container(adapter)["ports"]}
    assert ports[port["targetPort"]] == int(flags(adapter)["secure-port"])
    assert service["spec"]["selector"].items() <= pod_labels(adapter).items()


def test_the_adapter_has_least_privilege(scaled: Rendered) -> None:
    adapter = scaled.get("Deployment", "prometheus-adapter")
    account = adapter["spec"]["template"]["spec"]["serviceAccountName"]
    subject = {"kind": "ServiceAccount", "name": account, "namespace": "ml-platform"}
    bound = {
        (b["kind"], b["roleRef"]["kind"], b["roleRef"]["name"])
        for b in scaled.of_kind("RoleBinding") + scaled.of_kind("ClusterRoleBinding")
        if subject in b["subjects"]
    }
    assert bound == {
        ("RoleBinding", "Role", "prometheus-adapter"),
        ("ClusterRoleBinding", "ClusterRole", "system:auth-delegator"),
        ("ClusterRoleBinding", "ClusterRole", "ml-platform:prometheus-adapter:authentication-reader"),
    }
    [role] = [r for r in scaled.of_kind("Role") if r["metadata"]["name"] == "prometheus-adapter"]
    assert role["metadata"]["namespace"] == "ml-platform"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    reader = scaled.get("ClusterRole", "ml-platform:prometheus-adapter:authentication-reader")
    [rule] = reader["rules"]
    assert rule["resources"] == ["configmaps"]
    assert rule["resourceNames"] == ["extension-apiserver-authentication"]
    assert set(rule["verbs"]) <= {"get", "list", "watch"}
    # Nothing is written into another namespace (an overlay's namespace would move it anyway).
    assert {o["metadata"].get("namespace", "ml-platform") for o in scaled.objects} == {"ml-platform"}


def test_the_adapter_pod_is_locked_down(scaled: Rendered) -> None:
    adapter = scaled.get("Deployment", "prometheus-adapter")
    spec = adapter["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    context = container(adapter)["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    # The serving certificate is written to an emptyDir, the only writable path.
    writable = {m["mountPath"] for m in container(adapter)["volumeMounts"] if not m.get("readOnly")}
    assert writable == {"/tmp"}
    assert flags(adapter)["cert-dir"].startswith("/tmp/")
    assert adapter["spec"]["replicas"] >= 2
    assert any(
        p["spec"]["selector"]["matchLabels"].items() <= pod_labels(adapter).items()
        for p in scaled.of_kind("PodDisruptionBudget")
    )


def test_network_flows(scaled: Rendered) -> None:
    policies = scaled.of_kind("NetworkPolicy")
    adapter, prometheus = pod(scaled, "prometheus-adapter"), pod(scaled, "prometheus")
    api_server = {"ip": "172.16.0.2"}
    assert flow(policies, adapter, prometheus, 9090)
    assert flow(policies, api_server, adapter, 6443)
    assert flow(policies, adapter, api_server, 443)
    assert not flow(policies, adapter, pod(scaled, "mlflow"), 5000)
    for service in SERVICES:
        assert not flow(policies, adapter, pod(scaled, service), 8080), "it reads Prometheus only"
        assert not flow(policies, pod(scaled, service), prometheus, 9090)
    assert not flow(policies, pod(scaled, "grafana"), adapter, 6443)
