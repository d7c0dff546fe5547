"""The benchmarks' servers: a real ``mlp serve`` of a champion, and its second models loaded."""

from __future__ import annotations

import contextlib
import os
import platform
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from servekit import registry
from servekit.local import Server, free_port, start_mlflow, start_service
from servekit.spec import ServiceSpec
from servekit.training.trainer import TrainResult, train


def machine() -> dict[str, Any]:
    """What the figures were measured on, for the report beside them."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


@contextlib.contextmanager
def champions(
    names: Sequence[str], prefix: str, data: Mapping[str, Path] | None = None
) -> Iterator[tuple[Server, Path, dict[str, TrainResult]]]:
    """A temporary MLflow server (127.0.0.1) whose registry has each service's champion, trained on
    ``data[name]`` or its synthetic data, a work directory for the servers' logs, and the trainings'
    results; all gone on leaving."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        mlflow = start_mlflow(work / "mlflow", work)
        try:
            trained = {
                name: train(registry.get_service(name), mlflow.url, (data or {}).get(name), seed=42)
                for name in names
            }
            yield mlflow, work, trained
        finally:
            mlflow.stop()


@contextlib.contextmanager
def serving(
    spec: ServiceSpec,
    mlflow: Server,
    work: Path,
    *,
    label: str = "",
    settings: Mapping[str, str] | None = None,
    grpc: bool = False,
) -> Iterator[Server]:
    """A real ``mlp serve`` of the champion, logging warnings only, ready; stopped on leaving.

    ``settings`` are the service's, without their prefix (``{"SHADOW_MODEL_URI": ...}``).
    """
    prefix = spec.name.upper()
    env = {
        "MLFLOW_TRACKING_URI": mlflow.url,
        f"{prefix}_LOG_LEVEL": "WARNING",
        **{f"{prefix}_{name}": value for name, value in (settings or {}).items()},
    }
    name = f"{spec.name}-{label}" if label else spec.name
    server = start_service(spec.name, work, env, label=name, grpc_port=free_port() if grpc else 0)
    try:
        server.wait_for("/readyz", seconds=180)
        yield server
    finally:
        server.stop()


def wait_for_variants(
    server: Server, roles: Sequence[str], seconds: float = 120, *, headers: Mapping[str, str] | None = None
) -> None:
    """Until the server's second models in ``roles`` (``shadow``, ``canary``) have loaded.

    ``headers`` go with each ``GET /model`` (an API key, where the server asks for one).
    """
    deadline = time.monotonic() + seconds

    def model() -> dict[str, Any]:
        response = httpx.get(f"{server.url}/model", timeout=5, headers=headers)
        response.raise_for_status()  # a 401 names itself, not a missing key of the answer
        described: dict[str, Any] = response.json()
        return described

    while not all(model()[role]["ready"] for role in roles):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the {' and '.join(roles)} model never loaded:\n{server.logs()[-2000:]}")
        time.sleep(0.2)
