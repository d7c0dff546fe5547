"""The deploy identity's RBAC (k8s/deploy_role.py): enough for what rollout.sh does to each overlay,
with every component, and nothing more.

The roles are checked by an RBAC evaluator of this file's own (RBAC's rule matching and its
escalation check, as the API server applies them), not by the generator's code: the requests an
apply server-side makes of each object, those of each kubectl command rollout.sh runs, and what
RBAC asks of an identity that creates a role (to hold its rules) or binds one it does not define
(``bind`` on it).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from manifests import K8S_CHECK, OVERLAYS, ROOT, Obj, Rendered, render

from scripts import load_k8s_deploy_role

deploy_role = load_k8s_deploy_role()
ROLLOUT_SH = ROOT / ".github" / "scripts" / "rollout.sh"
NAMESPACE = "ml-platform"
RBAC = "rbac.authorization.k8s.io"
#: Each kind the overlays and components render, and the resource the API serves it as (the
#: Kubernetes API reference; GKE's custom resource definitions for its three kinds). A kind not
#: here fails test_each_kinds_resource_is_the_one_the_generator_names until it is added.
RESOURCES = {
    "APIService": "apiservices",
    "BackendConfig": "backendconfigs",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "ConfigMap": "configmaps",
    "CronJob": "cronjobs",
    "Deployment": "deployments",
    "FrontendConfig": "frontendconfigs",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "Ingress": "ingresses",
    "ManagedCertificate": "managedcertificates",
    "Namespace": "namespaces",
    "NetworkPolicy": "networkpolicies",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PodDisruptionBudget": "poddisruptionbudgets",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Service": "services",
    "ServiceAccount": "serviceaccounts",
    "StatefulSet": "statefulsets",
    "StorageClass": "storageclasses",
}


@dataclass(frozen=True)
class Request:
    """One request the deploy identity makes. ``name`` None: of any name (a list, a watch, a role's
    rule without resourceNames); ``namespace`` None: cluster-scoped, or in every namespace."""

    verb: str
    group: str
    resource: str
    name: str | None
    namespace: str | None

    def __str__(self) -> str:
        where = f" in {self.namespace}" if self.namespace else " cluster-wide"
        return (
            f"{self.verb} {self.group or 'core'}/{self.resource}"
            + (f"/{self.name}" if self.name else "")
            + where
        )


def matches(allowed: Sequence[str], value: str) -> bool:
    return "*" in allowed or value in allowed


def rule_allows(rule: Obj, request: Request) -> bool:
    """RBAC's RuleAllows: a rule with resourceNames allows only requests for one of those names."""
    names = rule.get("resourceNames", [])
    return (
        matches(rule["verbs"], request.verb)
        and matches(rule["apiGroups"], request.group)
        and matches(rule["resources"], request.resource)
        and (not names or (request.name is not None and request.name in names))
    )


@dataclass(frozen=True)
class Identity:
    """The deploy identity as the overlay READMEs bind it: the namespaced role by a RoleBinding in
    the namespace, the cluster one by a ClusterRoleBinding."""

    namespaced: tuple[Obj, ...]
    cluster: tuple[Obj, ...]

    def allows(self, request: Request) -> bool:
        rules = self.cluster + (self.namespaced if request.namespace == NAMESPACE else ())
        return any(rule_allows(rule, request) for rule in rules)


def identity(roles: Sequence[Obj]) -> Identity:
    by_name = {role["metadata"]["name"]: role for role in roles}
    assert set(by_name) == {"ml-platform-deploy", "ml-platform-deploy-cluster"}
    assert all(role["kind"] == "ClusterRole" for role in roles)
    return Identity(
        tuple(by_name["ml-platform-deploy"]["rules"]), tuple(by_name["ml-platform-deploy-cluster"]["rules"])
    )


def resource(kind: str) -> str:
    assert kind in RESOURCES, f"{kind}: add its resource to RESOURCES"
    return RESOURCES[kind]


def group(obj: Obj) -> str:
    return str(obj["apiVersion"]).rpartition("/")[0]


def held(rules: Iterable[Obj], namespace: str | None) -> Iterator[Request]:
    """What RBAC's escalation check asks of an identity creating a role with ``rules``: each."""
    for rule in rules:
        for verb in rule["verbs"]:
            for api_group in rule["apiGroups"]:
                for res in rule["resources"]:
                    for name in rule.get("resourceNames") or [None]:
                        yield Request(verb, api_group, res, name, namespace)


#: rollout.sh's kubectl commands (command_of) and what each asks of the cluster.
KUBECTL: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    ("kustomize", ""): (),  # renders locally
    # its own namespace's labels, by name (a cluster-scoped object: requests_of)
    ("get", "namespace"): (("get", "", "namespaces"),),
    ("apply", ""): (),  # each object's requests: requests_of
    ("get", "deployments"): (("list", "apps", "deployments"),),
    ("get", "replicasets"): (("list", "apps", "replicasets"),),
    ("get", "pods"): (("list", "", "pods"),),
    ("get", "events"): (("list", "", "events"),),
    # kubectl reads the Deployment, finds the ReplicaSet of the revision and patches the template back
    ("rollout", "undo"): (
        ("get", "apps", "deployments"),
        ("list", "apps", "replicasets"),
        ("patch", "apps", "deployments"),
    ),
    # a watch of the one Deployment (a field selector on its name: a list, then a watch)
    ("rollout", "status"): (
        ("get", "apps", "deployments"),
        ("list", "apps", "deployments"),
        ("watch", "apps", "deployments"),
    ),
}


def command_of(args: Sequence[str]) -> tuple[str, str]:
    """A kubectl command line's key in KUBECTL: its subcommand, and for ``get`` and ``rollout`` the
    word after it (``-n NAMESPACE`` before them left out)."""
    words = list(args[2:] if args[:1] == ["-n"] else args)
    return (words[0], words[1] if words[0] in ("get", "rollout") else "")


def unquoted(line: str) -> str:
    """A shell line without what its quotes enclose (``-n "$namespace"`` is ``-n ""``), so a command a
    message names is not one run (``check="check kubectl -n $namespace logs …"``); comments dropped."""
    kept, quote = [], ""
    for char in line:
        if quote:
            if char == quote:
                quote = ""
                kept.append(char)
        elif char in "'\"":
            quote = char
            kept.append(char)
        elif char == "#":
            break
        else:
            kept.append(char)
    return "".join(kept)


def rollout_commands() -> list[tuple[str, str]]:
    """Each ``kubectl`` rollout.sh runs (not those of its comments or of the messages it prints)."""
    found = []
    for line in ROLLOUT_SH.read_text().splitlines():
        for match in re.finditer(r"(?:^|[\s(|&;])kubectl ((?:\S+ +){0,3}\S+)", unquoted(line)):
            found.append(command_of(match[1].split()))
    return found


def requests_of(objects: Sequence[Obj]) -> Iterator[Request]:
    """Everything deploying ``objects`` with rollout.sh asks of the cluster."""
    defined = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue  # a cluster administrator's: rollout.sh leaves it out of the apply, reads it below
        namespace = obj["metadata"].get("namespace")
        # An apply server-side: kubectl reads the object, then patches it, which creates it if missing.
        for verb in ("get", "patch", "create"):
            yield Request(verb, group(obj), resource(obj["kind"]), obj["metadata"]["name"], namespace)
        if obj["kind"] in ("Role", "ClusterRole"):
            yield from held(obj.get("rules", []), namespace)
        if obj["kind"] in ("RoleBinding", "ClusterRoleBinding"):
            ref = obj["roleRef"]
            if (ref["kind"], ref["name"]) not in defined:
                yield Request("bind", RBAC, resource(ref["kind"]), ref["name"], namespace)
    for command in rollout_commands():
        for verb, api_group, res in KUBECTL[command]:
            if res == "namespaces":  # `kubectl get namespace "$namespace"`: the one, cluster-scoped
                yield Request(verb, api_group, res, NAMESPACE, None)
            else:
                yield Request(verb, api_group, res, None, NAMESPACE)


def atoms(rules: Iterable[Obj]) -> set[tuple[str, str, str, str | None]]:
    """A role's rules, one (verb, group, resource, name) each."""
    return {(r.verb, r.group, r.resource, r.name) for r in held(rules, None)}


def without(rules: Sequence[Obj], atom: tuple[str, str, str, str | None]) -> tuple[Obj, ...]:
    return tuple(
        {
            "verbs": [r.verb],
            "apiGroups": [r.group],
            "resources": [r.resource],
            **({"resourceNames": [r.name]} if r.name else {}),
        }
        for r in held(rules, None)
        if (r.verb, r.group, r.resource, r.name) != atom
    )


RENDERS = [(overlay, ()) for overlay in OVERLAYS] + [
    (overlay, components) for overlay in OVERLAYS for components in K8S_CHECK.component_sets()
]


@pytest.fixture(
    scope="module", params=RENDERS, ids=lambda p: f"{p[0]}+{len(p[1])}-components" if p[1] else p[0]
)
def deployed(request: pytest.FixtureRequest) -> tuple[Rendered, list[Obj]]:
    """An overlay (alone, and with every component) and the roles generated for it."""
    rendered = render(*request.param)
    return rendered, deploy_role.deploy_roles(rendered.objects)


def test_the_deploy_identity_may_do_all_rollout_sh_does(deployed: tuple[Rendered, list[Obj]]) -> None:
    rendered, roles = deployed
    who = identity(roles)
    refused = [str(r) for r in requests_of(rendered.objects) if not who.allows(r)]
    assert not refused, f"{rendered.overlay}: the deploy identity may not {refused}"


def test_each_rule_of_the_deploy_identity_is_needed(deployed: tuple[Rendered, list[Obj]]) -> None:
    """No grant is there for nothing: without any one (verb, resource, name), some request is refused."""
    rendered, roles = deployed
    who = identity(roles)
    requests = list(requests_of(rendered.objects))
    needless = []
    for scope in ("namespaced", "cluster"):
        rules = getattr(who, scope)
        for atom in sorted(atoms(rules), key=str):
            less = dataclasses.replace(who, **{scope: without(rules, atom)})
            if all(less.allows(r) for r in requests):
                needless.append((scope, atom))
    assert not needless, f"{rendered.overlay}: grants no request needs: {needless}"


def test_the_deploy_identity_can_neither_grant_itself_more_nor_delete_nor_read_secrets(
    deployed: tuple[Rendered, list[Obj]],
) -> None:
    _, roles = deployed
    for role in roles:
        for rule in role["rules"]:
            assert not {"*", "delete", "deletecollection", "escalate", "impersonate"} & set(rule["verbs"]), (
                rule
            )
            assert "*" not in rule["apiGroups"], rule
            assert "*" not in rule["resources"], rule
            assert "secrets" not in rule["resources"], rule
            if "bind" in rule["verbs"]:
                assert rule["verbs"] == ["bind"], "bind on roles by name alone"
                assert rule["resourceNames"], "bind on roles by name alone"
    # Cluster-wide, nothing is granted for any name that is not a role's own rule, read-only.
    for rule in identity(roles).cluster:
        assert rule.get("resourceNames") or set(rule["verbs"]) <= {"get", "list", "watch"}, rule


def test_the_deploy_identity_may_read_its_namespace_and_never_change_it(
    deployed: tuple[Rendered, list[Obj]],
) -> None:
    """Its pod-security labels keep the pods the identity deploys unprivileged: one that could patch
    them to privileged could then run a privileged or hostPath pod through a Deployment it patches,
    and take the node. A cluster administrator creates it; the deploy reads it."""
    _, roles = deployed
    who = identity(roles)
    assert who.allows(Request("get", "", "namespaces", NAMESPACE, None))
    for verb in ("create", "update", "patch", "delete", "deletecollection", "list", "watch"):
        for name in (NAMESPACE, None):
            assert not who.allows(Request(verb, "", "namespaces", name, None)), (verb, name)
    for role in roles:
        for rule in role["rules"]:
            if "namespaces" in rule["resources"] or "*" in rule["resources"]:
                assert (rule["verbs"], rule.get("resourceNames")) == (["get"], [NAMESPACE]), rule


def test_rollout_sh_applies_no_namespace_and_reads_its_own() -> None:
    """The Namespace is left out of the apply (an apply server-side would patch it, unchanged or
    not, which the identity may not) and its labels read instead: tests/delivery/test_rollout.py
    runs both."""
    assert ("get", "namespace") in rollout_commands()
    text = ROLLOUT_SH.read_text()
    assert "kubectl apply --server-side -f k8s/base/namespace.yaml" in text


def test_an_undefined_role_a_binding_grants_makes_the_identity_need_bind_on_it() -> None:
    """The evaluator can refuse: a ClusterRoleBinding to cluster-admin needs ``bind`` on cluster-admin,
    which the roles generated without it lack and those generated with it have (by that name alone)."""
    rendered = render("gke")
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "too-much"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "grafana", "namespace": NAMESPACE}],
    }
    needs = Request("bind", RBAC, "clusterroles", "cluster-admin", None)
    assert needs in set(requests_of([*rendered.objects, binding]))
    assert not identity(deploy_role.deploy_roles(rendered.objects)).allows(needs)
    generated = identity(deploy_role.deploy_roles([*rendered.objects, binding]))
    assert generated.allows(needs)
    assert not generated.allows(Request("bind", RBAC, "clusterroles", "admin", None))


def test_rollout_sh_runs_no_kubectl_command_this_file_does_not_know() -> None:
    """A new kubectl command in rollout.sh fails here until KUBECTL says what it asks, and the
    generator's ROLLOUT grants it."""
    commands = rollout_commands()
    assert {c[0] for c in commands} >= {"apply", "rollout", "get"}
    assert [c for c in commands if c not in KUBECTL] == []


def test_each_kinds_resource_is_the_one_the_generator_names(deployed: tuple[Rendered, list[Obj]]) -> None:
    rendered, _ = deployed
    for kind in sorted({o["kind"] for o in rendered.objects}):
        assert deploy_role.resource_of(kind) == resource(kind), kind


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlays_deploy_role_is_generated_from_it(overlay: str, rendered: dict[str, Rendered]) -> None:
    """kube-prometheus' rule: the committed file is what the generator makes of the overlay now."""
    committed = (ROOT / "k8s" / "overlays" / overlay / "deploy-role.yaml").read_text()
    assert committed == deploy_role.text_of(rendered[overlay].objects), (
        f"k8s/overlays/{overlay}/deploy-role.yaml is stale: run make deploy-roles"
    )
    docs: list[Any] = [d for d in yaml.safe_load_all(committed) if d]
    assert [d["metadata"]["name"] for d in docs] == ["ml-platform-deploy", "ml-platform-deploy-cluster"]
