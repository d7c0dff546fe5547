"""k8s/base/kube-state-metrics: the series the cluster alerts read, from this namespace only.

The series themselves need a cluster; the alerts and the replica panel over them are promtool cases
(monitoring/mixin/rule_tests/workloads.py). Here: what it reads and may read, that Prometheus scrapes it, and
that the objects its series name are the ones the mixin selects.
"""

from __future__ import annotations

from manifests import ROOT, SERVICES, Rendered, container, flags, port_behind, prometheus_config
from test_manifests import flow, pod

from mixin.cluster import CLUSTER_METRICS, JOB

NAME = "kube-state-metrics"
#: The kinds it reports (--resources) and the API group of each (its Role).
KINDS = {
    "deployments": "apps",
    "horizontalpodautoscalers": "autoscaling",
    "statefulsets": "apps",
    "cronjobs": "batch",
    "jobs": "batch",
}


def args(overlay: Rendered) -> dict[str, str]:
    return flags(overlay.get("Deployment", NAME))


def test_it_reports_its_kinds_and_exactly_the_series_the_mixin_reads(overlay: Rendered) -> None:
    given = args(overlay)
    assert set(given["resources"].split(",")) == set(KINDS)
    assert sorted(given["metric-allowlist"].split(",")) == sorted(CLUSTER_METRICS)
    # And k8s/README.md counts them as they are.
    readme = " ".join((ROOT / "k8s" / "README.md").read_text().split())
    assert f"`--metric-allowlist` is exactly the {len(CLUSTER_METRICS)} series the mixin reads" in readme


def test_it_reads_its_own_namespace_with_a_role_and_no_cluster_role(overlay: Rendered) -> None:
    assert args(overlay)["namespaces"] == "$(POD_NAMESPACE)"
    [env] = [e for e in container(overlay.get("Deployment", NAME))["env"] if e["name"] == "POD_NAMESPACE"]
    assert env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    [role] = [r for r in overlay.of_kind("Role") if r["metadata"]["name"] == NAME]
    assert {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]} == {
        (group, kind) for kind, group in KINDS.items()
    }
    assert all(set(rule["verbs"]) == {"list", "watch"} for rule in role["rules"])
    bindings = overlay.of_kind("RoleBinding") + overlay.of_kind("ClusterRoleBinding")
    bound = [b for b in bindings if any(s["name"] == NAME for s in b["subjects"])]
    assert [(b["kind"], b["roleRef"]["kind"], b["roleRef"]["name"]) for b in bound] == [
        ("RoleBinding", "Role", NAME)
    ]


def test_it_runs_unprivileged_with_a_short_lived_token(overlay: Rendered) -> None:
    deployment = overlay.get("Deployment", NAME)
    spec = deployment["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == NAME
    assert spec["automountServiceAccountToken"] is False
    security = container(deployment)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["runAsNonRoot"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    [token] = [v for v in spec["volumes"] if v["name"] == "kube-api-access"]
    [source] = [s for s in token["projected"]["sources"] if "serviceAccountToken" in s]
    assert source["serviceAccountToken"]["expirationSeconds"] <= 3600


def test_prometheus_scrapes_it_through_its_service(overlay: Rendered) -> None:
    [job] = [j for j in prometheus_config(overlay)["scrape_configs"] if j["job_name"] == JOB]
    # The series' namespace label is the object's: kept, not overwritten by the target's.
    assert job["honor_labels"] is True
    [[address]] = [c["targets"] for c in job["static_configs"]]
    assert port_behind(overlay, address, NAME) == int(args(overlay)["port"])


def test_only_prometheus_reaches_it_and_it_reaches_the_api_server(overlay: Rendered) -> None:
    policies = overlay.of_kind("NetworkPolicy")
    exporter, api_server = pod(overlay, NAME), {"ip": "172.16.0.2"}
    assert flow(policies, pod(overlay, "prometheus"), exporter, 8080)
    assert flow(policies, exporter, api_server, 443)
    assert not flow(policies, pod(overlay, "grafana"), exporter, 8080)
    assert not flow(policies, exporter, pod(overlay, "mlflow"), 5000)
    for service in SERVICES:
        assert not flow(policies, pod(overlay, service), exporter, 8080)


def test_each_service_deployment_and_autoscaler_is_named_after_it(overlay: Rendered) -> None:
    """The mixin selects a service's series by deployment="<svc>" and horizontalpodautoscaler="<svc>"."""
    for service in SERVICES:
        autoscaler = overlay.get("HorizontalPodAutoscaler", service)
        assert autoscaler["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": service,
        }
        assert overlay.get("Deployment", service)["metadata"]["name"] == service
