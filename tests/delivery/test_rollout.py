""".github/scripts/rollout.sh, as the Deploy workflows run it, against a stand-in of the cluster.

No cluster runs here. ``kubectl`` is a stub on PATH that records its arguments, renders with the
real ``kubectl kustomize``, refuses a client-side apply of an object the API server would refuse
(its last-applied-configuration annotation past 256 KiB), reports every rollout finished but
those of FAILED_ROLLOUTS, and answers a ``get`` of ReplicaSets, Pods or Events from the objects a
test gives it, and of Deployments from a record of their generations that its applies bump, as
the API server does, through the real kubectl's JSONPath. The ingress is not a stub: the three services run
their rendered GKE Deployment's command and environment (an API keys file where the pod mounts its
Secret) against a real MLflow server, behind a proxy that routes exactly the rendered Ingress's
Prefix paths to them and answers 404 to anything else, as the load balancer's default backend does.
So /readyz is not reached from outside, and a prediction needs a key.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
import yaml

from processes import BIN, ROOT, Server, free_port
from servekit import http_client
from servekit.auth.key_lines import key_line, new_key
from servekit.local import start
from servekit.testing import StubHandler
from servekit.training.trainer import TrainResult

sys.path.insert(0, str(ROOT / "tests" / "k8s"))
from manifests import SERVICES, Rendered, configmap_env, container, render
from test_deploy_role import KUBECTL, command_of

pytestmark = pytest.mark.integration

ROLLOUT = ROOT / ".github" / "scripts" / "rollout.sh"
REGISTRY = "europe-west1-docker.pkg.dev/acme-prod/ml-platform"
TAG = "3f9c2d1e5b7a4c6d8e0f1a2b3c4d5e6f7a8b9c0d"
#: The Deployments a deploy rolls out: each runs an image CI builds, at the commit's tag.
RELEASE = (*SERVICES, "mlflow")
#: What the API server allows an object's annotations together (a client-side apply copies the
#: whole object into one of them).
ANNOTATIONS_LIMIT = 256 * 1024


def ingress_backends(rendered: Rendered) -> dict[str, str]:
    """The rendered Ingress's Prefix paths and the Service each goes to."""
    [ingress] = rendered.of_kind("Ingress")
    [rule] = ingress["spec"]["rules"]
    paths = rule["http"]["paths"]
    assert {p["pathType"] for p in paths} == {"Prefix"}
    return {p["path"]: p["backend"]["service"]["name"] for p in paths}


class Ingress(ThreadingHTTPServer):
    """The rendered Ingress in front of the services: its Prefix paths (element-wise, unrewritten)
    to their backend, anything else to the default backend's 404."""

    def __init__(
        self,
        port: int,
        routes: dict[str, str],
        backends: dict[str, str],
        dropped: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__(("127.0.0.1", port), IngressHandler)
        self.routes, self.backends = routes, backends
        #: Paths whose requests are read, then the connection closed without an answer.
        self.dropped = dropped


class IngressHandler(StubHandler):
    server: Ingress

    def route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in self.server.dropped:
            self.body()
            self.close_connection = True
            return
        backend = next(
            (
                svc
                for prefix, svc in self.server.routes.items()
                if path == prefix or path.startswith(prefix + "/")
            ),
            None,
        )
        if backend is None:
            body, status, kind = b"default backend - 404", 404, "text/plain"
        else:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
            answer = http_client.request(
                self.command,
                self.server.backends[backend] + self.path,
                headers=headers,
                content=self.body() or None,
                timeout=30,
            )
            body, status = answer.content, answer.status_code
            kind = answer.headers.get("content-type", "application/octet-stream")
        self.answer(status, body, kind)

    do_GET = do_POST = route  # noqa: N815 (http.server's names)


@dataclass
class Cluster:
    base_url: str
    #: Each service's smoke key, which its keys file holds.
    keys: dict[str, str]
    #: The rendered Ingress's paths, and each backend's URL (for another Ingress in front of them).
    routes: dict[str, str]
    backends: dict[str, str]


@pytest.fixture(scope="module")
def cluster(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    logs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cluster]:
    """The services as the rendered GKE Deployments run them, behind the rendered GKE Ingress."""
    assert registered
    gke = render("gke")
    keys_dir = tmp_path_factory.mktemp("api-keys")
    servers: dict[str, Server] = {}
    keys: dict[str, str] = {}
    try:
        for service in SERVICES:
            deployment = gke.get("Deployment", service)
            command = list(container(deployment)["command"])
            port = free_port()
            command[command.index("--port") + 1] = str(port)
            env = configmap_env(gke, deployment)
            keys[service] = new_key()
            keys_file = keys_dir / service
            keys_file.write_text(key_line("deploy-smoke", keys[service]) + "\n")
            env[f"{service.upper()}_API_KEYS_FILE"] = str(keys_file)
            env["MLFLOW_TRACKING_URI"] = mlflow_server.url
            env[f"{service.upper()}_GRPC_PORT"] = "0"  # no ingress routes gRPC: one port fewer to take
            env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
            servers[service] = start(f"rollout-{service}", command, port, logs_dir, env)
        for server in servers.values():
            server.wait_for("/readyz", seconds=180)
        routes, backends = ingress_backends(gke), {s: servers[s].url for s in SERVICES}
        with serving_ingress(routes, backends) as base_url:
            yield Cluster(base_url, keys, routes, backends)
    finally:
        for server in servers.values():
            server.stop()


@contextmanager
def serving_ingress(
    routes: dict[str, str], backends: dict[str, str], dropped: frozenset[str] = frozenset()
) -> Iterator[str]:
    ingress = Ingress(free_port(), routes, backends, dropped)
    threading.Thread(target=ingress.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{ingress.server_address[1]}"
    finally:
        ingress.shutdown()
        ingress.server_close()


#: A registry client (skopeo, aws, gcloud) that records its arguments, in the file kubectl records
#: its own, and finds no image of the services named in MISSING_SERVICES.
IMAGE_CHECK_STUB = """#!{python}
import json, os, sys
args = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
with open(os.environ["KUBECTL_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
missing = [svc for svc in os.environ.get("MISSING_SERVICES", "").split() if any(svc in a for a in args)]
if missing:
    sys.exit(f"{{args[0]}}: manifest unknown: {{missing[0]}}")
print("{{}}")
"""

STUB = """#!{python}
# kubectl: records its arguments; renders with the real kubectl; refuses a client-side apply of an
# object whose last-applied-configuration would pass the API server's limit on annotations; a
# rollout of a Deployment named in FAILED_ROLLOUTS does not finish; a server-side dry run of the
# apply is refused, as RBAC refuses it, if KUBECTL_APPLY_REFUSED is set, and the first
# KUBECTL_APPLY_FAILS applies fail, having applied the Deployments KUBECTL_APPLY_FAILS_HAVING_APPLIED
# names; `get KIND -o jsonpath=` lists the objects of that kind in KUBECTL_OBJECTS (a JSON map of
# kind to objects), or for deployments those of KUBECTL_DEPLOYMENTS (below), each through the real
# kubectl's JSONPath, or fails as with expired credentials for the kinds KUBECTL_GET_FAILS names,
# and for every kind once an apply ran if KUBECTL_GET_FAILS_AFTER_APPLY is set.
# KUBECTL_DEPLOYMENTS, a JSON map of each Deployment's name to its generation, revision and whether
# an apply changes it (its template at a new tag): an apply that changes one bumps its generation,
# as the API server does, and one not there yet is created at generation 1, without a revision.
# `get namespace ml-platform` answers with the labels of KUBECTL_NAMESPACE_LABELS (JSON; null: no
# such namespace), through the real kubectl's JSONPath, or fails if KUBECTL_GET_FAILS names it.
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["KUBECTL_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
if args[:1] == ["kustomize"]:
    os.execv({kubectl!r}, [{kubectl!r}, *args])
if args[:2] == ["get", "namespace"]:
    if "namespace" in os.environ.get("KUBECTL_GET_FAILS", "").split():
        sys.exit("error: You must be logged in to the server (Unauthorized)")
    name, template = args[2], args[-1].removeprefix("jsonpath=")
    assert args[2:-1] == ["ml-platform", "--ignore-not-found", "-o"], args
    labels = json.loads(os.environ["KUBECTL_NAMESPACE_LABELS"])
    if labels is not None:
        metadata = {{"name": name, "labels": labels}}
        namespace = {{"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}}
        listed = subprocess.run(
            [{kubectl!r}, "annotate", "--local", "-f", "-", "stub=local", "-o", "jsonpath=" + template],
            input=json.dumps(namespace), capture_output=True, text=True, check=True,
        )
        sys.stdout.write(listed.stdout)
    sys.exit(0)


def apply_deployments(names):
    with open(os.environ["KUBECTL_DEPLOYMENTS"]) as f:
        deployments = json.load(f)
    for name in names:
        held = deployments.setdefault(name, {{"generation": 0, "revision": None, "changes": True}})
        if held["changes"]:
            held["generation"] += 1
            held["changes"] = False  # applied again, the same manifest changes nothing
    with open(os.environ["KUBECTL_DEPLOYMENTS"], "w") as f:
        json.dump(deployments, f)


REVISION = "deployment.kubernetes.io/revision"
if args[2:3] == ["get"]:
    kind, template = args[3], args[-1].removeprefix("jsonpath=")
    with open(os.environ["KUBECTL_CALLS"]) as calls:
        applied = any(c[:1] == ["apply"] and "--dry-run=server" not in c for c in map(json.loads, calls))
    if kind in os.environ.get("KUBECTL_GET_FAILS", "").split() or (
        applied and os.environ.get("KUBECTL_GET_FAILS_AFTER_APPLY")
    ):
        sys.exit("error: You must be logged in to the server (Unauthorized)")
    # What this stand-in understands, and nothing else (a label selector, another output).
    assert args == ["-n", "ml-platform", "get", kind, "-o", "jsonpath=" + template], args
    prefix, suffix = "{{range .items[*]}}", "{{end}}"
    assert template.startswith(prefix) and template.endswith(suffix), template
    objects = {{}}
    if os.environ.get("KUBECTL_OBJECTS"):
        with open(os.environ["KUBECTL_OBJECTS"]) as f:
            objects = json.load(f)
    with open(os.environ["KUBECTL_DEPLOYMENTS"]) as f:
        objects["deployments"] = [
            {{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {{
                    "name": name,
                    "generation": held["generation"],
                    "annotations": {{REVISION: held["revision"]}} if held["revision"] else {{}},
                }},
            }}
            for name, held in json.load(f).items()
        ]
    if objects.get(kind):
        # Evaluated offline, by one kubectl for all of them: handed a List, `label --local` prints
        # the range's body for each item in turn, which is what the range does to them.
        listed = subprocess.run(
            [{kubectl!r}, "label", "--local", "-f", "-", "stub=local", "-o",
             "jsonpath=" + template[len(prefix):-len(suffix)]],
            input=json.dumps({{"apiVersion": "v1", "kind": "List", "items": objects[kind]}}),
            capture_output=True, text=True, check=True,
        )
        sys.stdout.write(listed.stdout)
    sys.exit(0)
failed = ["deployment/" + name for name in os.environ.get("FAILED_ROLLOUTS", "").split()]
if args[2:4] == ["rollout", "status"] and args[4] in failed:
    sys.exit(f'error: deployment "{{args[4]}}" exceeded its progress deadline')
if args[:1] == ["apply"] and "--dry-run=server" in args:
    if os.environ.get("KUBECTL_APPLY_REFUSED"):
        sys.exit('Error from server (Forbidden): apiservices.apiregistration.k8s.io '
                 '"v1beta1.custom.metrics.k8s.io" is forbidden: User "deploy" cannot patch resource '
                 '"apiservices" in API group "apiregistration.k8s.io" at the cluster scope')
    sys.exit(0)
if args[:1] == ["apply"] and os.environ.get("KUBECTL_APPLY_FAILS"):
    # The first KUBECTL_APPLY_FAILS applies fail, as on an API server's bad moment.
    tries = os.environ["KUBECTL_CALLS"] + ".applies"
    failed = len(open(tries).read()) if os.path.exists(tries) else 0
    if failed < int(os.environ["KUBECTL_APPLY_FAILS"]):
        open(tries, "a").write("x")
        apply_deployments(os.environ.get("KUBECTL_APPLY_FAILS_HAVING_APPLIED", "").split())
        sys.exit("Error from server (InternalError): etcdserver: leader changed")
if args[:1] == ["apply"]:
    import yaml
    path = args[args.index("-f") + 1]
    with open(path) as f, open(os.environ["KUBECTL_APPLIED"], "w") as applied:
        text = f.read()
        applied.write(text)
    objects = [obj for obj in yaml.safe_load_all(text) if obj]
    if "--server-side" not in args:
        for obj in objects:
            if len(json.dumps(obj, separators=(",", ":"))) > {limit}:
                name = obj["metadata"]["name"]
                sys.exit(f'The {{obj["kind"]}} "{{name}}" is invalid: metadata.annotations: Too long: '
                         'must have at most {limit} bytes')
    apply_deployments(obj["metadata"]["name"] for obj in objects if obj["kind"] == "Deployment")
"""


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    calls: list[list[str]]
    applied: str
    values: dict[str, str]

    @property
    def undone(self) -> list[str]:
        return list(self.undone_to)

    @property
    def undone_to(self) -> dict[str, str]:
        """Each Deployment undone, and the revision it was taken back to."""
        undone = {}
        for call in self.calls:
            if call[2:4] == ["rollout", "undo"]:
                deployment, to_revision = call[4:]
                undone[deployment] = to_revision.removeprefix("--to-revision=")
        return undone

    @property
    def kubectl_calls(self) -> list[list[str]]:
        """kubectl's arguments, each call's (the registry clients record their name first)."""
        return [c for c in self.calls if c[0] not in {"skopeo", "aws", "gcloud"}]

    @property
    def image_checks(self) -> list[list[str]]:
        """The registry client's calls (skopeo, aws or gcloud)."""
        return [c for c in self.calls if c[0] in {"skopeo", "aws", "gcloud"}]

    @property
    def waited(self) -> list[str]:
        """The Deployments waited for after the apply, up to the first that failed (the rollback's
        waits after its undo left out)."""
        waited = []
        for call in self.calls:
            if call[2:4] == ["rollout", "undo"]:
                break
            if call[2:4] == ["rollout", "status"]:
                waited.append(call[4])
        return waited


#: What a test sets when it needs it, never inherited from the environment pytest runs in.
SET_BY_TESTS = {
    *("IMAGE_CHECK", "MISSING_SERVICES", "FAILED_ROLLOUTS"),
    *("KUBECTL_OBJECTS", "KUBECTL_GET_FAILS", "KUBECTL_APPLY_REFUSED", "KUBECTL_APPLY_FAILS"),
    *("KUBECTL_APPLY_FAILS_HAVING_APPLIED", "KUBECTL_GET_FAILS_AFTER_APPLY"),
    *("MLFLOW_ROLLOUT_TIMEOUT", "APPLY_RETRY_SECONDS", "KUBECTL_NAMESPACE_LABELS"),
}
#: The namespace as a cluster administrator applied it (k8s/base/namespace.yaml), and the label the
#: API server adds to every namespace.
NAMESPACE_LABELS = {
    "kubernetes.io/metadata.name": "ml-platform",
    **yaml.safe_load((ROOT / "k8s" / "base" / "namespace.yaml").read_text())["metadata"]["labels"],
}
#: The one line a deploy to a namespace that is missing or not labelled so ends with.
ADMIN_STEP = (
    "a cluster administrator creates or fixes it with kubectl apply --server-side -f "
    'k8s/base/namespace.yaml (the overlay README\'s "Configure and deploy"); the deploy identity may '
    "not change it, and nothing was applied"
)
#: How rollout.sh reads its namespace's labels.
GET_NAMESPACE = ["get", "namespace", "ml-platform", "--ignore-not-found", "-o", "jsonpath={.metadata.labels}"]
#: The revision of each Deployment before the deploy, in the stand-in cluster: that of the last.
REVISION_BEFORE = "5"


def cluster_deployments(unchanged: Sequence[str] = (), new: Sequence[str] = ()) -> dict[str, Any]:
    """The stand-in cluster's Deployments before the deploy (the stub's KUBECTL_DEPLOYMENTS): each the
    overlay renders, at generation 7 and REVISION_BEFORE, which the apply changes (a new tag) but
    those ``unchanged`` (already at it: a deploy again); those ``new`` are not there yet."""
    return {
        name: {"generation": 7, "revision": REVISION_BEFORE, "changes": name not in unchanged}
        for name in rendered_deployments()
        if name not in new
    }


@functools.cache
def rendered_deployments() -> tuple[str, ...]:
    """The Deployments the GKE overlay renders (parsed once: every deploy of these tests asks)."""
    return tuple(d["metadata"]["name"] for d in render("gke").of_kind("Deployment"))


def rollout(
    tmp_path: Path,
    base_url: str,
    keys: dict[str, str],
    registry: str = REGISTRY,
    deployments: dict[str, Any] | None = None,
    **env_vars: str,
) -> Run:
    """rollout.sh on a copy of the repository's manifests (it edits the overlay's values.yaml), as
    deploy-gke.yml runs it, the smoke keys from the environment as the workflow maps its secrets.
    The images are looked up with a stub of skopeo (IMAGE_CHECK unset: its default), aws or gcloud."""
    tree = tmp_path / "repo"
    for part in ("k8s", "mlflow", "monitoring"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    kubectl = stubs / "kubectl"
    kubectl.write_text(
        STUB.format(python=sys.executable, kubectl=str(BIN / "kubectl"), limit=ANNOTATIONS_LIMIT)
    )
    kubectl.chmod(0o755)
    for tool in ("skopeo", "aws", "gcloud"):
        (stubs / tool).write_text(IMAGE_CHECK_STUB.format(python=sys.executable))
        (stubs / tool).chmod(0o755)
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith("SMOKE_API_KEY_") and k not in SET_BY_TESTS
        },
        "PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}",
        "KUBECTL_CALLS": str(tmp_path / "calls"),
        "KUBECTL_APPLIED": str(tmp_path / "applied.yaml"),
        "KUBECTL_DEPLOYMENTS": str(tmp_path / "deployments.json"),
        "ROLLOUT_TIMEOUT": "300s",
        "KUBECTL_NAMESPACE_LABELS": json.dumps(NAMESPACE_LABELS),
        **{f"SMOKE_API_KEY_{service.upper()}": key for service, key in keys.items()},
        **env_vars,
    }
    (tmp_path / "deployments.json").write_text(json.dumps(deployments or cluster_deployments()))
    overlay = tree / "k8s" / "overlays" / "gke"
    result = subprocess.run(
        ["bash", str(ROLLOUT), str(overlay), registry, TAG, base_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    calls_file, applied = tmp_path / "calls", tmp_path / "applied.yaml"
    calls = [json.loads(line) for line in calls_file.read_text().splitlines()] if calls_file.exists() else []
    values = yaml.safe_load((overlay / "values.yaml").read_text())["data"]
    run = Run(result, calls, applied.read_text() if applied.exists() else "", values)
    # What the deploy identity's roles are checked to allow (tests/k8s/test_deploy_role.py), and no
    # other kubectl command: a new one would be refused in the cluster.
    unknown = [c for c in run.kubectl_calls if command_of(c) not in KUBECTL]
    assert not unknown, f"rollout.sh ran kubectl commands the deploy identity's roles do not cover: {unknown}"
    return run


def test_the_stand_in_ingress_routes_the_api_alone_and_asks_for_a_key(cluster: Cluster) -> None:
    """What the probe of the real load balancers saw, so the runs below meet what a deploy meets."""
    readyz = http_client.get(f"{cluster.base_url}/bankchurn/readyz", timeout=10)
    assert readyz.status_code == 404, "the Ingress does not publish /readyz (k8s/README)"
    docs = http_client.get(f"{cluster.base_url}/bankchurn/openapi.json", timeout=10)
    assert docs.status_code == 200
    refused = http_client.post(f"{cluster.base_url}/bankchurn/predict", json={}, timeout=10)
    assert refused.status_code == 401


def test_a_deploy_applies_server_side_waits_for_the_pods_and_predicts_through_the_ingress(
    cluster: Cluster, tmp_path: Path
) -> None:
    run = rollout(tmp_path, cluster.base_url, cluster.keys)
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    assert run.result.stdout.splitlines() == [f"{s}: ready and predicting at {TAG}" for s in SERVICES]
    # The namespace's labels read after the render; each image of the release (the services' and
    # MLflow's) looked up in the registry, once, after them and before anything was applied.
    dry_run_index, apply_index = [i for i, c in enumerate(run.calls) if c[0] == "apply"]
    assert run.calls[0][0] == "kustomize"
    assert run.calls[1] == GET_NAMESPACE
    assert sorted(run.calls[2:dry_run_index]) == sorted(
        ["skopeo", "inspect", "--raw", f"docker://{REGISTRY}/{name}:{TAG}"] for name in RELEASE
    )
    # The images at the tag, through values.yaml (its replacements), in what was applied.
    assert (run.values["imageRegistry"], run.values["imageTag"]) == (REGISTRY, TAG)
    applied = [o for o in yaml.safe_load_all(run.applied) if o]
    # Everything the overlay renders but the Namespace, which is a cluster administrator's.
    rendered = render("gke").objects
    assert len(applied) == len(rendered) - 1
    assert "Namespace" not in {o["kind"] for o in applied}
    images = {
        (o["metadata"]["name"], c["name"]): c["image"]
        for o in applied
        if o["kind"] == "Deployment" and o["metadata"]["name"] in RELEASE
        for c in o["spec"]["template"]["spec"].get("initContainers", [])
        + o["spec"]["template"]["spec"]["containers"]
    }
    assert set(images.values()) == {f"{REGISTRY}/{name}:{TAG}" for name in RELEASE}
    assert images["mlflow", "db-upgrade"] == images["mlflow", "mlflow"]
    # Applied server-side: the dashboards ConfigMap alone is past what a client-side apply can copy.
    assert max(len(json.dumps(o, separators=(",", ":"))) for o in applied) > ANNOTATIONS_LIMIT
    dry_run, apply = [c for c in run.calls if c[0] == "apply"]
    assert {"--server-side", "--field-manager=kubectl", "--force-conflicts"} <= set(apply)
    # The same apply as a server-side dry run first: the cluster's verdict on all of it. Between the
    # two, the Deployments' generations and revisions, which a rollback would take them back to.
    assert dry_run == [*apply[:-2], "--dry-run=server", *apply[-2:]]
    assert apply_index == dry_run_index + 2
    assert run.calls[dry_run_index + 1][2:4] == ["get", "deployments"]
    # Readiness is the rollouts' (the pods' /readyz, MLflow's /health), waited on for each before
    # the smoke test; MLflow's first, which the model servers load from, for longer than
    # ROLLOUT_TIMEOUT: its startupProbe alone allows 300 s.
    waited = [c for c in run.calls if c[:3] == ["-n", "ml-platform", "rollout"]]
    timeouts = {"deployment/mlflow": MLFLOW_WAIT}
    assert waited == [
        ["-n", "ml-platform", "rollout", "status", d, f"--timeout={timeouts.get(d, '300s')}"]
        for d in run.waited
    ]
    assert run.waited[0] == "deployment/mlflow"
    assert sorted(run.waited) == sorted(f"deployment/{name}" for name in RELEASE)
    assert not run.undone


def test_an_apply_the_cluster_refuses_stops_the_deploy_before_anything_is_applied(tmp_path: Path) -> None:
    """A component added to the overlay without the deploy identity's roles made again: the apply
    was refused part-way, after some Deployments had taken the new tag, and nothing was waited for
    or undone. The dry run's refusal stops it with nothing applied, and says what to do."""
    keys = dict.fromkeys(SERVICES, "key")
    run = rollout(tmp_path, "http://127.0.0.1:9", keys, KUBECTL_APPLY_REFUSED="1")
    assert run.result.returncode == 1
    assert [c for c in run.calls if c[0] == "apply"] == [
        [
            "apply",
            "--server-side",
            "--field-manager=kubectl",
            "--force-conflicts",
            "--dry-run=server",
            "-f",
            ANY,
        ]
    ]
    assert run.applied == ""
    assert not [c for c in run.calls if "rollout" in c]
    assert "is forbidden: User" in run.result.stderr  # kubectl's own error
    [error] = [line for line in run.result.stdout.splitlines() if line.startswith("::error::")]
    assert "nothing was applied" in error
    assert "make deploy-roles" in error


def test_an_apply_that_fails_after_its_dry_run_is_tried_again_and_the_deploy_goes_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    """One failure of the API server (a leader election) cost the whole deploy, stopped part-way."""
    run = rollout(tmp_path, cluster.base_url, cluster.keys, KUBECTL_APPLY_FAILS="2", APPLY_RETRY_SECONDS="0")
    assert run.result.returncode == 0, run.result.stdout + run.result.stderr
    applies = [c for c in run.calls if c[0] == "apply" and "--dry-run=server" not in c]
    assert len(applies) == 3
    assert applies[0] == applies[1] == applies[2]
    retried = [
        line for line in run.result.stdout.splitlines() if line.startswith("::warning::the apply failed")
    ]
    assert retried == [
        "::warning::the apply failed (kubectl's error above); trying again in 0 s",
        "::warning::the apply failed (kubectl's error above); trying again in 0 s",
    ]
    assert run.result.stdout.splitlines()[2:] == [f"{s}: ready and predicting at {TAG}" for s in SERVICES]
    assert not run.undone


@pytest.mark.parametrize(
    "having_applied",
    [
        pytest.param((), id="nothing applied"),
        pytest.param(("bankchurn",), id="one service applied"),
        pytest.param(("mlflow", "bankchurn", "nlpinsight"), id="mlflow and two services applied"),
    ],
)
def test_an_apply_that_keeps_failing_undoes_the_deployments_it_changed_and_no_other(
    tmp_path: Path, having_applied: tuple[str, ...]
) -> None:
    """Three failed applies stopped the deploy with whatever they had applied at the new tag, nothing
    waited for or undone. Now the Deployments they changed go back to their revision before, as
    after a failed rollout, and those they did not reach are left alone: a bare `rollout undo` of
    one would have taken it back to the deploy before."""
    run = rollout(
        tmp_path,
        "http://127.0.0.1:9",
        dict.fromkeys(SERVICES, "key"),
        KUBECTL_APPLY_FAILS="3",
        KUBECTL_APPLY_FAILS_HAVING_APPLIED=" ".join(having_applied),
        APPLY_RETRY_SECONDS="0",
    )
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert len([c for c in run.calls if c[0] == "apply" and "--dry-run=server" not in c]) == 3
    assert "leader changed" in run.result.stderr  # kubectl's own error, each time
    assert not run.waited
    [error] = [line for line in out.splitlines() if line.startswith("::error::")]
    assert error.startswith("::error::the apply failed three times after its dry run passed")
    assert error.endswith("; rolling back")
    # MLflow's db-upgrade never started (the cluster shows no pod of it): undone with the services.
    assert run.undone_to == {f"deployment/{name}": REVISION_BEFORE for name in having_applied}
    unchanged = [f"deployment/{name}: unchanged by this deploy, left as it is" for name in RELEASE]
    assert sorted(line for line in out.splitlines() if "unchanged" in line) == sorted(
        line for line in unchanged if line.split(":")[0].removeprefix("deployment/") not in having_applied
    )
    assert not [line for line in out.splitlines() if line.startswith("::warning::deployment/")]
    waited_after = [c[4] for c in run.calls if c[2:4] == ["rollout", "status"]]
    assert waited_after == list(run.undone)


def test_a_deploy_again_of_the_tag_in_place_that_fails_undoes_nothing(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The workflow run again for the commit deployed (a key rotated, a flaky smoke test): the apply
    changed nothing, and a failed smoke test took every service back to the deploy before."""
    keys = {**cluster.keys, "chicagotaxi": cluster.keys["bankchurn"]}
    run = rollout(tmp_path, cluster.base_url, keys, deployments=cluster_deployments(unchanged=RELEASE))
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert "refused SMOKE_API_KEY_CHICAGOTAXI" in out
    assert not run.undone
    assert sorted(line for line in out.splitlines() if "unchanged" in line) == sorted(
        f"deployment/{name}: unchanged by this deploy, left as it is" for name in RELEASE
    )
    assert "::warning::" not in out  # MLflow rolled out, but this deploy did not change it


def test_a_service_new_in_a_failed_deploy_stays_saying_so(cluster: Cluster, tmp_path: Path) -> None:
    """No revision to go back to: `rollout undo` fails, and the deploy's identity may not delete it."""
    keys = {**cluster.keys, "chicagotaxi": cluster.keys["bankchurn"]}
    run = rollout(tmp_path, cluster.base_url, keys, deployments=cluster_deployments(new=["chicagotaxi"]))
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert run.undone_to == {f"deployment/{s}": REVISION_BEFORE for s in ("bankchurn", "nlpinsight")}
    [new] = [line for line in out.splitlines() if "is new in this deploy" in line]
    assert new.startswith(
        "::warning::deployment/chicagotaxi is new in this deploy: there is no earlier revision to take "
        f"it back to, and it stays at {TAG} (kubectl -n ml-platform delete deployment/chicagotaxi"
    )


def test_a_cluster_that_does_not_list_its_deployments_gets_nothing_applied(tmp_path: Path) -> None:
    """Without each Deployment's revision before, a rollback could not tell where to take it back to."""
    run = rollout(
        tmp_path, "http://127.0.0.1:9", dict.fromkeys(SERVICES, "key"), KUBECTL_GET_FAILS="deployments"
    )
    assert run.result.returncode == 1
    [dry_run] = [c for c in run.calls if c[0] == "apply"]
    assert "--dry-run=server" in dry_run
    assert "Unauthorized" in run.result.stderr
    [error] = [line for line in run.result.stdout.splitlines() if line.startswith("::error::")]
    assert error.startswith("::error::the cluster did not list its Deployments")
    assert error.endswith("nothing was applied")


def test_a_rollback_the_cluster_does_not_tell_what_changed_takes_each_back_to_its_revision(
    tmp_path: Path,
) -> None:
    """kubectl failing after the apply: each of the release goes back to its revision before, which is
    a no-op for one the apply left as it was, and never past the deploy before."""
    run = rollout(
        tmp_path,
        "http://127.0.0.1:9",
        dict.fromkeys(SERVICES, "key"),
        KUBECTL_APPLY_FAILS="3",
        KUBECTL_APPLY_FAILS_HAVING_APPLIED="bankchurn",
        APPLY_RETRY_SECONDS="0",
        KUBECTL_GET_FAILS_AFTER_APPLY="1",
    )
    assert run.result.returncode == 1
    assert run.undone_to == {f"deployment/{s}": REVISION_BEFORE for s in SERVICES}
    out = run.result.stdout
    assert "::warning::the cluster did not say which Deployments this deploy changed" in out


def test_without_a_smoke_key_nothing_is_applied_and_nothing_rolled_back(
    cluster: Cluster, tmp_path: Path
) -> None:
    keys = {s: k for s, k in cluster.keys.items() if s != "nlpinsight"}
    run = rollout(tmp_path, cluster.base_url, keys)
    assert run.result.returncode == 1
    assert "::error::no smoke API key in SMOKE_API_KEY_NLPINSIGHT: set each as a secret" in run.result.stdout
    assert "nothing was applied" in run.result.stdout
    assert run.calls == []
    assert run.values["imageTag"] != TAG


def test_a_refused_smoke_key_rolls_every_service_back_saying_which_key(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A key of one service opens no other: the release is not shown to answer, so it goes back."""
    keys = {**cluster.keys, "chicagotaxi": cluster.keys["bankchurn"]}
    run = rollout(tmp_path, cluster.base_url, keys)
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert "bankchurn: ready and predicting" in out, out + run.result.stderr
    assert "nlpinsight: ready and predicting" in out, out + run.result.stderr
    refused = (
        f"::error::chicagotaxi: POST {cluster.base_url}/chicagotaxi/predict refused SMOKE_API_KEY_CHICAGOTAXI"
    )
    assert f"{refused} (401" in out
    assert "not a line of the chicagotaxi-api-keys Secret?; rolling back" in out
    assert run.undone_to == {f"deployment/{s}": REVISION_BEFORE for s in SERVICES}
    assert f"::warning::deployment/mlflow stays at {TAG}: it rolled out" in out


def test_a_smoke_prediction_without_an_answer_quotes_no_other_services(
    cluster: Cluster, tmp_path: Path
) -> None:
    """curl leaves its -o file as it was when no answer comes: the answer file kept the previous
    service's prediction, and the error quoted it as this service's answer to a 000."""
    with serving_ingress(cluster.routes, cluster.backends, frozenset({"/chicagotaxi/predict"})) as base_url:
        run = rollout(tmp_path, base_url, cluster.keys)
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert "nlpinsight: ready and predicting" in out, out + run.result.stderr
    [error] = [line for line in out.splitlines() if line.startswith("::error::")]
    assert error == (
        f"::error::chicagotaxi: POST {base_url}/chicagotaxi/predict got no answer (curl's error above); "
        "rolling back"
    )
    assert "curl: (52) Empty reply from server" in run.result.stderr
    assert sorted(run.undone) == sorted(f"deployment/{s}" for s in SERVICES)


ECR = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-platform"


@pytest.mark.parametrize(
    ("check", "registry", "asked"),
    [
        ("", REGISTRY, ["skopeo", "inspect", "--raw", f"docker://{REGISTRY}/nlpinsight:{TAG}"]),
        ("skopeo", REGISTRY, ["skopeo", "inspect", "--raw", f"docker://{REGISTRY}/nlpinsight:{TAG}"]),
        (
            "gar",
            REGISTRY,
            ["gcloud", "artifacts", "docker", "images", "describe", f"{REGISTRY}/nlpinsight:{TAG}"],
        ),
        (
            "ecr",
            ECR,
            [
                "aws", "ecr", "describe-images", "--registry-id", "123456789012", "--region", "eu-west-1",
                "--repository-name", "ml-platform/nlpinsight", "--image-ids", f"imageTag={TAG}",
            ],
        ),
    ],
)  # fmt: skip
def test_an_image_missing_from_the_registry_stops_the_deploy_before_anything_is_applied(
    tmp_path: Path, check: str, registry: str, asked: list[str]
) -> None:
    """A registry other than CI's, or a commit CI did not push: the pods' ImagePullBackOff showed it
    only after ROLLOUT_TIMEOUT, and cost a rollback."""
    keys = dict.fromkeys(SERVICES, "unused")
    checked = {"IMAGE_CHECK": check} if check else {}
    run = rollout(tmp_path, "http://127.0.0.1:9", keys, registry, MISSING_SERVICES="nlpinsight", **checked)
    assert run.result.returncode == 1
    tool = asked[0]
    # The render, the namespace's labels, then each image of the release; nothing applied, waited
    # for or undone.
    assert [c[0] for c in run.calls] == ["kustomize", "get"] + [tool] * len(RELEASE)
    assert run.calls[1] == GET_NAMESPACE
    assert asked in run.calls
    assert f"{tool}: manifest unknown: nlpinsight" in run.result.stderr  # the tool's own error
    assert run.result.stdout.startswith(
        f"::error::no image {registry}/nlpinsight:{TAG} (IMAGE_CHECK={check or 'skopeo'}; its error "
        "above): CI pushes each commit of main"
    )
    assert "Nothing was applied" in run.result.stdout
    assert not run.applied


# --- MLflow: part of the release ----------------------------------------------------------------


def test_a_deploy_without_mlflows_image_stops_before_anything_is_applied(tmp_path: Path) -> None:
    """The overlays set MLflow's image to the tag too: without it, its Recreate left the registry
    down in ImagePullBackOff, and no rollout waited for it."""
    run = rollout(
        tmp_path, "http://127.0.0.1:9", dict.fromkeys(SERVICES, "unused"), MISSING_SERVICES="mlflow"
    )
    assert run.result.returncode == 1
    assert ["skopeo", "inspect", "--raw", f"docker://{REGISTRY}/mlflow:{TAG}"] in run.image_checks
    assert run.result.stdout.startswith(f"::error::no image {REGISTRY}/mlflow:{TAG} (IMAGE_CHECK=skopeo")
    assert not run.applied
    assert [c for c in run.calls if c[0] not in {"kustomize", "skopeo"}] == [GET_NAMESPACE]


#: MLflow's wait: ROLLOUT_TIMEOUT is shorter than its startupProbe's 60 x 5 s with the rest of a
#: Recreate (the old pod's grace period, its volume moving, the image pull, the migration).
MLFLOW_WAIT = "600s"
#: MLflow's ReplicaSets: the one this deploy's apply made (the Deployment's revision 4), the last
#: deploy's (3).
NEW_MLFLOW, OLD_MLFLOW = "mlflow-6f7d9c8b5", "mlflow-84c5b6d7f9"


def replicaset(name: str, deployment: str, revision: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": deployment, "pod-template-hash": name.rsplit("-", 1)[1]},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment}],
        },
    }


def pod(owner: str, state: dict[str, Any] | None, last_state: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod of the ReplicaSet ``owner``; ``state`` and ``last_state`` its db-upgrade init
    container's, as the kubelet reports them (state None: a pod without that init container)."""
    status = {"name": "db-upgrade", "ready": False, "restartCount": int(bool(last_state))}
    statuses = [{**status, "state": state, "lastState": last_state or {}}] if state else []
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{owner}-x7k2p",
            "labels": {"pod-template-hash": owner.rsplit("-", 1)[1]},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner}],
        },
        "status": {"phase": "Pending", "initContainerStatuses": statuses, "containerStatuses": []},
    }


def event(pod_name: str, reason: str, field: str = "spec.initContainers{db-upgrade}") -> dict[str, Any]:
    """An event the kubelet wrote of a container of ``pod_name`` (``reason``: Pulled, Created, Started)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{pod_name}.18a2f3c4d5e6f7a8"},
        "involvedObject": {"kind": "Pod", "name": pod_name, "fieldPath": field},
        "reason": reason,
    }


STARTED = "2025-06-02T09:14:03Z"
EXITED_0 = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": STARTED}}
EXITED_1 = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": STARTED}}
EXITED_137 = {"terminated": {"exitCode": 137, "reason": "OOMKilled", "startedAt": STARTED}}
RUNNING = {"running": {"startedAt": STARTED}}


def cluster_objects(
    tmp_path: Path, *mlflow_pods: dict[str, Any], events: Sequence[dict[str, Any]] = ()
) -> str:
    """What the cluster holds after this deploy's apply: MLflow's ReplicaSets and ``mlflow_pods``,
    and a model server's newer revision and pod (another Deployment's, which must not count), and
    ``events``."""
    objects = {
        "events": list(events),
        "replicasets": [
            replicaset(OLD_MLFLOW, "mlflow", 3),
            replicaset("bankchurn-5b9f8d7c6d", "bankchurn", 12),
            replicaset(NEW_MLFLOW, "mlflow", 4),
        ],
        "pods": [pod("bankchurn-5b9f8d7c6d", None), *mlflow_pods],
    }
    path = tmp_path / "objects.json"
    path.write_text(json.dumps(objects))
    return str(path)


def mlflow_failed(tmp_path: Path, objects: str | None = None, **env_vars: str) -> Run:
    """A deploy whose MLflow did not roll out within its wait."""
    if objects is not None:
        env_vars["KUBECTL_OBJECTS"] = objects
    run = rollout(
        tmp_path,
        "http://127.0.0.1:9",
        dict.fromkeys(SERVICES, "unused"),
        FAILED_ROLLOUTS="mlflow",
        **env_vars,
    )
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert (
        out.splitlines()[0]
        == f"::error::deployment/mlflow did not roll out within {MLFLOW_WAIT}; rolling back"
    )
    assert run.waited == ["deployment/mlflow"]  # the first waited for
    wait = next(c for c in run.calls if c[2:5] == ["rollout", "status", "deployment/mlflow"])
    assert wait[-1] == f"--timeout={MLFLOW_WAIT}"
    return run


@pytest.mark.parametrize(
    "mlflow_pods",
    [
        pytest.param([pod(NEW_MLFLOW, {"waiting": {"reason": "ImagePullBackOff"}})],
                     id="db-upgrade never started"),
        # Recreate: no new pod while the old one terminates, its db-upgrade exited 0 a deploy ago.
        pytest.param([pod(OLD_MLFLOW, EXITED_0)], id="no pod of the new revision"),
    ],
)  # fmt: skip
@pytest.mark.parametrize(
    "events",
    [
        pytest.param([], id="no events"),
        # The last deploy's db-upgrade, a pod of the new revision pulling its image, and another
        # ReplicaSet whose name starts with the new one's: none is this revision's migration.
        pytest.param([event(f"{OLD_MLFLOW}-a1b2c", "Started"), event(f"{NEW_MLFLOW}-x7k2p", "Pulled"),
                      event(f"{NEW_MLFLOW}-9-x7k2p", "Started")], id="events of others"),
    ],
)  # fmt: skip
def test_an_mlflow_whose_db_upgrade_never_started_is_undone_with_the_services(
    tmp_path: Path, mlflow_pods: list[dict[str, Any]], events: list[dict[str, Any]]
) -> None:
    """Its database as the previous version left it: the previous one back (Recreate stopped it)."""
    run = mlflow_failed(tmp_path, cluster_objects(tmp_path, *mlflow_pods, events=events))
    out = run.result.stdout
    assert sorted(run.undone) == sorted(f"deployment/{name}" for name in RELEASE)
    assert (
        "deployment/mlflow: its new pod's db-upgrade never started, so its previous version still "
        "reads the database: undone"
    ) in out.splitlines()
    assert "::warning::" not in out


@pytest.mark.parametrize(
    "mlflow_pods",
    [
        pytest.param([pod(NEW_MLFLOW, EXITED_0)], id="db-upgrade exited 0"),
        pytest.param([pod(NEW_MLFLOW, {"waiting": {"reason": "PodInitializing"}}, EXITED_0)],
                     id="db-upgrade exited 0, the pod restarting"),
        pytest.param([pod(NEW_MLFLOW, RUNNING)], id="db-upgrade running"),
        pytest.param([pod(NEW_MLFLOW, RUNNING, EXITED_1)], id="db-upgrade running again"),
        # Failed part-way, maybe: an error at revision k of n, or killed (OOMKilled 137, preempted).
        pytest.param([pod(NEW_MLFLOW, EXITED_1)], id="db-upgrade exited 1"),
        pytest.param([pod(NEW_MLFLOW, {"waiting": {"reason": "CrashLoopBackOff"}}, EXITED_137)],
                     id="db-upgrade OOMKilled, waiting to retry"),
    ],
)  # fmt: skip
def test_an_mlflow_whose_db_upgrade_ran_stays_at_the_new_tag_and_the_services_are_undone(
    tmp_path: Path, mlflow_pods: list[dict[str, Any]]
) -> None:
    """MLflow did not answer within its wait after its migration succeeded, during it, or after it
    failed (part-way, maybe): undone, the previous version refused the migrated schema (its check is
    an equality) and the registry crash-looped, or the undo killed the migration part-way."""
    run = mlflow_failed(tmp_path, cluster_objects(tmp_path, *mlflow_pods))
    out = run.result.stdout
    assert sorted(run.undone) == sorted(f"deployment/{s}" for s in SERVICES)
    [warning] = [line for line in out.splitlines() if line.startswith("::warning::")]
    assert warning.startswith(
        f"::warning::deployment/mlflow stays at {TAG}: its new pod's db-upgrade started (it exited, 0 or "
        "not, or is still running), so its database may be migrated, in full or in part"
    )
    assert "kubectl -n ml-platform logs deploy/mlflow -c db-upgrade" in warning
    assert "kubectl -n ml-platform logs deploy/mlflow (the server)" in warning
    # Asked of the cluster, as the workflow's kubectl context is: ReplicaSets and Pods of the namespace.
    # (Deployments before the apply and in the rollback, for which the apply changed.)
    gets = [c[:4] for c in run.calls if c[2:3] == ["get"]]
    assert gets == [
        ["-n", "ml-platform", "get", kind] for kind in ("deployments", "deployments", "replicasets", "pods")
    ]


def test_an_mlflow_whose_migrating_pod_was_deleted_since_is_not_undone(tmp_path: Path) -> None:
    """Its node drained (or preempted) after db-upgrade started: the pod and its statuses went, its
    replacement is pending, and the pods alone read "never started", so it was undone onto a
    database its new version had migrated. The kubelet's event of that start says otherwise."""
    pending = pod(NEW_MLFLOW, None)
    deleted = f"{NEW_MLFLOW}-q9z4m"
    events = [event(deleted, "Pulled"), event(deleted, "Created"), event(deleted, "Started")]
    run = mlflow_failed(tmp_path, cluster_objects(tmp_path, pending, events=events))
    assert sorted(run.undone) == sorted(f"deployment/{s}" for s in SERVICES)
    [warning] = [line for line in run.result.stdout.splitlines() if line.startswith("::warning::")]
    assert warning.startswith(
        f"::warning::deployment/mlflow stays at {TAG}: its new pod's db-upgrade started"
    )
    gets = [c[3] for c in run.calls if c[2:3] == ["get"]]
    assert gets == ["deployments", "deployments", "replicasets", "pods", "events"]


def test_an_mlflow_the_cluster_says_nothing_about_is_not_undone(tmp_path: Path) -> None:
    """kubectl could not tell how far db-upgrade got: an undo might crash-loop the registry."""
    run = mlflow_failed(tmp_path, KUBECTL_GET_FAILS="replicasets")
    out = run.result.stdout
    assert sorted(run.undone) == sorted(f"deployment/{s}" for s in SERVICES)
    assert f"::warning::deployment/mlflow stays at {TAG}: the cluster did not say whether" in out
    assert "Unauthorized" in run.result.stderr


def test_once_mlflow_rolled_out_a_failed_service_undoes_the_services_alone(tmp_path: Path) -> None:
    """A rolled-out MLflow may have migrated its database to a schema its previous version refuses
    (mlflow/k8s/mlflow.yaml, db-upgrade): undone, it would crash-loop."""
    run = rollout(
        tmp_path, "http://127.0.0.1:9", dict.fromkeys(SERVICES, "unused"), FAILED_ROLLOUTS="nlpinsight"
    )
    out = run.result.stdout
    assert run.result.returncode == 1, out + run.result.stderr
    assert out.splitlines()[0] == "::error::deployment/nlpinsight did not roll out within 300s; rolling back"
    assert (run.waited[0], run.waited[-1]) == ("deployment/mlflow", "deployment/nlpinsight")
    assert sorted(run.undone) == sorted(f"deployment/{s}" for s in SERVICES)
    assert f"::warning::deployment/mlflow stays at {TAG}: it rolled out" in out


# --- What starts a deploy: the Deploy workflows' trigger and job condition ----------------------

WORKFLOWS = {cloud: ROOT / ".github" / "workflows" / f"deploy-{cloud}.yml" for cloud in ("gke", "eks")}
REPOSITORY = "acme/ml-platform"


class Context:
    """A GitHub Actions expression context: ``a.b.c`` reads a payload, a missing key is null."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getattr__(self, name: str) -> Any:
        found = self.value.get(name) if isinstance(self.value, dict) else None
        return Context(found) if isinstance(found, dict) or found is None else found


def job_runs(workflow: dict[str, Any], event_name: str, event: dict[str, Any]) -> bool:
    """Whether the deploy job runs: the trigger's branch filter, then the job's ``if:``, evaluated
    with the expression syntax this condition uses (``==``, ``&&``, ``||``, parentheses, quotes)."""
    trigger = workflow[True]  # YAML 1.1 reads the key `on` as true
    if (
        event_name == "workflow_run"
        and event["workflow_run"]["head_branch"] not in trigger["workflow_run"]["branches"]
    ):
        return False
    condition = workflow["jobs"]["deploy"]["if"].replace("&&", " and ").replace("||", " or ")
    github = Context({"event_name": event_name, "event": event, "repository": REPOSITORY})
    return bool(eval(condition, {"__builtins__": {}}, {"github": github}))  # the workflow file's own text


def ci_run(event: str, repository: str, conclusion: str = "success") -> dict[str, Any]:
    """The workflow_run payload of a finished CI run on a branch called main."""
    return {
        "workflow_run": {
            "conclusion": conclusion,
            "event": event,
            "head_branch": "main",
            "head_repository": {"full_name": repository},
        }
    }


@pytest.mark.parametrize("cloud", WORKFLOWS)
def test_only_a_push_to_this_repositorys_main_or_a_manual_run_deploys(cloud: str) -> None:
    workflow = yaml.safe_load(WORKFLOWS[cloud].read_text())
    assert job_runs(workflow, "workflow_run", ci_run("push", REPOSITORY))
    assert job_runs(workflow, "workflow_dispatch", {})
    assert not job_runs(workflow, "workflow_run", ci_run("push", REPOSITORY, conclusion="failure"))
    # A pull request from a fork's branch named main: CI runs, and passes the branch filter.
    assert not job_runs(workflow, "workflow_run", ci_run("pull_request", "someone/ml-platform"))
    # Nor a pull request within the repository, from its main (CI of a merge ref, not a push).
    assert not job_runs(workflow, "workflow_run", ci_run("pull_request", REPOSITORY))


@pytest.mark.parametrize("cloud", WORKFLOWS)
def test_the_deploy_step_hands_rollout_sh_every_smoke_key(cloud: str) -> None:
    workflow = yaml.safe_load(WORKFLOWS[cloud].read_text())
    [step] = [
        s for s in workflow["jobs"]["deploy"]["steps"] if ".github/scripts/rollout.sh" in s.get("run", "")
    ]
    names = [f"SMOKE_API_KEY_{service.upper()}" for service in SERVICES]
    assert {name: step["env"].get(name) for name in names} == {n: f"${{{{ secrets.{n} }}}}" for n in names}
    readme = (ROOT / "k8s" / "overlays" / cloud / "README.md").read_text()
    assert all(name in readme for name in names), f"k8s/overlays/{cloud}/README.md names the secrets"


def step_env(workflow: dict[str, Any], job: str, runs: str) -> dict[str, str]:
    [step] = [s for s in workflow["jobs"][job]["steps"] if runs in s.get("run", "")]
    return dict(step["env"])


def action_of(workflow: dict[str, Any], job: str, step_id: str) -> str:
    [step] = [s for s in workflow["jobs"][job]["steps"] if s.get("id") == step_id]
    return str(step["uses"])


def test_each_deploy_pulls_from_the_registry_ci_pushes_to() -> None:
    """deploy-eks read its registry from a variable of its own, which could name another than the
    one CI pushed to: its deploys then failed after the rollout timeout, on ImagePullBackOff."""
    ci = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    [job] = [name for name, body in ci["jobs"].items() if any(s.get("id") == "ecr" for s in body["steps"])]
    pushed = step_env(ci, job, "docker push")
    eks, gke = (yaml.safe_load(WORKFLOWS[cloud].read_text()) for cloud in ("eks", "gke"))
    deploy_eks, deploy_gke = (step_env(w, "deploy", ".github/scripts/rollout.sh") for w in (eks, gke))
    assert deploy_eks["REGISTRY"] == pushed["ECR_REPOSITORY"]
    assert "steps.ecr.outputs.registry" in deploy_eks["REGISTRY"]
    assert action_of(eks, "deploy", "ecr") == action_of(ci, job, "ecr")  # the same login, the same output
    assert deploy_gke["REGISTRY"] == pushed["GAR_REGISTRY"]
    assert (deploy_eks["IMAGE_CHECK"], deploy_gke["IMAGE_CHECK"]) == ("ecr", "gar")


def test_a_deploy_applies_everything_but_the_namespace(tmp_path: Path) -> None:
    """An apply server-side of the Namespace is a patch of it, changed or not: the identity that may
    make one could relabel it privileged, then roll out a privileged pod through a Deployment. The
    Namespace is a cluster administrator's; the deploy applies the rest, the dry run too."""
    run = mlflow_failed(tmp_path)
    applied = [o for o in yaml.safe_load_all(run.applied) if o]
    assert applied, "the deploy applied nothing"
    assert [o for o in applied if o["kind"] == "Namespace"] == []
    assert {o["kind"] for o in applied} == {o["kind"] for o in render("gke").objects} - {"Namespace"}
    assert GET_NAMESPACE in run.calls


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        pytest.param(None, "::error::no namespace ml-platform in the cluster: " + ADMIN_STEP, id="missing"),
        pytest.param(
            {**NAMESPACE_LABELS, "pod-security.kubernetes.io/enforce": "privileged"},
            "::error::namespace ml-platform is not labelled pod-security.kubernetes.io/enforce=restricted "
            "as k8s/base/namespace.yaml has it (its pod-security labels: "
            "pod-security.kubernetes.io/enforce=privileged pod-security.kubernetes.io/enforce-version=latest "
            "pod-security.kubernetes.io/warn=restricted): " + ADMIN_STEP,
            id="relabelled privileged",
        ),
        pytest.param(
            {"kubernetes.io/metadata.name": "ml-platform"},
            "::error::namespace ml-platform is not labelled pod-security.kubernetes.io/enforce=restricted "
            "pod-security.kubernetes.io/enforce-version=latest pod-security.kubernetes.io/warn=restricted "
            "as k8s/base/namespace.yaml has it (its pod-security labels: none): " + ADMIN_STEP,
            id="made by kubectl create namespace",
        ),
    ],
)
def test_a_namespace_missing_or_not_restricted_stops_the_deploy_naming_the_admin_step(
    tmp_path: Path, labels: dict[str, str] | None, error: str
) -> None:
    """The deploy identity may not create or relabel its namespace: one missing, or whose pod-security
    labels are not k8s/base/namespace.yaml's, is a cluster administrator's to fix, before anything
    is looked up or applied."""
    run = rollout(
        tmp_path,
        "http://127.0.0.1:9",
        dict.fromkeys(SERVICES, "unused"),
        KUBECTL_NAMESPACE_LABELS=json.dumps(labels),
    )
    assert run.result.returncode == 1
    assert run.result.stdout.splitlines() == [error]
    assert [c for c in run.calls if c[0] != "kustomize"] == [GET_NAMESPACE]
    assert not run.applied


def test_a_cluster_that_does_not_show_the_namespace_gets_nothing_applied(tmp_path: Path) -> None:
    run = rollout(
        tmp_path, "http://127.0.0.1:9", dict.fromkeys(SERVICES, "unused"), KUBECTL_GET_FAILS="namespace"
    )
    assert run.result.returncode == 1
    assert "Unauthorized" in run.result.stderr
    assert run.result.stdout.splitlines() == [
        "::error::the cluster did not say whether namespace ml-platform exists (kubectl's error above); "
        "nothing was applied"
    ]
    assert [c for c in run.calls if c[0] != "kustomize"] == [GET_NAMESPACE]
