"""The image's command is the manifests' command, and that command serves /readyz here.

No Docker engine runs here, so the Dockerfile is read as text: its final stage's ``CMD``,
``USER``, ``EXPOSE`` and ``ENV MLP_SERVICE=${SERVICE}`` are compared with what the rendered
Kubernetes manifests run, and the ``CMD`` itself is run in the project environment against a
real MLflow server.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from processes import ROOT, Server, free_port
from servekit import registry
from servekit.local import start
from servekit.training.trainer import TrainResult

DOCKERFILE = ROOT / "Dockerfile"
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
OVERLAYS = ("gke", "eks")
SERVICES = registry.available()


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
    assert env["HOME"].startswith("/tmp")
    assert ("USER", "10001:10001") in stage
    assert ("EXPOSE", "8080") in stage
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
        assert 8080 in [p.get("containerPort") for p in container.get("ports", [])]


@pytest.mark.integration
def test_image_command_serves_readyz(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path: Path
) -> None:
    """The CMD, run here with MLP_SERVICE set (host 127.0.0.1, a free port), becomes ready."""
    service = SERVICES[0]
    cmd = image_cmd()
    port = free_port()
    argv = [shutil.which(cmd[0], path=str(ROOT / ".venv" / "bin")) or cmd[0], *cmd[1:]]
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--host") + 1] = "127.0.0.1"
    env = {
        "MLP_SERVICE": service,
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "HOME": str(tmp_path),
        "PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = start(f"image-cmd-{service}", argv, port, tmp_path, env)
    try:
        response = server.wait_for("/readyz", 200, seconds=120)
        assert response.json()["model"]["name"] == service
    finally:
        server.stop()
