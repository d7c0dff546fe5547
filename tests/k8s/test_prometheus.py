"""k8s/base/prometheus: two whole replicas, each with its own volume, whose alerts Alertmanager takes
for one; one address that keeps each client on one replica; a drain or a rollout takes one at a time.

That two replicas running this configuration notify once, and that one left still alerts, is tested
live in tests/monitoring/test_prometheus_pair.py.
"""

from __future__ import annotations

import re

from manifests import ROOT, Obj, Rendered, container, flags, pod_labels, prometheus_config, selects
from test_manifests import flow, pod

from mixin.platform import PROMETHEUS_STATEFULSET
from mixin.self_monitoring import PROMETHEUS_JOB
from scripts import load_k8s_cost

NAME = PROMETHEUS_STATEFULSET  # what PrometheusReplicasUnavailable selects by (mixin.platform)
#: Where the StorageClass of each overlay's volumes comes from (its kustomization's patches).
STORAGE_CLASSES = {"gke": "standard-rwo", "eks": "gp3"}


def statefulset(overlay: Rendered) -> Obj:
    return overlay.get("StatefulSet", NAME)


def test_two_replicas_with_a_volume_each(overlay: Rendered) -> None:
    spec = statefulset(overlay)["spec"]
    assert spec["replicas"] >= 2
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["storageClassName"] == STORAGE_CLASSES[overlay.overlay]
    mounts = {m["name"]: m["mountPath"] for m in container(statefulset(overlay))["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == flags(statefulset(overlay))["storage.tsdb.path"]
    # A size limit under the volume, with room for the write-ahead log and a compaction's new
    # block: past it Prometheus deletes its oldest blocks, where a full disk would stop its writes.
    limit = flags(statefulset(overlay))["storage.tsdb.retention.size"]
    assert limit.endswith("GB"), "Prometheus's GB is 2^30 bytes, a GiB"
    _, claimed_gib = load_k8s_cost().claim_size(claim)
    assert int(limit.removesuffix("GB")) <= 0.8 * claimed_gib
    volumes = {v["name"] for v in spec["template"]["spec"]["volumes"]}
    assert claim["metadata"]["name"] not in volumes, "a pod volume would shadow the replica's own claim"
    shared = [c for c in overlay.of_kind("PersistentVolumeClaim") if "prometheus" in c["metadata"]["name"]]
    assert not shared, "a claim for both: ReadWriteOnce lets one replica mount it"


def test_their_alerts_carry_the_same_labels(overlay: Rendered) -> None:
    """Alertmanager merges alerts by their labels: a label that differs per replica would make every
    alert two (two pages for one problem). External labels are added to every alert sent, so any
    that names the replica (from the pod's name or IP) must be dropped from the alerts."""
    config = prometheus_config(overlay)
    external = config.get("global", {}).get("external_labels", {})
    per_replica = {label for label, value in external.items() if re.search(r"\$\{?\w+", str(value))}
    dropped = {
        label
        for relabel in config.get("alerting", {}).get("alert_relabel_configs", [])
        if relabel.get("action") == "labeldrop"
        for label in per_replica
        if re.fullmatch(relabel["regex"], label)
    }
    assert per_replica == dropped


def test_each_client_stays_on_one_replica(overlay: Rendered) -> None:
    """Grafana, prometheus-adapter and `mlp rollout` query the Service; the replicas' data differ a
    little (each scrapes at its own moments), so alternating between them would make panels flicker."""
    service = overlay.get("Service", "prometheus")
    assert service["spec"]["sessionAffinity"] == "ClientIP"
    assert selects(service["spec"]["selector"], pod_labels(statefulset(overlay)))


def test_a_drain_or_a_rollout_takes_one_replica_at_a_time(overlay: Rendered) -> None:
    spec = statefulset(overlay)["spec"]
    assert spec.get("updateStrategy", {"type": "RollingUpdate"})["type"] == "RollingUpdate"
    assert "partition" not in spec.get("updateStrategy", {}).get("rollingUpdate", {})
    [pdb] = [p for p in overlay.of_kind("PodDisruptionBudget") if p["metadata"]["name"] == NAME]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert selects(pdb["spec"]["selector"], pod_labels(statefulset(overlay)))


def test_each_replica_has_a_stable_name(overlay: Rendered) -> None:
    headless = overlay.get("Service", statefulset(overlay)["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert selects(headless["spec"]["selector"], pod_labels(statefulset(overlay)))


def test_each_replica_scrapes_both(overlay: Rendered) -> None:
    """A replica whose rules fail, or whose alerts go nowhere, still sends the Watchdog: its peer's
    scrape of it is what the self-monitoring alerts read (mixin.self_monitoring), by pod."""
    [job] = [j for j in prometheus_config(overlay)["scrape_configs"] if j["job_name"] == PROMETHEUS_JOB]
    [discovery] = job["kubernetes_sd_configs"]
    assert discovery["role"] == "pod"
    assert discovery["namespaces"] == {"own_namespace": True}
    key, value = discovery["selectors"][0]["label"].split("=")
    assert pod_labels(statefulset(overlay))[key] == value
    relabel = {tuple(r["source_labels"]): r for r in job["relabel_configs"]}
    port = relabel[("__meta_kubernetes_pod_container_port_name",)]
    [web] = [p for p in container(statefulset(overlay))["ports"] if p["name"] == port["regex"]]
    assert f":{web['containerPort']}" == flags(statefulset(overlay))["web.listen-address"]
    assert relabel[("__meta_kubernetes_pod_name",)]["target_label"] == "pod"
    policies = overlay.of_kind("NetworkPolicy")
    prometheus = pod(overlay, NAME)
    assert flow(policies, prometheus, prometheus, web["containerPort"])


def test_its_links_lead_where_the_documented_port_forward_puts_it(overlay: Rendered) -> None:
    """An alert's query link (the Slack message's "query") is built on --web.external-url: the
    address at which k8s/README.md's port-forward of the Service makes Prometheus reachable."""
    port = overlay.get("Service", "prometheus")["spec"]["ports"][0]["port"]
    assert flags(statefulset(overlay))["web.external-url"] == f"http://localhost:{port}"
    readme = (ROOT / "k8s" / "README.md").read_text()
    assert f"port-forward svc/prometheus {port}:{port}   # http://localhost:{port}" in readme
