"""What each cloud's edge needs of the manifests: its Ingress controller's class, the load balancer's
idle connections, the resolver and credentials endpoints the pods reach, TLS, and the disks kept.

Each check reads the rendered overlays (alone and, where a component adds pods or Ingresses, with
every component, as ``make k8s-check`` renders them).
"""

from __future__ import annotations

import ipaddress
import json
import re
from functools import cache
from typing import Any

import pytest
import yaml
from manifests import K8S_CHECK, ROOT, SERVICES, Obj, Rendered, configmap_env, render
from test_manifests import flow, model_deployments, pod

from servekit import settings

#: Seconds a load balancer keeps an idle connection to a pod open, to reuse it: Google's front
#: ends 600 (fixed); an ALB 60 unless its load-balancer-attributes say otherwise.
GOOGLE_FRONT_END_IDLE_SECONDS = 600
ALB_DEFAULT_IDLE_SECONDS = 60
ALB_ATTRIBUTES = "alb.ingress.kubernetes.io/load-balancer-attributes"
#: GKE's metadata server (Cloud DNS's resolver, Workload Identity's tokens); on EC2, the node's
#: instance metadata (IMDS), whose credentials are the node role's.
METADATA = "169.254.169.254"
EKS_POD_IDENTITY_AGENT = "169.254.170.23"
#: The components whose Jobs read and write buckets with the cloud's credentials.
BUCKET_JOBS = ("live-evaluation", "batch-scoring")
GKE_STORAGE_CLASS = ROOT / "k8s" / "overlays" / "gke" / "storageclass.yaml"


@cache
def renders(overlay: str) -> tuple[Rendered, ...]:
    """The overlay alone and with every component (each set ``make k8s-check`` renders)."""
    return (render(overlay), *(render(overlay, components=c) for c in K8S_CHECK.component_sets()))


def job_pods(rendered: Rendered, component: str) -> list[dict[str, Any]]:
    """A peer for the pods of each of the component's CronJobs."""
    return [
        {
            "labels": c["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
            "namespace": "ml-platform",
        }
        for c in rendered.of_kind("CronJob")
        if c["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]


def every_pod(rendered: Rendered) -> list[dict[str, Any]]:
    """A peer for the pods of each Deployment, StatefulSet and CronJob of the render."""
    peers = [pod(rendered, w["metadata"]["name"]) for w in rendered.workloads()]
    for component in BUCKET_JOBS:
        peers += job_pods(rendered, component)
    return peers


# --- 1. GKE Ingress: the class annotation, which the GKE controller acts on ---------------------


@pytest.mark.parametrize("index", range(1 + len(K8S_CHECK.component_sets())))
def test_every_gke_ingress_names_its_class_by_the_annotation_the_controller_acts_on(index: int) -> None:
    """GKE's Ingress controller takes no action on an Ingress with ``spec.ingressClassName`` and no
    ``kubernetes.io/ingress.class`` annotation: no load balancer would be made."""
    rendered = renders("gke")[index]
    ingresses = rendered.of_kind("Ingress")
    assert ingresses
    for ingress in ingresses:
        name = ingress["metadata"]["name"]
        assert "ingressClassName" not in ingress["spec"], f"gke Ingress/{name}: ingressClassName"
        assert ingress["metadata"].get("annotations", {}).get("kubernetes.io/ingress.class") == "gce", name


# --- 2. Keep-alive: the pod keeps an idle connection longer than the load balancer ---------------


def idle_timeout(rendered: Rendered, ingress: Obj) -> int:
    """Seconds the overlay's load balancer keeps an idle connection to a pod."""
    if rendered.overlay == "gke":
        return GOOGLE_FRONT_END_IDLE_SECONDS
    attributes = ingress["metadata"].get("annotations", {}).get(ALB_ATTRIBUTES, "")
    found = re.search(r"idle_timeout\.timeout_seconds=(\d+)", attributes)
    return int(found.group(1)) if found else ALB_DEFAULT_IDLE_SECONDS


@pytest.mark.parametrize("service", SERVICES)
def test_each_model_server_keeps_an_idle_connection_longer_than_its_load_balancer(
    overlay: Rendered, service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closed first by the pod, a connection the load balancer reuses at that moment is a 502."""
    [ingress] = overlay.of_kind("Ingress")
    env = configmap_env(overlay, model_deployments(overlay)[service])
    variable = f"{service.upper()}_KEEP_ALIVE_SECONDS"
    default = settings.settings_class(service).model_fields["keep_alive_seconds"].default
    assert default == 75
    keep_alive = int(env.get(variable, default))
    assert keep_alive > idle_timeout(overlay, ingress), (
        f"{overlay.overlay}: {variable}={keep_alive} is not above the load balancer's idle timeout"
    )
    # The variable is the service's setting, and the value one it takes.
    assert variable in settings.environment_variables(service)
    monkeypatch.setenv(variable, str(keep_alive))
    assert settings.load_settings(service).keep_alive_seconds == keep_alive


# --- 3. GKE DNS: Cloud DNS answers at the metadata server ---------------------------------------


def test_on_gke_every_pod_resolves_through_cloud_dns_too(gke: Rendered) -> None:
    """On Autopilot (Cloud DNS) a pod's nameserver is 169.254.169.254:53; kube-dns stays allowed."""
    policies = gke.of_kind("NetworkPolicy")
    kube_dns = {"labels": {"k8s-app": "kube-dns"}, "namespace": "kube-system"}
    for who in every_pod(gke):
        for proto in ("UDP", "TCP"):
            assert flow(policies, who, {"ip": METADATA}, 53, proto), who
            assert flow(policies, who, kube_dns, 53, proto), who
    # The metadata server's other ports stay closed to pods that need no credentials.
    assert not flow(policies, pod(gke, SERVICES[0]), {"ip": METADATA}, 80)


# --- 4. EKS: no pod reaches the node's instance metadata ----------------------------------------


def opens_to(rule: Obj, address: str, port: int) -> bool:
    """Whether an egress rule's ipBlocks let ``address``:``port`` out (TCP, any ports if none named)."""
    ip = ipaddress.ip_address(address)
    for peer in rule.get("to", []):
        block = peer.get("ipBlock")
        if not block or ip not in ipaddress.ip_network(block["cidr"]):
            continue
        if any(ip in ipaddress.ip_network(e) for e in block.get("except", [])):
            continue
        ports = rule.get("ports")
        if not ports or any(p.get("port") in (port, None) for p in ports):
            return True
    return False


@pytest.mark.parametrize("index", range(1 + len(K8S_CHECK.component_sets())))
def test_no_eks_render_lets_a_pod_reach_the_nodes_instance_metadata(index: int) -> None:
    """169.254.169.254:80 on EC2 hands out the node role's credentials. MLflow (IRSA) asks STS over
    443; the components' Jobs ask EKS Pod Identity's agent, 169.254.170.23:80."""
    rendered = renders("eks")[index]
    policies = rendered.of_kind("NetworkPolicy")
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            assert not opens_to(rule, METADATA, 80), policy["metadata"]["name"]
    for who in every_pod(rendered):
        assert not flow(policies, who, {"ip": METADATA}, 80), who
        assert not flow(policies, who, {"ip": METADATA}, 53, "UDP"), who
    for component in BUCKET_JOBS:
        for job in job_pods(rendered, component):
            assert flow(policies, job, {"ip": EKS_POD_IDENTITY_AGENT}, 80), component


@pytest.mark.parametrize("index", range(1 + len(K8S_CHECK.component_sets())))
def test_on_gke_the_bucket_jobs_and_mlflow_reach_the_metadata_server_for_their_tokens(index: int) -> None:
    rendered = renders("gke")[index]
    policies = rendered.of_kind("NetworkPolicy")
    takers = [pod(rendered, "mlflow")] + [j for c in BUCKET_JOBS for j in job_pods(rendered, c)]
    for who in takers:
        assert flow(policies, who, {"ip": METADATA}, 80), who
        assert flow(policies, who, {"ip": "169.254.169.252"}, 988), who
        assert not flow(policies, who, {"ip": EKS_POD_IDENTITY_AGENT}, 80), who


# --- 5. GKE TLS: the load balancer's SSL policy ---------------------------------------------------


def test_the_gke_load_balancer_refuses_tls_below_1_2(gke: Rendered) -> None:
    ingress = gke.get("Ingress", "model-services")
    frontend = gke.get(
        "FrontendConfig", ingress["metadata"]["annotations"]["networking.gke.io/v1beta1.FrontendConfig"]
    )
    name = gke.values()["sslPolicy"]
    assert frontend["spec"]["sslPolicy"] == name
    readme = " ".join((ROOT / "k8s" / "overlays" / "gke" / "README.md").read_text().split())
    made = re.search(rf"gcloud compute ssl-policies create {re.escape(name)} ([^\n`]*)", readme)
    assert made, f"the GKE README's setup makes no SSL policy {name}"
    flags = made.group(1)
    assert "--profile MODERN" in flags
    assert "--min-tls-version 1.2" in flags
    assert "--global" in flags


# --- 6. EKS: the ALB is the platform's alone -----------------------------------------------------


@pytest.mark.parametrize("index", range(1 + len(K8S_CHECK.component_sets())))
def test_no_eks_ingress_joins_an_alb_group_another_namespace_could_join(index: int) -> None:
    """With ``group.name`` any Ingress of any namespace naming the same group merges into the ALB and
    may claim its paths. The platform has one Ingress: it needs no group."""
    rendered = renders("eks")[index]
    ingresses = rendered.of_kind("Ingress")
    assert len(ingresses) == 1
    for ingress in ingresses:
        annotations = ingress["metadata"].get("annotations", {})
        assert "alb.ingress.kubernetes.io/group.name" not in annotations
        assert ingress["spec"]["ingressClassName"] == "alb"
    assert not rendered.of_kind("IngressClass")


# --- 7. GKE storage: MLflow's disk is kept when its claim goes ------------------------------------


def test_gke_keeps_mlflows_disk_as_eks_does(gke: Rendered, eks: Rendered) -> None:
    [storage_class] = [d for d in yaml.safe_load_all(GKE_STORAGE_CLASS.read_text()) if d]
    name = storage_class["metadata"]["name"]
    assert storage_class["provisioner"] == "pd.csi.storage.gke.io"
    assert storage_class["parameters"]["type"] == "pd-balanced"
    assert storage_class["reclaimPolicy"] == "Retain"
    assert storage_class["allowVolumeExpansion"] is True
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    for version in K8S_CHECK.VERSIONS:
        assert K8S_CHECK.kubernetes_problem(json.dumps(storage_class, sort_keys=True), version) is None
    mlflow = gke.get("Deployment", "mlflow")["spec"]["template"]["spec"]
    [claim] = [
        v["persistentVolumeClaim"]["claimName"] for v in mlflow["volumes"] if "persistentVolumeClaim" in v
    ]
    assert gke.get("PersistentVolumeClaim", claim)["spec"]["storageClassName"] == name
    # As the EKS overlay's class keeps it.
    gp3 = eks.get("StorageClass", eks.get("PersistentVolumeClaim", claim)["spec"]["storageClassName"])
    assert (gp3["reclaimPolicy"], gp3["volumeBindingMode"]) == ("Retain", "WaitForFirstConsumer")
    # Applied once by an administrator, as the README's setup says: not by the deploy identity.
    assert not gke.of_kind("StorageClass")
    readme = (ROOT / "k8s" / "overlays" / "gke" / "README.md").read_text()
    assert "kubectl apply --server-side -f k8s/overlays/gke/storageclass.yaml" in readme
    assert "Backup for GKE" in readme
