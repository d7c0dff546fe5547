"""Kube-less smoke test: the rendered GKE Deployments start the services as written.

For each model-server Deployment, run the container's command with the manifest's environment
(its ConfigMap and env), MLFLOW_TRACKING_URI pointed at a local MLflow server holding a trained
champion, wait on the readiness probe's path, then predict under the ingress path (ROOT_PATH).
Only the ports are changed (to free ones) so that parallel runs do not collide, and the API keys
file is one written here, where the pod mounts its Secret: the manifest's keys are on, and every
request carries a key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from manifests import SERVICES, Rendered, configmap_env, container

from processes import grpc_infer, infer_example, predict_its_example
from servekit import http_client, registry
from servekit.auth.key_lines import key_line, new_key
from servekit.local import Server, free_port, start
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", SERVICES)
def test_manifest_command_serves(  # noqa: PLR0917 (pytest passes fixtures by name)
    gke: Rendered,
    service: str,
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    logs_dir: Path,
    tmp_path: Path,
) -> None:
    if service not in registry.available():
        pytest.fail(f"{service} has manifests but is not an installed servekit service")
    deployment = gke.get("Deployment", service)
    spec = container(deployment)
    probe = spec["readinessProbe"]["httpGet"]
    assert probe["port"] in ("http", 8080)

    port = free_port()
    command = list(spec["command"])
    command[command.index("--port") + 1] = str(port)
    env = configmap_env(gke, deployment)
    env["MLFLOW_TRACKING_URI"] = mlflow_server.url
    grpc_port = free_port()
    env[f"{service.upper()}_GRPC_PORT"] = str(grpc_port)
    key = new_key()
    keys_file = tmp_path / "keys"
    keys_file.write_text(key_line("smoke-test", key) + "\n")
    assert env[f"{service.upper()}_API_KEYS_FILE"]
    env[f"{service.upper()}_API_KEYS_FILE"] = str(keys_file)
    keyed = {"authorization": f"Bearer {key}"}
    # HOME=/tmp and TMPDIR=/tmp as in the pod; `mlp` from this environment, as in the image.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    server = start(f"k8s-smoke-{service}", command, port, logs_dir, env)
    server.grpc_port = grpc_port
    try:
        server.wait_for(probe["path"], seconds=180)
        root = env[f"{service.upper()}_ROOT_PATH"]
        _, response = predict_its_example(f"{server.url}{root}", explain=False, timeout=30, headers=keyed)
        assert response.json()["model"]["version"] == str(registered[service].version)
        # The Open Inference Protocol under the same prefix, as a Triton or KServe client calls it.
        base = f"{server.url}{root}"
        refused = http_client.post(f"{base}/v2/models/{service}/infer", json=infer_example(base), timeout=30)
        assert refused.status_code == 401, "the manifest's settings ask for API keys"
        infer = http_client.post(
            f"{base}/v2/models/{service}/infer", json=infer_example(base), timeout=30, headers=keyed
        )
        assert infer.status_code == 200, infer.text
        assert infer.json()["model_version"] == str(registered[service].version)
        # And over gRPC, on the port the settings ConfigMap names.
        result = grpc_infer(server, service, infer_example(base), metadata=tuple(keyed.items()))
        assert result.model_version == str(registered[service].version)
    finally:
        server.stop()
