"""The image's command is the manifests' command, and the image's environment serves.

No Docker engine runs here, so the Dockerfile is read as text: its final stage's ``CMD``,
``USER``, ``EXPOSE`` and ``ENV MLP_SERVICE=${SERVICE}`` are compared with what the rendered
Kubernetes manifests run; then, for every service, the build stage's own ``uv sync`` installs
what the image would hold, and the ``CMD`` runs from it with the final stage's ``ENV`` against a
real MLflow server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from processes import ROOT, Server, free_port, predict_its_example
from servekit import registry
from servekit.local import start
from servekit.training.trainer import TrainResult

DOCKERFILE = ROOT / "Dockerfile"
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
OVERLAYS = ("gke", "eks")
SERVICES = registry.available()
#: The commit the image environment is built from, as CI passes it (REVISION=${{ github.sha }}).
BUILT_REVISION = "0123456789abcdef0123456789abcdef01234567"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    parsed = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM")
    return parsed[last_from:]


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def image_cmd() -> list[str]:
    cmds = [rest for keyword, rest in final_stage() if keyword == "CMD"]
    assert len(cmds) == 1, "the final stage needs exactly one CMD"
    cmd = json.loads(cmds[0])  # exec form only: no shell between the signal and the server
    assert isinstance(cmd, list)
    assert all(isinstance(part, str) for part in cmd)
    return cmd


def test_dockerfile_contract() -> None:
    stage = final_stage()
    keywords = [keyword for keyword, _ in stage]
    assert "ENTRYPOINT" not in keywords  # so a manifest's `command` replaces exactly the CMD
    assert ("ARG", "SERVICE") in stage
    env = env_of(stage)
    assert env["MLP_SERVICE"] == "${SERVICE}"
    assert env["MLP_CODE_REVISION"] == "${REVISION}"  # GET /model's serving_code (servekit.provenance)
    assert ("ARG", 'REVISION=""') in stage
    assert env["HOME"].startswith("/tmp")
    assert ("USER", "10001:10001") in stage
    assert ("EXPOSE", "8080") in stage
    assert ("EXPOSE", "8081") in stage  # gRPC, the manifests' port "grpc"
    assert image_cmd() == ["mlp", "serve", "--host", "0.0.0.0", "--port", "8080"]
    text = DOCKERFILE.read_text()
    for image in re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE):
        assert ":" in image, f"{image} is not pinned to a version"
        assert not image.endswith(":latest"), f"{image} is not pinned to a version"
    assert re.search(r"^FROM python:3\.11\.\d+-slim", text, flags=re.MULTILINE)
    assert 'uv sync --frozen --no-dev --no-editable --package "${SERVICE}"' in text


def rendered(overlay: str) -> list[dict[str, Any]]:
    if not KUBECTL.exists() or not (ROOT / "k8s" / "overlays" / overlay).is_dir():
        pytest.skip(f"no kubectl in .venv or no k8s/overlays/{overlay}")
    result = subprocess.run(
        [str(KUBECTL), "kustomize", str(ROOT / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_run_the_image_command(overlay: str) -> None:
    """For each service Deployment: the argv the pod runs == the Dockerfile CMD, for that service.

    argv is ``command + args`` when ``command`` is set (there is no ENTRYPOINT), ``args`` alone
    when only ``args`` is set, and the image CMD when neither is; the service is the container's
    ``MLP_SERVICE`` env if set, else the image's (build argument = the image name's last segment).
    The pod runs as the image's user and listens on its EXPOSEd port.
    """
    cmd = image_cmd()
    deployments = {d["metadata"]["name"]: d for d in rendered(overlay) if d.get("kind") == "Deployment"}
    for service in SERVICES:
        assert service in deployments, f"{overlay}: no Deployment {service}"
        pod = deployments[service]["spec"]["template"]["spec"]
        containers = [c for c in pod["containers"] if c["image"].rsplit("/", 1)[-1].split(":")[0] == service]
        assert len(containers) == 1, f"{overlay}/{service}: one container runs the {service} image"
        container = containers[0]
        command, args = container.get("command"), container.get("args")
        argv = (command or []) + (args or []) if command else (args if args is not None else cmd)
        assert argv == cmd, f"{overlay}/{service} runs {argv}, the image's CMD is {cmd}"
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get("MLP_SERVICE", service) == service, (
            f"{overlay}/{service}: MLP_SERVICE={env['MLP_SERVICE']}"
        )
        context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        assert context.get("runAsUser") == 10001
        assert context.get("runAsGroup") == 10001
        assert context.get("readOnlyRootFilesystem") is True
        assert {8080, 8081} <= {p.get("containerPort") for p in container.get("ports", [])}


def build_stage() -> list[tuple[str, str]]:
    parsed = instructions(DOCKERFILE.read_text())
    starts = [i for i, (keyword, _) in enumerate(parsed) if keyword == "FROM"]
    last_from = starts[-1]
    return parsed[starts[-2] : last_from]


def image_install(service: str) -> list[str]:
    """The build stage's last ``uv sync`` (the one that installs the service), for ``service``."""
    syncs = [
        shlex.split(part.strip())
        for keyword, rest in build_stage()
        if keyword == "RUN"
        for part in rest.split("&&")
        if part.strip().startswith("uv sync")
    ]
    assert syncs, "the build stage installs with uv sync"
    return [token.replace("${SERVICE}", service) for token in syncs[-1]]


def image_env(service: str, venv: Path, writable: Path) -> dict[str, str]:
    """The final stage's ENV for ``service``, with /app/.venv and /tmp mapped to local directories."""
    substitutions = {
        "${SERVICE}": service,
        "${REVISION}": BUILT_REVISION,
        "/app/.venv": str(venv),
        "$PATH": os.environ["PATH"],
    }
    env = {}
    for key, declared in env_of(final_stage()).items():
        value = declared
        for variable, replacement in substitutions.items():
            value = value.replace(variable, replacement)
        env[key] = str(writable) if value == "/tmp" else value
    return env


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file() and not path.is_symlink()
    }


@dataclass(frozen=True)
class ImageRun:
    """One service's image environment, its server, and the environment's files before it ran."""

    venv: Path
    server: Server
    files_before: dict[str, tuple[int, int]]


def install_image_environment(service: str, venv: Path) -> None:
    install = image_install(service)
    assert install[:2] == ["uv", "sync"]
    assert "--no-dev" in install
    # uv as the Makefile runs it (python3 -m uv), on this machine's Python, into a fresh directory.
    # Hard links from uv's cache: what is installed is the same as the image's copies, in a
    # second instead of ten per service.
    uv_env = {
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON": "python3",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "hardlink",
        # The Makefile turns it on; here it would cost more than it saves: compiling an image
        # environment takes 25 s and saves its one server about 9 s of start-up.
        "UV_COMPILE_BYTECODE": "0",
    }
    subprocess.run(
        ["python3", "-m", "uv", *install[1:], "--quiet"],
        cwd=ROOT,
        env={**os.environ, **uv_env},
        check=True,
        timeout=600,
    )


def run_image_command(service: str, venv: Path, writable: Path, tracking_uri: str, log_dir: Path) -> Server:
    """The final stage's CMD from ``venv`` with its ENV (host 127.0.0.1, a free port)."""
    cmd = image_cmd()
    port = free_port()
    argv = [str(venv / "bin" / cmd[0]), *cmd[1:]]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {**image_env(service, venv, writable), "MLFLOW_TRACKING_URI": tracking_uri, "PYTHONNOUSERSITE": "1"}
    return start(f"image-{service}", argv, port, log_dir, env, cwd=writable)


@pytest.fixture(scope="module")
def image_runs(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ImageRun]]:
    """Every service's image environment, all started at once (their start-ups overlap)."""
    runs: dict[str, ImageRun] = {}
    try:
        for service in SERVICES:
            root = tmp_path_factory.mktemp(f"image-{service}")
            venv, writable = root / "app-venv", root / "tmp"
            writable.mkdir()
            install_image_environment(service, venv)
            files_before = tree_state(venv)
            server = run_image_command(service, venv, writable, mlflow_server.url, root)
            runs[service] = ImageRun(venv, server, files_before)
        yield runs
    finally:
        for run in runs.values():
            run.server.stop()


@pytest.mark.integration
@pytest.mark.parametrize("service", SERVICES)
def test_image_environment_serves_explained_predictions(
    service: str, image_runs: dict[str, ImageRun], registered: dict[str, TrainResult]
) -> None:
    """The image, short of Docker: the service's environment installed with the build stage's own
    ``uv sync`` (runtime dependencies only: no pytest, no shap), the final stage's ENV, and the CMD.
    It becomes ready, serves an explained prediction, and writes nothing into its environment (the
    pod's root filesystem is read-only; only /tmp is writable, here a temporary directory; as root
    here a read-only mode would not stop a write, so the files are compared instead). Bytecode is
    not precompiled here (UV_COMPILE_BYTECODE): it only changes start-up time.
    """
    run = image_runs[service]
    dev_only = ("pytest", "shap", "schemathesis", "locust", "moto")
    probe = f"import importlib.util as u; print([m for m in {dev_only!r} if u.find_spec(m)])"
    shipped = subprocess.run(
        [str(run.venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert shipped == "[]", f"the {service} image would ship test tools: {shipped}"

    model = run.server.wait_for("/readyz", 200, seconds=180).json()["model"]
    assert (model["name"], model["version"]) == (service, registered[service].version)
    # No git checkout in an image: the code it serves is the commit its build was given.
    serving_code = httpx.get(f"{run.server.url}/model", timeout=10).json()["serving_code"]
    assert (serving_code["revision"], serving_code["modified"]) == (BUILT_REVISION, None)
    assert set(serving_code["packages"]) == {"servekit", service}
    _, response = predict_its_example(run.server.url, explain=True)
    assert response.json()["explanation"]["contributions"]
    run.server.stop()
    assert tree_state(run.venv) == run.files_before, f"{service} wrote into its environment"


def test_ci_builds_each_image_with_its_commit() -> None:
    """The Dockerfile's REVISION, without which an image's replicas name no commit they serve."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    builds = [
        step["with"]
        for job in workflow["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).startswith("docker/build-push-action@")
    ]
    assert builds
    for build in builds:
        assert "REVISION=${{ github.sha }}" in build["build-args"].splitlines()
