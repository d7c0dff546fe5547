"""The overlays' READMEs: their shell blocks run as written, and what they say of the cluster holds."""

from __future__ import annotations

import json
import re
import shlex

import pytest
from manifests import OVERLAYS, ROOT, Rendered, container
from test_manifests import flow, pod

SHELL_BLOCK = re.compile(r"^```(?:bash|sh)\n(.*?)^```", re.MULTILINE | re.DOTALL)
#: What the reader brings, not a README's own variable: the receivers' secrets (k8s/README.md).
GIVEN = {"SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "HEARTBEAT_URL"}


def readme(overlay: str) -> str:
    return (ROOT / "k8s" / "overlays" / overlay / "README.md").read_text()


def shell_blocks(overlay: str) -> list[str]:
    return SHELL_BLOCK.findall(readme(overlay))


def defined(block: str) -> set[str]:
    """The shell variables a block assigns (``NAME=``, ``for NAME in``)."""
    return set(re.findall(r"(?:^|[\s;(])([A-Za-z_]\w*)=", block, re.MULTILINE)) | set(
        re.findall(r"\bfor (\w+) in\b", block)
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_shell_block_defines_what_it_uses_beyond_the_prerequisites(overlay: str) -> None:
    """A section is run on its own (batch scoring without live evaluation): a variable only an earlier
    section sets would be empty there, as $PROJECT_NUMBER once made principal://…/projects//…."""
    prerequisites, *sections = shell_blocks(overlay)
    for block in sections:
        used = set(re.findall(r"\$\{?([A-Za-z_]\w*)", block))
        missing = used - defined(block) - defined(prerequisites) - GIVEN
        assert not missing, (
            f"{overlay} README: {sorted(missing)} used in a block that does not set them:\n{block}"
        )


def test_the_eks_prerequisites_switch_the_vpc_cni_network_policy_agent_on() -> None:
    """Without enableNetworkPolicy the VPC CNI accepts NetworkPolicies and enforces none."""
    [prerequisites, *_] = shell_blocks("eks")
    lines = prerequisites.replace("\\\n", " ").splitlines()
    [line] = [line for line in lines if line.startswith("aws eks update-addon")]
    words = shlex.split(line, comments=True)
    flags = dict(zip(words[3::2], words[4::2], strict=True))
    assert flags["--addon-name"] == "vpc-cni"
    assert json.loads(flags["--configuration-values"]) == {"enableNetworkPolicy": "true"}


def test_the_eks_readmes_network_policy_check_is_a_pod_the_policies_keep_from_mlflow(eks: Rendered) -> None:
    """The README's probe: a pod the namespace's Pod Security admits, that MLflow refuses wherever
    NetworkPolicies are enforced, while a model server, which the policies let through, gets an answer."""
    [block] = [b for b in shell_blocks("eks") if "netpol-check" in b]
    words = shlex.split(block.replace("\\\n", " "))
    assert words[:6] == ["kubectl", "-n", "ml-platform", "run", "netpol-check", "--rm"]
    [overrides] = [w.removeprefix("--overrides=") for w in words if w.startswith("--overrides=")]
    spec = json.loads(overrides)["spec"]
    [probe] = spec["containers"]
    assert probe["name"] == "netpol-check"  # kubectl run merges the container by the pod's name
    # Pod Security "restricted" (base/namespace.yaml) admits it.
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert probe["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    # It asks MLflow's Service, at its port, with a timeout: an enforced policy is a timeout.
    [url] = [a for a in probe["args"] if a.startswith("http://")]
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    mlflow = eks.get("Service", host)
    assert int(port) in [p["port"] for p in mlflow["spec"]["ports"]]
    assert "-m" in probe["args"]
    policies = eks.of_kind("NetworkPolicy")
    checker = {"labels": {"run": "netpol-check"}, "namespace": "ml-platform"}  # kubectl run's label
    assert not flow(policies, checker, pod(eks, "mlflow"), int(port))
    assert flow(policies, pod(eks, "bankchurn"), pod(eks, "mlflow"), int(port))


def test_the_eks_namespace_has_the_load_balancer_controllers_readiness_gates_for_its_ip_targets(
    rendered: dict[str, Rendered],
) -> None:
    """With IP targets the ALB sends to pods directly: the gate holds a new pod unready until its
    target is healthy, so a rollout cannot leave the target group with none (AWS Load Balancer
    Controller, *Pod readiness gate*). On GKE the label means nothing, and is not there."""
    label = "elbv2.k8s.aws/pod-readiness-gate-inject"
    eks, gke = rendered["eks"], rendered["gke"]
    [ingress] = eks.of_kind("Ingress")
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    [namespace] = eks.of_kind("Namespace")
    assert namespace["metadata"]["labels"][label] == "enabled"
    assert namespace["metadata"]["name"] == ingress["metadata"]["namespace"]
    [gke_namespace] = gke.of_kind("Namespace")
    assert label not in gke_namespace["metadata"]["labels"]
    # Otherwise the namespace is the base's, Pod Security included.
    assert {k: v for k, v in namespace["metadata"]["labels"].items() if k != label} == gke_namespace[
        "metadata"
    ]["labels"]
    # The pods' readiness is /readyz, the ALB's health check too: the gate waits on the same answer.
    path = container(eks.get("Deployment", "bankchurn"), "server")["readinessProbe"]["httpGet"]["path"]
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/healthcheck-path"] == path
