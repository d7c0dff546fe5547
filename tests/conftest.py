"""Fixtures shared by the cross-package tests: a real MLflow server with every service trained."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from processes import Server, free_port, start_mlflow, start_service
from servekit import registry
from servekit.training.trainer import TrainResult, train

SERVICES = registry.available()


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def mlflow_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session MLflow server's SQLite store and artifacts."""
    return tmp_path_factory.mktemp("mlp")


@pytest.fixture(scope="session")
def mlflow_server(mlflow_state: Path, logs_dir: Path) -> Iterator[Server]:
    server = start_mlflow(mlflow_state, logs_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def registered(mlflow_server: Server) -> dict[str, TrainResult]:
    """Every service trained once on its synthetic data and registered as champion."""
    return {name: train(registry.get_service(name), mlflow_server.url) for name in SERVICES}


@pytest.fixture(scope="session")
def live_services(
    mlflow_server: Server, registered: dict[str, TrainResult], logs_dir: Path
) -> Iterator[dict[str, Server]]:
    """``mlp serve`` for every service, loading its champion from the MLflow server.

    They serve the version they started with: test_registry moves the champion and back
    while they may be running (following an alias has its own test in test_live_service).
    Each also serves the Open Inference Protocol over gRPC (``Server.grpc_port``), and shadows
    its champion's own run (``runs:/``, so not skipped as the same registry version): every
    gRPC and shadow metric and dashboard panel gets live data.
    """
    servers = {
        name: start_service(
            name,
            logs_dir,
            {
                "MLFLOW_TRACKING_URI": mlflow_server.url,
                f"{name.upper()}_MODEL_REFRESH_SECONDS": "0",
                f"{name.upper()}_SHADOW_MODEL_URI": f"runs:/{registered[name].run_id}/model",
            },
            grpc_port=free_port(),
        )
        for name in SERVICES
    }
    try:
        for server in servers.values():
            server.wait_for("/readyz")
        yield servers
    finally:
        for server in servers.values():
            server.stop()
