"""Fixtures shared by the cross-package tests: a real MLflow server with every service trained."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import mlflow
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from processes import (
    KeyedService,
    Server,
    free_port,
    serving,
    start_keyed_service,
    start_mlflow,
    start_service,
)
from registered import registered_again
from servekit import cli, registry
from servekit.loading import use_registry
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


def registry_aliases(client: mlflow.MlflowClient) -> dict[tuple[str, str], str]:
    return {
        (model.name, alias): version
        for model in client.search_registered_models()
        for alias, version in model.aliases.items()
    }


@pytest.fixture(autouse=True)
def session_aliases_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test leaves the session registry's aliases as it found them, whichever moved them.

    Test files run in the order of their recorded seconds, so no file may count on another having
    run before it, or not: a file that trains a new version moves its `challenger`, one that
    promotes moves `champion`, and the next file on that worker would find them moved.
    """
    if "mlflow_server" not in request.fixturenames:
        yield
        return
    server: Server = request.getfixturevalue("mlflow_server")
    client = mlflow.MlflowClient(server.url, registry_uri=server.url)
    before = registry_aliases(client)
    yield
    after = registry_aliases(client)
    for (name, alias), version in before.items():
        if after.get((name, alias)) != version:
            client.set_registered_model_alias(name, alias, version)
    for name, alias in after.keys() - before.keys():
        client.delete_registered_model_alias(name, alias)


@pytest.fixture(autouse=True)
def session_registry_in_use(request: pytest.FixtureRequest) -> None:
    """A test of the session server finds MLflow's process-wide URIs pointing at it, as training its
    models left them, whichever test ran before it on this worker: one that pointed them at a store
    of its own, or unset them, made a ``models:/`` URI read another registry ("not found")."""
    if "mlflow_server" in request.fixturenames:
        server: Server = request.getfixturevalue("mlflow_server")
        use_registry(server.url)


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
    Each also serves the Open Inference Protocol over gRPC (``Server.grpc_port``), shadows
    its champion's model registered again as a version of its own (no alias; so not skipped as
    the same registry version, and a version its comparison can be recorded on), and runs the
    champion's run as a canary at 0 % (only requests with ``X-Model-Variant: canary`` reach it, so
    every other test sees the champion answer): every gRPC, shadow and canary metric and
    dashboard panel gets live data.
    """
    shadows = {name: registered_again(mlflow_server, registered[name]) for name in SERVICES}
    servers = {
        name: start_service(
            name,
            logs_dir,
            {
                "MLFLOW_TRACKING_URI": mlflow_server.url,
                f"{name.upper()}_MODEL_REFRESH_SECONDS": "0",
                # The live quality panels' series appear within 15 s of an evaluation logged (their
                # test waits 45 s). Each read costs the MLflow server 15 ms of CPU and the pod 5:
                # every 5 s, the six readers (served and shadow) took 1.45 CPU-seconds a minute.
                f"{name.upper()}_LIVE_EVALUATION_REFRESH_SECONDS": "15",
                f"{name.upper()}_SHADOW_MODEL_URI": f"models:/{name}/{shadows[name]}",
                f"{name.upper()}_CANARY_MODEL_URI": f"runs:/{registered[name].run_id}/model",
                f"{name.upper()}_CANARY_TRAFFIC_PERCENT": "0",
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


@pytest.fixture
def mlp(mlflow_server: Server, capsys: pytest.CaptureFixture[str]) -> Callable[..., str]:
    """``mlp ARGS --tracking-uri <the test server>`` in this process; returns what it printed.

    In-process, each call skips the ~8 s of imports a new ``mlp`` process pays; the
    console script itself is run by test_unknown_service_is_a_clear_error and test_make_up.
    """

    def run(*args: str, status: int = 0) -> str:
        """What it printed: its output, or (``status`` expected not 0) its errors if any."""
        capsys.readouterr()
        returned = cli.main([*args, "--tracking-uri", mlflow_server.url])
        captured = capsys.readouterr()
        assert returned == status, captured.err[-3000:] or captured.out[-3000:]
        # A refusal says why on stderr; a command that ran and failed (a rolled-back rollout) on stdout.
        return captured.out if status == 0 else captured.err or captured.out

    return run


@pytest.fixture(scope="session")
def keyed_bankchurn(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    logs_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KeyedService]:
    """BankChurn served with a keys file of two clients, ``risk`` and ``loadtest``; JSON log lines."""
    keyed = start_keyed_service(
        "bankchurn",
        logs_dir,
        tmp_path_factory.mktemp("api-keys") / "keys",
        {
            "MLFLOW_TRACKING_URI": mlflow_server.url,
            "BANKCHURN_LOG_FORMAT": "json",
            "BANKCHURN_ACCESS_LOG": "all",
        },
        {"risk": None, "loadtest": None},
        label="bankchurn-keyed",
    )
    with serving(keyed):
        yield keyed
