"""The rendered GKE and EKS overlays agree with the code of the services and with each other.

Probe paths and ports exist in the app, the command parses with the real CLI, every environment
variable is one the settings read, selectors select, ingress backends exist, Prometheus scrapes
what the pods serve, and nothing environment-specific is left unset.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from fastapi.testclient import TestClient
from manifests import (
    K8S_CHECK,
    ROOT,
    SERVICES,
    Obj,
    Rendered,
    configmap_env,
    container,
    pod_labels,
    port_behind,
    prometheus_config,
    render,
    selects,
)

from mixin.common import GRAFANA_URL, SCRAPE_INTERVAL, Objectives
from servekit import cli, registry, settings
from servekit.bench import soak
from servekit.cli import serving
from servekit.rest import create_app
from servekit.rest.auth import is_open as is_open_endpoint

#: Set in the Deployments for the process, not read by the service's settings: where Python and the
#: MLflow client may write (the root filesystem is read-only).
PROCESS_ENV = {"HOME", "TMPDIR", serving.SERVICE_ENV}
#: Images this repository builds (CI pushes <registry>/<name>:<tag>): one per service and MLflow.
BUILT_IMAGES = {*SERVICES, "mlflow"}


def model_deployments(rendered: Rendered) -> dict[str, Obj]:
    deployments = rendered.of_kind("Deployment")
    return {
        d["metadata"]["name"]: d
        for d in deployments
        if d["metadata"]["labels"].get("app.kubernetes.io/component") == "model-server"
    }


def test_every_installed_service_is_deployed(overlay: Rendered) -> None:
    assert set(model_deployments(overlay)) == set(SERVICES)
    assert set(registry.available()) <= set(SERVICES), "a new service needs its manifests in k8s/base"


def test_nothing_left_unset(overlay: Rendered) -> None:
    """Overlay sources mark what values.yaml must replace with the reserved TLD .invalid. A value is
    used by the overlay, or by the components that read it (spot-model-pods: the Spot node label)."""
    composed = [render(overlay.overlay, components=c) for c in K8S_CHECK.component_sets()]
    for rendered in (overlay, *composed):
        assert ".invalid" not in rendered.text
    for key, value in overlay.values().items():
        used = [rendered for rendered in (overlay, *composed) if str(value) in rendered.text]
        assert used, f"values.yaml {key} is used nowhere"
    assert all(o["metadata"].get("namespace") == "ml-platform" for o in overlay.objects if is_namespaced(o))


def is_namespaced(obj: Obj) -> bool:
    return obj["kind"] not in {"Namespace", "StorageClass"}


# --- model-server Deployments -------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_paths() -> set[str]:
    """Routes of the servekit app (the same for every service: one app factory)."""
    spec = registry.get_service("bankchurn")
    app = create_app(spec, settings.load_settings("bankchurn"))
    return {str(getattr(route, "path", "")) for route in app.routes}


@pytest.mark.parametrize("service", SERVICES)
def test_deployment_container(overlay: Rendered, service: str, app_paths: set[str]) -> None:
    deployment = model_deployments(overlay)[service]
    server = container(deployment)
    assert server["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "grpc", "containerPort": 8081, "protocol": "TCP"},
    ]
    # The gRPC port the container declares is the one the service's settings serve on.
    assert configmap_env(overlay, deployment)[f"{service.upper()}_GRPC_PORT"] == "8081"
    ports = {p["name"]: p for p in overlay.get("Service", service)["spec"]["ports"]}
    assert (ports["grpc"]["port"], ports["grpc"]["targetPort"]) == (8081, "grpc")
    assert ports["grpc"]["appProtocol"] == "kubernetes.io/h2c"

    command = server["command"]
    assert command == ["mlp", "serve", "--host", "0.0.0.0", "--port", "8080"]
    assert "args" not in server
    env = {item["name"]: item.get("value") for item in server.get("env", [])}
    assert env[serving.SERVICE_ENV] == service
    args = cli.parser().parse_args(command[1:])
    assert (args.func, args.host, args.port) == (serving.cmd_serve, "0.0.0.0", 8080)
    assert serving.service_name(args, env) == service

    probes = {kind: server[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    # Start-up on /healthz: a pod whose registry is down stays alive and not ready, not restarted.
    assert probes["startupProbe"]["path"] == "/healthz"
    for probe in probes.values():
        assert probe["port"] in ("http", 8080)
        assert probe["path"] in app_paths

    resources = server["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[bound])
    # The limit the MemoryNearLimit alert falls back to without cAdvisor, and `make soak` reports against.
    limit = mebibytes(resources["limits"]["memory"]) * 2**20
    assert limit == Objectives().memory_limit_bytes == soak.MEMORY_LIMIT_BYTES


def mebibytes(quantity: str) -> int:
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return int(number) * (1024 if unit == "Gi" else 1)


@pytest.mark.parametrize("service", SERVICES)
def test_probe_paths_answer_under_root_path(overlay: Rendered, service: str) -> None:
    """With the manifest's ROOT_PATH, the kubelet's unprefixed probe paths still reach the app."""
    env = configmap_env(overlay, model_deployments(overlay)[service])
    root_path = env[f"{service.upper()}_ROOT_PATH"]
    spec = (
        registry.get_service(service)
        if service in registry.available()
        else registry.get_service("bankchurn")
    )
    client = TestClient(create_app(spec, settings.load_settings(spec.name, root_path=root_path)))
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 503  # no model loaded: lifespan not started
    assert client.get(f"{root_path}/healthz").status_code == 200
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_pod_security(overlay: Rendered, service: str) -> None:
    pod = model_deployments(overlay)[service]["spec"]["template"]["spec"]
    server = container(model_deployments(overlay)[service])
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == pod["securityContext"]["runAsGroup"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = server["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 10001
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    # The only writable path: /tmp (model download, HOME) on an emptyDir.
    mounts = {m["mountPath"]: m["name"] for m in server["volumeMounts"]}
    writable = {m["mountPath"] for m in server["volumeMounts"] if not m.get("readOnly")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts == {"/tmp": "tmp", "/etc/servekit/api-keys": "api-keys"}
    assert writable == {"/tmp"}
    assert "emptyDir" in volumes["tmp"]
    assert configmap_env(overlay, model_deployments(overlay)[service])["HOME"] == "/tmp"
    sa = overlay.get("ServiceAccount", pod["serviceAccountName"])
    assert sa["automountServiceAccountToken"] is False


@pytest.mark.parametrize("service", SERVICES)
def test_api_keys_come_from_the_services_own_secret_which_no_manifest_holds(
    overlay: Rendered, service: str
) -> None:
    deployment = model_deployments(overlay)[service]
    keys_file = Path(configmap_env(overlay, deployment)[f"{service.upper()}_API_KEYS_FILE"])
    (mount,) = [m for m in container(deployment)["volumeMounts"] if m["mountPath"] == str(keys_file.parent)]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount is never updated: a revoked key would keep working"
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == f"{service}-api-keys"
    assert not volume["secret"].get("optional", False), "without its keys a pod must wait, not serve open"
    assert volume["secret"]["defaultMode"] & 0o007 == 0, "not readable by other users"
    assert not [s for s in overlay.of_kind("Secret") if s["metadata"]["name"].endswith("-api-keys")]


@pytest.mark.parametrize("service", SERVICES)
def test_graceful_shutdown_and_spread(overlay: Rendered, service: str) -> None:
    deployment = model_deployments(overlay)[service]
    pod = deployment["spec"]["template"]["spec"]
    # Endpoints and load balancers stop sending before SIGTERM; the shutdown grace fits after it
    # (test_shutdown.py, with every component).
    assert container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    for constraint in pod["topologySpreadConstraints"]:
        assert selects(constraint["labelSelector"], pod_labels(deployment))
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"


@pytest.mark.parametrize("service", SERVICES)
def test_env_vars_are_settings(overlay: Rendered, service: str) -> None:
    """Every variable set for a service is one its settings read: a typo fails here."""
    allowed = settings.environment_variables(service)
    deployment = model_deployments(overlay)[service]
    for source in container(deployment)["envFrom"]:
        data = overlay.configmap(source["configMapRef"]["name"])["data"]
        assert set(data) <= allowed, set(data) - allowed
        assert {"MODEL_URI", "MLFLOW_TRACKING_URI"} <= set(data)
    explicit = {item["name"] for item in container(deployment).get("env", [])}
    assert explicit <= allowed | PROCESS_ENV, explicit - allowed - PROCESS_ENV
    env = configmap_env(overlay, deployment)
    assert env["MODEL_URI"] == f"models:/{service}@champion"
    assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The values parse with the real settings class.
    loaded = settings.settings_class(service)(
        service=service, **{k: v for k, v in env.items() if k in allowed}
    )
    assert loaded.resolved_model_uri() == f"models:/{service}@champion"


def test_mlflow_tracking_uri_points_at_the_mlflow_service(overlay: Rendered) -> None:
    mlflow = overlay.get("Service", "mlflow")
    assert [p["port"] for p in mlflow["spec"]["ports"]] == [5000]
    deployment = overlay.get("Deployment", "mlflow")
    assert selects(mlflow["spec"]["selector"], pod_labels(deployment))
    assert container(deployment)["ports"][0]["containerPort"] == 5000


# --- HPA, PDB, Service selectors ----------------------------------------------------------------


def test_hpa(overlay: Rendered) -> None:
    hpas = {h["metadata"]["name"]: h for h in overlay.of_kind("HorizontalPodAutoscaler")}
    assert set(hpas) == set(SERVICES)
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        spec = hpa["spec"]
        target = spec["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", name)
        overlay.get("Deployment", target["name"])
        assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 10)
        assert spec["metrics"][0]["resource"]["name"] == "cpu"
        assert spec["metrics"][0]["resource"]["target"]["type"] == "Utilization"
        up, down = spec["behavior"]["scaleUp"], spec["behavior"]["scaleDown"]
        assert up["stabilizationWindowSeconds"] == 0
        assert down["stabilizationWindowSeconds"] >= 300
        assert max(p["value"] for p in up["policies"] if p["type"] == "Pods") > max(
            p["value"] for p in down["policies"] if p["type"] == "Pods"
        )


def test_pdb_lets_a_node_drain(overlay: Rendered) -> None:
    hpas = {h["metadata"]["name"]: h for h in overlay.of_kind("HorizontalPodAutoscaler")}
    pdbs = overlay.of_kind("PodDisruptionBudget")
    # Every workload of more than one replica: the model servers, Prometheus and Alertmanager.
    assert {p["metadata"]["name"] for p in pdbs} == {*SERVICES, "prometheus", "alertmanager"}
    for pdb in pdbs:
        name = pdb["metadata"]["name"]
        spec = pdb["spec"]
        if "maxUnavailable" in spec:
            assert spec["maxUnavailable"] >= 1
        else:
            assert spec["minAvailable"] < hpas[name]["spec"]["minReplicas"]
        assert selects(spec["selector"], pod_labels(overlay.workload(name)))


def test_the_statefulsets_replicas_are_spread_over_zones_and_nodes(overlay: Rendered) -> None:
    """Prometheus's and Alertmanager's pairs: one node or zone lost leaves a replica."""
    statefulsets = overlay.of_kind("StatefulSet")
    assert {s["metadata"]["name"] for s in statefulsets} == {"prometheus", "alertmanager"}
    for workload in statefulsets:
        spec = workload["spec"]["template"]["spec"]
        spread = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
        assert set(spread) == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
        for constraint in spread.values():
            assert selects(constraint["labelSelector"], pod_labels(workload))
            # Preferred: a cluster of one zone (or, at first, one node) still runs both.
            assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"


def test_services_select_workloads(overlay: Rendered) -> None:
    workloads = overlay.workloads()
    for service in overlay.of_kind("Service"):
        matched = [d for d in workloads if selects(service["spec"]["selector"], pod_labels(d))]
        assert len(matched) == 1, service["metadata"]["name"]
        port_names = {
            p["name"] for c in matched[0]["spec"]["template"]["spec"]["containers"] for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names


def test_images_are_the_ones_ci_builds(overlay: Rendered) -> None:
    values = overlay.values()
    built = set()
    for workload in overlay.workloads():
        for spec in workload["spec"]["template"]["spec"]["containers"]:
            image: str = spec["image"]
            assert ":" in image.rsplit("/", 1)[-1], image
            assert not image.endswith(":latest"), image
            if image.startswith(values["imageRegistry"] + "/"):
                name, tag = image.removeprefix(values["imageRegistry"] + "/").split(":")
                assert tag == values["imageTag"]
                built.add(name)
    assert built == BUILT_IMAGES


# --- Platform parts ------------------------------------------------------------------------------


def test_prometheus_scrapes_what_the_pods_serve(overlay: Rendered, app_paths: set[str]) -> None:
    config = prometheus_config(overlay)
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "model-servers")
    assert job["metrics_path"] in app_paths
    port_keep = next(
        r
        for r in job["relabel_configs"]
        if r["source_labels"] == ["__meta_kubernetes_pod_container_port_name"]
    )
    assert port_keep["action"] == "keep"
    selector = job["kubernetes_sd_configs"][0]["selectors"][0]["label"]
    key, value = selector.split("=")
    for deployment in model_deployments(overlay).values():
        assert pod_labels(deployment)[key] == value
        assert port_keep["regex"] in {p["name"] for p in container(deployment)["ports"]}
    prometheus = overlay.get("StatefulSet", "prometheus")
    mounts = {m["name"]: m["mountPath"] for m in container(prometheus)["volumeMounts"]}
    assert config["rule_files"] == [f"{mounts['rules']}/*.yaml"]
    rules = overlay.configmap("prometheus-rules")["data"]
    assert rules
    assert all(name.endswith(".yaml") for name in rules)
    role = overlay.get("Role", "prometheus-discovery")
    assert {"pods"} <= set(role["rules"][0]["resources"])
    # The rule tests of a short-window rate take their samples this far apart (mixin.rule_tests).
    assert config["global"]["scrape_interval"] == SCRAPE_INTERVAL


def test_monitoring_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((ROOT / "monitoring" / "kustomization.yaml").read_text())
    listed = {f for generator in kustomization["configMapGenerator"] for f in generator["files"]}
    on_disk = {
        str(p.relative_to(ROOT / "monitoring"))
        for folder in ("rules", "dashboards")
        for p in (ROOT / "monitoring" / folder).iterdir()
        if p.is_file()
    }
    assert on_disk <= listed, f"not in monitoring/kustomization.yaml: {on_disk - listed}"


#: What one object may hold: the API server refuses a ConfigMap whose data exceeds 1 MiB.
OBJECT_LIMIT = 1024 * 1024
#: What client-side ``kubectl apply`` may copy into the last-applied-configuration annotation
#: (all annotations of an object together): past it the apply fails, so the docs apply server-side.
ANNOTATIONS_LIMIT = 256 * 1024


def test_every_object_fits_and_each_way_to_apply_it_is_server_side(overlay: Rendered) -> None:
    sizes = {
        f"{o['kind']}/{o['metadata']['name']}": len(json.dumps(o, separators=(",", ":")))
        for o in overlay.objects
    }
    assert max(sizes.values()) < OBJECT_LIMIT, max(sizes.items(), key=lambda item: item[1])
    too_big_for_client_side = [name for name, size in sizes.items() if size > ANNOTATIONS_LIMIT]
    docs = [ROOT / "README.md", *(ROOT / "k8s").rglob("README.md"), *(ROOT / "k8s").rglob("values.yaml")]
    commands = [
        (doc.relative_to(ROOT), line)
        for doc in docs
        for line in doc.read_text().splitlines()
        if re.search(r"kubectl apply\b.*-k ", line)
    ]
    assert any(f"k8s/overlays/{overlay.overlay}" in line for _, line in commands)
    client_side = [(doc, line) for doc, line in commands if "--server-side" not in line]
    assert not (too_big_for_client_side and client_side), (too_big_for_client_side, client_side)


def test_grafana(overlay: Rendered) -> None:
    grafana = overlay.get("Deployment", "grafana")
    env = {e["name"]: e for e in container(grafana)["env"]}
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    password_file = env["GF_SECURITY_ADMIN_PASSWORD__FILE"]["value"]
    volumes = {v["name"]: v for v in grafana["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(grafana)["volumeMounts"]}
    secret_volume = volumes[mounts[str(Path(password_file).parent)]]
    assert secret_volume["secret"]["secretName"] == "grafana-admin"
    assert not overlay.of_kind("Secret"), "the admin password Secret is never committed"
    datasources = yaml.safe_load(overlay.configmap("grafana-datasources")["data"]["datasources.yaml"])
    prometheus = overlay.get("Service", "prometheus")
    port = prometheus["spec"]["ports"][0]["port"]
    assert datasources["datasources"][0]["url"] == f"http://prometheus:{port}"
    [alertmanager] = [d for d in datasources["datasources"] if d["type"] == "alertmanager"]
    # Grafana's alert list and silences: the Service leads to Alertmanager, and the policies let it.
    container_port = port_behind(overlay, alertmanager["url"].removeprefix("http://"), "alertmanager")
    policies = overlay.of_kind("NetworkPolicy")
    assert flow(policies, pod(overlay, "grafana"), pod(overlay, "alertmanager"), container_port)
    dashboards = overlay.configmap("grafana-dashboards")["data"]
    assert dashboards
    assert all(json.loads(text) for text in dashboards.values())
    # The alerts link to Grafana where the documented port-forward puts it, and Grafana knows it.
    assert env["GF_SERVER_ROOT_URL"]["value"] == GRAFANA_URL
    [service_port] = overlay.get("Service", "grafana")["spec"]["ports"]
    forwarded = f"port-forward svc/grafana {service_port['port']}:{service_port['port']}"
    assert f"{forwarded}      # {GRAFANA_URL}" in (ROOT / "k8s" / "README.md").read_text()


def test_mlflow_server(overlay: Rendered) -> None:
    """The command parses with MLflow's own CLI, after Kubernetes expands $(VAR) from the env."""
    from mlflow.cli import server

    deployment = overlay.get("Deployment", "mlflow")
    spec = container(deployment)
    env = {e["name"]: e["value"] for e in spec["env"]}
    command = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], part) for part in spec["command"]]
    assert command[:2] == ["mlflow", "server"]
    params = server.make_context("server", command[2:]).params
    assert (params["host"], params["port"]) == ("0.0.0.0", spec["ports"][0]["containerPort"])
    assert params["backend_store_uri"] == "sqlite:////mlflow/mlflow.db"
    assert params["serve_artifacts"] is True
    assert params["artifacts_destination"] == overlay.values()["artifactDestination"]
    assert params["workers"] == "1"
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    # The model servers reach it as http://mlflow:5000: that Host header must be accepted.
    from mlflow.server.security_utils import is_allowed_host_header

    assert is_allowed_host_header(params["allowed_hosts"].split(","), "mlflow:5000")
    assert is_allowed_host_header(params["allowed_hosts"].split(","), "localhost:5000")
    # Its cluster names in any namespace an overlay renames it to; no public name (none ends in .svc).
    for host in ("mlflow.ml-staging.svc:5000", "mlflow.ml-platform.svc.cluster.local:5000"):
        assert is_allowed_host_header(params["allowed_hosts"].split(","), host)
    # The public name of its own authenticating Ingress (values.yaml mlflowPublicHost), for the
    # workflows on GitHub's runners: behind the load balancer the Host header is that name.
    public = overlay.values()["mlflowPublicHost"]
    assert public.count(".") >= 2
    for host in (public, f"{public}:443"):
        assert is_allowed_host_header(params["allowed_hosts"].split(","), host)
    for host in ("mlflow.ml-platform.example.com", f"evil.{public}", f"{public}.evil.example"):
        assert not is_allowed_host_header(params["allowed_hosts"].split(","), host)
    mounts = {m["mountPath"]: m["name"] for m in spec["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = volumes[mounts["/mlflow"]]["persistentVolumeClaim"]["claimName"]
    overlay.get("PersistentVolumeClaim", claim)
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert spec["securityContext"]["readOnlyRootFilesystem"] is True


# --- NetworkPolicies ----------------------------------------------------------------------------

#: {"labels": ..., "namespace": ..., "namespace_labels": ...} for a pod, {"ip": "1.2.3.4"} outside.
Peer = dict[str, Any]


def ip_in(ip: str, cidr: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr)


def peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        return "ip" in peer and ip_in(peer["ip"], rule_peer["ipBlock"]["cidr"])
    if "ip" in peer:
        return False
    namespace_labels = {"kubernetes.io/metadata.name": peer["namespace"], **peer.get("namespace_labels", {})}
    namespace_ok = (
        selects(rule_peer["namespaceSelector"], namespace_labels)
        if "namespaceSelector" in rule_peer
        else peer["namespace"] == "ml-platform"
    )
    pod_ok = selects(rule_peer.get("podSelector", {}), peer["labels"])
    return namespace_ok and pod_ok


def allowed(
    policies: list[Obj], direction: str, own: dict[str, str], other: Peer, *, port: int, proto: str
) -> bool:
    """Whether NetworkPolicies let traffic in ``direction`` (ingress/egress) for a pod with ``own`` labels."""
    relevant = [
        p
        for p in policies
        if selects(p["spec"]["podSelector"], own) and direction.capitalize() in p["spec"]["policyTypes"]
    ]
    assert relevant, "default deny must select every pod"
    key, peers_key = (direction, "from" if direction == "ingress" else "to")
    for policy in relevant:
        for rule in policy["spec"].get(key, []):
            ports_ok = not rule.get("ports") or any(
                p["port"] == port and p.get("protocol", "TCP") == proto for p in rule["ports"]
            )
            peers = rule.get(peers_key)
            peers_ok = not peers or any(peer_matches(peer, other) for peer in peers)
            if ports_ok and peers_ok:
                return True
    return False


def flow(policies: list[Obj], src: Peer, dst: Peer, port: int, proto: str = "TCP") -> bool:
    egress_ok = (
        "ip" in src
        or src["namespace"] != "ml-platform"
        or allowed(policies, "egress", src["labels"], dst, port=port, proto=proto)
    )
    ingress_ok = (
        "ip" in dst
        or dst["namespace"] != "ml-platform"
        or allowed(policies, "ingress", dst["labels"], src, port=port, proto=proto)
    )
    return egress_ok and ingress_ok


def pod(rendered: Rendered, workload: str) -> Peer:
    return {"labels": pod_labels(rendered.workload(workload)), "namespace": "ml-platform"}


def test_network_policies(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    ]
    assert any(not p["spec"].get("ingress") and not p["spec"].get("egress") for p in deny), "default deny"
    dns = {"labels": {"k8s-app": "kube-dns"}, "namespace": "kube-system"}
    mlflow, prometheus, grafana = pod(overlay, "mlflow"), pod(overlay, "prometheus"), pod(overlay, "grafana")
    storage = {"ip": "142.250.1.1"}  # an object-storage endpoint on the internet
    load_balancer = {"ip": "130.211.0.5" if overlay.overlay == "gke" else "10.0.101.10"}
    outsider = {"ip": "203.0.113.7"}
    # A pod of another namespace, by its address: on EKS (VPC CNI) an address of the VPC, in a
    # private subnet of the nodes; on GKE one of the cluster's pod range. The load balancer's rule
    # must not let it reach the model servers' port: the ingress leaves /metrics, /readyz and the API
    # unpublished for a reason, and gRPC is for namespaces that opted in.
    vpc_pod = {"ip": "10.0.1.23" if overlay.overlay == "eks" else "10.8.0.23"}
    # gRPC clients: any pod of a namespace that opted in, and none of one that did not.
    client = {"labels": {"app": "checkout"}, "namespace": "shop"}
    opted_in = {**client, "namespace_labels": {"ml-platform.io/inference-client": "true"}}
    everyone = [pod(overlay, s) for s in SERVICES] + [mlflow, prometheus, grafana]
    for who in everyone:
        assert flow(policies, who, dns, 53, "UDP")
        assert flow(policies, who, dns, 53, "TCP")
    for service in SERVICES:
        server = pod(overlay, service)
        assert flow(policies, load_balancer, server, 8080)
        assert flow(policies, prometheus, server, 8080)
        assert flow(policies, server, mlflow, 5000)
        assert not flow(policies, outsider, server, 8080)
        assert not flow(policies, vpc_pod, server, 8080), "a pod's address is not the load balancer's"
        assert not flow(policies, vpc_pod, server, 8081)
        assert not flow(policies, server, storage, 443), "serving pods need no cloud access"
        assert not flow(policies, server, grafana, 3000)
        assert not flow(policies, grafana, server, 8080)
        assert flow(policies, opted_in, server, 8081)
        assert not flow(policies, client, server, 8081)
        assert not flow(policies, opted_in, server, 8080), "HTTP stays the load balancer's"
        assert not flow(policies, load_balancer, server, 8081), "no ingress routes gRPC"
        assert not flow(policies, outsider, server, 8081)
    assert flow(policies, mlflow, storage, 443)
    assert flow(policies, grafana, prometheus, 9090)
    assert not flow(policies, grafana, mlflow, 5000)
    assert not flow(policies, outsider, mlflow, 5000)
    assert not flow(policies, outsider, grafana, 3000)
    assert not flow(policies, load_balancer, grafana, 3000)
    assert not flow(policies, mlflow, prometheus, 9090)


def test_on_eks_each_subnet_of_the_alb_and_nothing_else_reaches_the_model_servers(eks: Rendered) -> None:
    """values.yaml's albSubnetCidrA-C, one ipBlock each: an ALB address of every subnet gets in."""
    policy = eks.get("NetworkPolicy", "model-servers-from-load-balancer")
    values = eks.values()
    subnets = [values[f"albSubnetCidr{x}"] for x in "ABC"]
    [rule] = policy["spec"]["ingress"]
    assert rule["from"] == [{"ipBlock": {"cidr": cidr}} for cidr in subnets]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]
    policies = eks.of_kind("NetworkPolicy")
    server = pod(eks, "bankchurn")
    for cidr in subnets:
        alb = {"ip": str(next(ipaddress.ip_network(cidr).hosts()))}
        assert flow(policies, alb, server, 8080)
    assert "vpcCidr" not in values


# --- Ingress, per overlay -----------------------------------------------------------------------


def ingress_routes(ingress: Obj) -> dict[str, dict[str, Any]]:
    [rule] = ingress["spec"]["rules"]
    return {p["path"]: p for p in rule["http"]["paths"]}


def test_ingress_routes_each_service_under_its_root_path(overlay: Rendered) -> None:
    ingresses = overlay.of_kind("Ingress")
    assert len(ingresses) == 1
    ingress = ingresses[0]
    assert ingress["spec"]["rules"][0]["host"] == overlay.values()["domain"]
    routes = ingress_routes(ingress)
    backends = {route["backend"]["service"]["name"] for route in routes.values()}
    assert backends == set(SERVICES), "MLflow, Grafana and Prometheus are not exposed"
    for path, route in routes.items():
        assert route["pathType"] == "Prefix"
        backend = route["backend"]["service"]
        service = overlay.get("Service", backend["name"])
        assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
        env = configmap_env(overlay, overlay.get("Deployment", backend["name"]))
        assert path.startswith(env[f"{backend['name'].upper()}_ROOT_PATH"] + "/")


#: What answers without a key and may still be routed: the docs and the protocol's health.
PUBLISHED_WITHOUT_KEY = ("/docs", "/redoc", "/openapi.json", "/v2/health", "/v2/models/")


def routed(routes: dict[str, Obj], path: str) -> bool:
    """Whether an Ingress Prefix path routes ``path`` (element-wise: /a/b routes /a/b/c, not /a/bc)."""
    return any(path == prefix or path.startswith(prefix + "/") for prefix in routes)


@pytest.mark.parametrize("service", SERVICES)
def test_the_ingress_routes_the_api_but_not_what_answers_without_a_key(
    overlay: Rendered, service: str, app_paths: set[str]
) -> None:
    routes = ingress_routes(overlay.of_kind("Ingress")[0])
    root = configmap_env(overlay, model_deployments(overlay)[service])[f"{service.upper()}_ROOT_PATH"]
    for path in app_paths:
        concrete = path.replace("{model_name}", service).replace("{model_version}", "1")
        is_open = is_open_endpoint(concrete)
        if is_open and not concrete.startswith(PUBLISHED_WITHOUT_KEY):
            assert not routed(routes, root + concrete), f"{root}{concrete} answers anyone: not routed"
        elif not is_open:
            assert routed(routes, root + concrete), f"{root}{concrete} is part of the API: routed"


def test_gke_ingress(gke: Rendered) -> None:
    ingress = gke.get("Ingress", "model-services")
    annotations = ingress["metadata"]["annotations"]
    # The annotation: with spec.ingressClassName and no annotation GKE's controller takes no action.
    assert annotations["kubernetes.io/ingress.class"] == "gce"
    assert "ingressClassName" not in ingress["spec"]
    certificate = gke.get("ManagedCertificate", annotations["networking.gke.io/managed-certificates"])
    assert certificate["spec"]["domains"] == [gke.values()["domain"]]
    frontend = gke.get("FrontendConfig", annotations["networking.gke.io/v1beta1.FrontendConfig"])
    assert frontend["spec"]["redirectToHttps"]["enabled"] is True
    assert annotations["kubernetes.io/ingress.global-static-ip-name"] == gke.values()["staticIpName"]
    for name in SERVICES:
        service_annotations = gke.get("Service", name)["metadata"]["annotations"]
        assert json.loads(service_annotations["cloud.google.com/neg"]) == {"ingress": True}
        backend_config = json.loads(service_annotations["cloud.google.com/backend-config"])["default"]
        health = gke.get("BackendConfig", backend_config)["spec"]["healthCheck"]
        assert (health["requestPath"], health["port"], health["type"]) == ("/readyz", 8080, "HTTP")


def test_gke_log_lines_name_their_trace_in_the_project(gke: Rendered, eks: Rendered) -> None:
    project = gke.values()["gcpProject"]
    for service in SERVICES:
        env = configmap_env(gke, model_deployments(gke)[service])
        loaded = settings.settings_class(service)(
            service=service, GOOGLE_CLOUD_PROJECT=env["GOOGLE_CLOUD_PROJECT"]
        )
        assert loaded.google_cloud_project == project
        # EKS has no Cloud Trace: its log lines keep the X-Ray id in trace_id only.
        assert "GOOGLE_CLOUD_PROJECT" not in configmap_env(eks, model_deployments(eks)[service])


def test_eks_ingress(eks: Rendered) -> None:
    ingress = eks.get("Ingress", "model-services")
    assert ingress["spec"]["ingressClassName"] == "alb"
    annotations = ingress["metadata"]["annotations"]
    prefix = "alb.ingress.kubernetes.io/"
    expected = {
        "scheme": "internet-facing",
        "target-type": "ip",
        "healthcheck-path": "/readyz",
        "ssl-redirect": "443",
        "certificate-arn": eks.values()["certificateArn"],
    }
    assert {k: annotations[prefix + k] for k in expected} == expected
    # An ALB of its own: a group another namespace's Ingress could join is not named.
    assert prefix + "group.name" not in annotations
    listeners = json.loads(annotations[prefix + "listen-ports"])
    assert {"HTTPS": 443} in listeners


def test_workload_identity(gke: Rendered, eks: Rendered) -> None:
    for rendered, key, value in (
        (gke, "iam.gke.io/gcp-service-account", gke.values()["mlflowGcpServiceAccount"]),
        (eks, "eks.amazonaws.com/role-arn", eks.values()["mlflowRoleArn"]),
    ):
        account = rendered.get("Deployment", "mlflow")["spec"]["template"]["spec"]["serviceAccountName"]
        assert rendered.get("ServiceAccount", account)["metadata"]["annotations"][key] == value
        for service in SERVICES:
            assert "annotations" not in rendered.get("ServiceAccount", service)["metadata"]


@pytest.mark.parametrize(
    ("name", "storage_class", "scheme"), [("gke", "standard-rwo-retain", "gs://"), ("eks", "gp3", "s3://")]
)
def test_storage_and_artifacts(
    rendered: dict[str, Rendered], name: str, storage_class: str, scheme: str
) -> None:
    overlay = rendered[name]
    claims = overlay.of_kind("PersistentVolumeClaim")
    assert claims
    assert all(c["spec"]["storageClassName"] == storage_class for c in claims)
    env = {e["name"]: e["value"] for e in container(overlay.get("Deployment", "mlflow"))["env"]}
    assert env["ARTIFACTS_DESTINATION"].startswith(scheme)
    assert env["ARTIFACTS_DESTINATION"] == overlay.values()["artifactDestination"]
    if name == "eks":
        assert overlay.get("StorageClass", "gp3")["parameters"]["type"] == "gp3"


# --- GKE custom resources: no schema in kubernetes-validate, so validated here ------------------

CRD_SCHEMAS = {
    "BackendConfig": "backendconfig.json",
    "FrontendConfig": "frontendconfig.json",
    "ManagedCertificate": "managedcertificate.json",
}


@pytest.mark.parametrize("kind", sorted(CRD_SCHEMAS))
def test_gke_custom_resources_match_their_schema(gke: Rendered, kind: str) -> None:
    schema = json.loads((ROOT / "k8s" / "schemas" / CRD_SCHEMAS[kind]).read_text())
    objects = gke.of_kind(kind)
    assert objects
    for obj in objects:
        jsonschema.Draft202012Validator(schema).validate(obj)


def test_crd_schemas_reject_typos(gke: Rendered) -> None:
    schema = json.loads((ROOT / "k8s" / "schemas" / "backendconfig.json").read_text())
    broken: dict[str, Any] = json.loads(json.dumps(gke.of_kind("BackendConfig")[0]))
    broken["spec"]["healthCheck"]["requestpath"] = broken["spec"]["healthCheck"].pop("requestPath")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)
