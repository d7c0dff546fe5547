"""k8s/base/alertmanager: Prometheus sends it the alerts, it reads the generated configuration and the
receivers' Secret, which no manifest holds, and reaches nothing but the receivers.

The configuration itself (routes, inhibitions, a live Alertmanager notifying) is tested in
tests/monitoring/test_alertmanager.py.
"""

from __future__ import annotations

from manifests import SERVICES, Rendered, container, flags, port_behind, prometheus_config
from test_manifests import flow, pod

from mixin.alertmanager import ALERTMANAGER_CONFIG, RECEIVER_KEYS, RECEIVERS_DIR
from mixin.platform import ALERTMANAGER_JOB
from scripts import MONITORING

NAME = "alertmanager"


def args(overlay: Rendered) -> dict[str, str]:
    return flags(overlay.get("Deployment", NAME))


def mounts(overlay: Rendered) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container(overlay.get("Deployment", NAME))["volumeMounts"]}


def volume(overlay: Rendered, name: str) -> dict:
    spec = overlay.get("Deployment", NAME)["spec"]["template"]["spec"]
    [found] = [v for v in spec["volumes"] if v["name"] == name]
    return found


def test_prometheus_sends_its_alerts_to_the_alertmanager_service(overlay: Rendered) -> None:
    config = prometheus_config(overlay)
    [[address]] = [c["targets"] for a in config["alerting"]["alertmanagers"] for c in a["static_configs"]]
    assert f":{port_behind(overlay, address, NAME)}" == args(overlay)["web.listen-address"]


def test_prometheus_scrapes_its_notification_counts(overlay: Rendered) -> None:
    """NotificationsFailing reads them (mixin.platform)."""
    [job] = [j for j in prometheus_config(overlay)["scrape_configs"] if j["job_name"] == ALERTMANAGER_JOB]
    [[address]] = [c["targets"] for c in job["static_configs"]]
    assert f":{port_behind(overlay, address, NAME)}" == args(overlay)["web.listen-address"]


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
    claim = volume(overlay, "data")["persistentVolumeClaim"]["claimName"]
    overlay.get("PersistentVolumeClaim", claim)
    assert mounts(overlay)["data"] == args(overlay)["storage.path"]
    # One writer of a ReadWriteOnce volume.
    assert overlay.get("Deployment", NAME)["spec"]["strategy"]["type"] == "Recreate"


def test_it_runs_unprivileged_without_a_token(overlay: Rendered) -> None:
    deployment = overlay.get("Deployment", NAME)
    spec = deployment["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert "kube-api-access" not in mounts(overlay)
    security = container(deployment)["securityContext"]
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
