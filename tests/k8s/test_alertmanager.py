"""k8s/base/alertmanager: Prometheus sends the alerts to each replica, the replicas gossip, each reads
the generated configuration and the receivers' Secret, which no manifest holds, and reaches nothing
but the receivers and its peer.

The configuration itself (routes, inhibitions, a live Alertmanager notifying) is tested in
tests/monitoring/test_alertmanager.py.
"""

from __future__ import annotations

from manifests import (
    ROOT,
    SERVICES,
    Obj,
    Rendered,
    container,
    flags,
    pod_labels,
    port_behind,
    prometheus_config,
    selects,
)
from test_manifests import flow, pod

from mixin.alertmanager import ALERTMANAGER_CONFIG, RECEIVER_KEYS, RECEIVERS_DIR
from mixin.platform import ALERTMANAGER_JOB, ALERTMANAGER_STATEFULSET
from scripts import MONITORING

NAME = ALERTMANAGER_STATEFULSET  # what AlertmanagerReplicasUnavailable selects by (mixin.platform)
#: Where the StorageClass of each overlay's volumes comes from (its kustomization's patches).
STORAGE_CLASSES = {"gke": "standard-rwo", "eks": "gp3"}
#: The class of the standalone claims (MLflow's): on GKE one that keeps the disk (storageclass.yaml).
STANDALONE_STORAGE_CLASSES = {"gke": "standard-rwo-retain", "eks": "gp3"}


def statefulset(overlay: Rendered) -> Obj:
    return overlay.get("StatefulSet", NAME)


def args(overlay: Rendered) -> dict[str, str]:
    return flags(statefulset(overlay))


def mounts(overlay: Rendered) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container(statefulset(overlay))["volumeMounts"]}


def volume(overlay: Rendered, name: str) -> dict:
    spec = statefulset(overlay)["spec"]["template"]["spec"]
    [found] = [v for v in spec["volumes"] if v["name"] == name]
    return found


def every_replica(overlay: Rendered, discovery: dict) -> None:
    """A DNS discovery that finds each replica's pod, at its web port, not one behind the Service."""
    [config] = discovery["dns_sd_configs"]
    assert config["type"] == "A"
    [name] = config["names"]
    service = overlay.get("Service", name)
    assert service["spec"]["clusterIP"] == "None", "a headless Service: one record per pod"
    assert selects(service["spec"]["selector"], pod_labels(statefulset(overlay)))
    assert f":{config['port']}" == args(overlay)["web.listen-address"]


def test_prometheus_sends_its_alerts_to_every_replica(overlay: Rendered) -> None:
    [alertmanagers] = prometheus_config(overlay)["alerting"]["alertmanagers"]
    every_replica(overlay, alertmanagers)


def test_prometheus_scrapes_the_notification_counts_of_every_replica(overlay: Rendered) -> None:
    """NotificationsFailing reads them (mixin.platform)."""
    [job] = [j for j in prometheus_config(overlay)["scrape_configs"] if j["job_name"] == ALERTMANAGER_JOB]
    every_replica(overlay, job)


def test_people_and_grafana_reach_either_replica_at_one_address(overlay: Rendered) -> None:
    assert f":{port_behind(overlay, 'alertmanager:9093', NAME)}" == args(overlay)["web.listen-address"]


def test_its_links_lead_where_the_documented_port_forward_puts_it(overlay: Rendered) -> None:
    """A notification's silence link is built on --web.external-url: the address at which
    k8s/README.md's port-forward of the Service makes Alertmanager's page reachable."""
    port = overlay.get("Service", "alertmanager")["spec"]["ports"][0]["port"]
    assert args(overlay)["web.external-url"] == f"http://localhost:{port}"
    readme = (ROOT / "k8s" / "README.md").read_text()
    assert (
        f"port-forward svc/alertmanager {port}` and `amtool --alertmanager.url=http://localhost:{port}"
        in readme
    )


def test_the_replicas_gossip_with_each_other_by_their_stable_names(overlay: Rendered) -> None:
    spec = statefulset(overlay)["spec"]
    assert spec["replicas"] >= 2
    headless = overlay.get("Service", spec["serviceName"])
    assert headless["spec"]["publishNotReadyAddresses"] is True, "peers find each other before ready"
    peers = sorted(
        a.split("=", 1)[1] for a in container(statefulset(overlay))["args"] if a.startswith("--cluster.peer=")
    )
    gossip = int(args(overlay)["cluster.listen-address"].rsplit(":", 1)[1])
    assert peers == [f"{NAME}-{i}.{spec['serviceName']}:{gossip}" for i in range(spec["replicas"])]
    ports = {(p["containerPort"], p["protocol"]) for p in container(statefulset(overlay))["ports"]}
    assert {(gossip, "TCP"), (gossip, "UDP")} <= ports
    assert {(p["port"], p["protocol"]) for p in headless["spec"]["ports"]} >= {
        (gossip, "TCP"),
        (gossip, "UDP"),
    }
    policies = overlay.of_kind("NetworkPolicy")
    alertmanager = pod(overlay, NAME)
    assert flow(policies, alertmanager, alertmanager, gossip, "TCP")
    assert flow(policies, alertmanager, alertmanager, gossip, "UDP")


def test_it_runs_the_generated_configuration(overlay: Rendered) -> None:
    config_file = args(overlay)["config.file"]
    directory, file_name = config_file.rsplit("/", 1)
    assert mounts(overlay)["config"] == directory
    configmap = overlay.get("ConfigMap", volume(overlay, "config")["configMap"]["name"])
    assert configmap["data"][file_name] == (MONITORING / ALERTMANAGER_CONFIG).read_text()


def test_the_receivers_come_from_a_secret_that_no_manifest_holds(overlay: Rendered) -> None:
    assert mounts(overlay)["receivers"] == RECEIVERS_DIR
    secret = volume(overlay, "receivers")["secret"]
    assert not secret.get("optional"), "without its receivers Alertmanager would tell no one"
    assert {(i["key"], i["path"]) for i in secret["items"]} == {(key, key) for key in RECEIVER_KEYS}
    assert not [s for s in overlay.of_kind("Secret") if s["metadata"]["name"] == secret["secretName"]]


def test_silences_and_the_notification_log_outlive_a_restart(overlay: Rendered) -> None:
    """Each replica has a volume of its own, of the overlay's StorageClass, for its storage path."""
    [claim] = statefulset(overlay)["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == STORAGE_CLASSES[overlay.overlay]
    assert mounts(overlay)["data"] == args(overlay)["storage.path"]
    for standalone in overlay.of_kind("PersistentVolumeClaim"):
        assert standalone["spec"]["storageClassName"] == STANDALONE_STORAGE_CLASSES[overlay.overlay]


def test_it_runs_unprivileged_without_a_token(overlay: Rendered) -> None:
    workload = statefulset(overlay)
    spec = workload["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert "kube-api-access" not in mounts(overlay)
    security = container(workload)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["capabilities"]["drop"] == ["ALL"]


def test_only_prometheus_and_grafana_reach_it_and_it_reaches_only_the_receivers(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    alertmanager, prometheus = pod(overlay, NAME), pod(overlay, "prometheus")
    slack = {"ip": "34.120.0.10"}  # an address on the internet, as hooks.slack.com resolves to
    assert flow(policies, prometheus, alertmanager, 9093)
    assert flow(policies, alertmanager, slack, 443)
    assert not flow(policies, alertmanager, slack, 80)
    assert flow(policies, pod(overlay, "grafana"), alertmanager, 9093), "Grafana's alert list"
    assert not flow(policies, alertmanager, prometheus, 9090)
    assert not flow(policies, alertmanager, pod(overlay, "mlflow"), 5000)
    for service in SERVICES:
        assert not flow(policies, pod(overlay, service), alertmanager, 9093)
        assert not flow(policies, alertmanager, pod(overlay, service), 8080)
