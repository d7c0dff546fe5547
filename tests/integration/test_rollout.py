"""``mlp rollout`` against a real registry, a real ``mlp serve`` and a real Prometheus scraping it."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlflow
import pytest

from mixin.local_prometheus import LOCAL_NAMESPACE, prometheus_config
from processes import Server, run_prometheus, start_service, wait_until
from registered import corrupt_copy, train_another_bankchurn
from servekit import http_client, registry
from servekit.prometheus import query
from servekit.routing import SHARE_TAG
from servekit.testing import valid_requests
from servekit.training.aliases import write_canary_share
from servekit.training.splitting import to_records
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration


@pytest.fixture
def watched(
    mlflow_server: Server, registered: dict[str, TrainResult], logs_dir: Path, tmp_path: Path
) -> Iterator[tuple[Server, Server]]:
    """BankChurn following its champion with half its requests for ``@canary``, under steady
    traffic, and a Prometheus scraping it every second."""
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_CANARY_MODEL_URI": "models:/bankchurn@canary",
        "BANKCHURN_CANARY_TRAFFIC_PERCENT": "50",
        "BANKCHURN_MODEL_REFRESH_SECONDS": "1",
        "BANKCHURN_LOAD_RETRY_MAX_SECONDS": "1",
    }
    server = start_service("bankchurn", logs_dir, env, label="bankchurn-rollout")
    # Labelled as the cluster's configuration labels the pods (service, namespace, pod), with the rules.
    targets = {"bankchurn": server.url.removeprefix("http://")}
    config = prometheus_config(targets, "1s")
    prometheus = run_prometheus(tmp_path, lambda _: config, name="prometheus-rollout")
    stop = threading.Event()
    traffic = threading.Thread(target=drive, args=(server, stop), daemon=True)
    try:
        server.wait_for("/readyz")
        prometheus.wait_for("/-/ready", seconds=60)
        traffic.start()
        # mlp rollout refuses a Prometheus without the service's canary series, which a Prometheus
        # just started has until its first scrape.
        counter = f'count(bankchurn_variant_requests_total{{namespace="{LOCAL_NAMESPACE}"}})'
        wait_until(lambda: query(prometheus.url, counter) is not None, seconds=60)
        yield server, prometheus
    finally:
        stop.set()
        if traffic.is_alive():  # not started when the server or Prometheus never came up
            traffic.join(10)
        prometheus.stop()
        server.stop()


def drive(server: Server, stop: threading.Event) -> None:
    """About a hundred predictions a second until ``stop``, half of them for the canary."""
    spec = registry.get_service("bankchurn")
    rows = valid_requests(spec, to_records(spec.recipe.generate(200, 8).drop(columns=[spec.recipe.target])))
    with http_client.client(base_url=server.url, timeout=10) as client:
        i = 0
        while not stop.wait(0.01):
            client.post("/predict", json=rows[i % len(rows)])
            i += 1


def test_a_sound_canary_is_promoted_after_its_readings(
    watched: tuple[Server, Server],
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    server, prometheus = watched
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = registered["bankchurn"].version
    candidate = train_another_bankchurn(mlflow_server, tmp_path, seed=13).version
    try:
        # A latency factor of 5: two models of the same shape on a busy 2-core host differ by
        # chance, the more so in one 4-s interval's p95; the latency rule itself is tested in
        # services/servekit/tests/test_rollout.py.
        output = mlp(
            "rollout", "bankchurn", candidate, "--prometheus", prometheus.url,
            "--interval", "4", "--steps", "3", "--min-requests", "20", "--latency-factor", "5",
            "--ramp", "20,50", "--match", f'namespace="{LOCAL_NAMESPACE}"',
        )  # fmt: skip
        assert f"bankchurn: canary is now v{candidate} (champion v{champion})" in output
        assert "send 20 % of their requests" in output
        assert "bankchurn: the canary's share is now 50 %" in output  # after the first reading
        readings = [line for line in output.splitlines() if f"rollout of v{candidate}, reading" in line]
        assert len(readings) == 3, output
        assert "canary 0 requests" not in readings[-1], output  # the canary answered
        assert f"v{candidate} passed 3 readings; promoting it" in output
        assert f"champion is now v{candidate} (was v{champion})" in output
        assert client.get_model_version_by_alias("bankchurn", "champion").version == candidate
        assert SHARE_TAG not in client.get_registered_model("bankchurn").tags  # the next starts afresh
        # The pods follow: every request is the new champion's.
        server.wait_for("/readyz")
        wait_for_version(server, candidate)
        # Rolling out the champion itself is refused before anything moves.
        again = mlp("rollout", "bankchurn", candidate, "--prometheus", prometheus.url, status=2)
        assert again == f"mlp: bankchurn v{candidate} is the champion already\n"
    finally:
        client.set_registered_model_alias("bankchurn", "champion", champion)
        client.delete_registered_model_alias("bankchurn", "canary")


def test_a_canary_that_never_loads_is_rolled_back_and_nothing_is_promoted(
    watched: tuple[Server, Server],
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    _, prometheus = watched
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = registered["bankchurn"].version
    broken = corrupt_copy(client, champion, tmp_path).version
    try:
        output = mlp(
            "rollout", "bankchurn", broken, "--prometheus", prometheus.url,
            "--interval", "3", "--steps", "2", "--min-requests", "20", "--load-timeout", "8",
            status=1,
        )  # fmt: skip
        # The pod's canary fails its first load, which it reports once its retry has polled the
        # alias (canary_refresh_failing): within the 8 s or not, as the machine's load decides.
        assert re.search(
            rf"bankchurn: rolling back v{broken}: the pods could not load it within 8 s \(no pod "
            r"serves a canary(, 1 report that their canary cannot follow its alias)?\)",
            output,
        ), output
        assert "reading 1/2" not in output  # nothing of it to judge
        assert f"canary is now v{champion}, the champion" in output
        assert client.get_model_version_by_alias("bankchurn", "champion").version == champion
        assert client.get_model_version_by_alias("bankchurn", "canary").version == champion
    finally:
        client.delete_registered_model_alias("bankchurn", "canary")


def test_a_version_the_pods_cannot_load_beside_a_running_canary_is_not_judged_on_its_answers(
    watched: tuple[Server, Server],
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    """The pods keep answering the canary's share with the canary they have: those answers were
    counted as the new version's, which was promoted without any pod having loaded it."""
    server, prometheus = watched
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = registered["bankchurn"].version
    running = train_another_bankchurn(mlflow_server, tmp_path, seed=15).version
    broken = corrupt_copy(client, champion, tmp_path).version
    try:
        client.set_registered_model_alias("bankchurn", "canary", running)
        wait_for_canary(server, lambda c: c["version"] == running)
        output = mlp(
            "rollout", "bankchurn", broken, "--prometheus", prometheus.url,
            "--interval", "3", "--steps", "2", "--min-requests", "20", "--load-timeout", "8",
            "--match", f'namespace="{LOCAL_NAMESPACE}"', status=1,
        )  # fmt: skip
        assert (
            f"bankchurn: rolling back v{broken}: the pods could not load it within 8 s (1 pod(s) "
            "still answer the canary's share with the version they had"
        ) in output, output
        assert "promoting" not in output
        assert client.get_model_version_by_alias("bankchurn", "champion").version == champion
    finally:
        client.delete_registered_model_alias("bankchurn", "canary")


def test_the_canarys_share_is_set_in_the_registry_and_the_pods_follow_it(
    watched: tuple[Server, Server],
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    """``mlp canary --percent`` moves the share of running pods without a restart, and ending the
    canary gives them back their own setting (50 % here)."""
    server, _ = watched
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    candidate = train_another_bankchurn(mlflow_server, tmp_path, seed=14).version
    try:
        output = mlp("canary", "bankchurn", candidate, "--percent", "100")
        assert "send 100 % of their requests to it" in output
        assert client.get_registered_model("bankchurn").tags[SHARE_TAG] == "100"
        listed = {row.split()[0]: row.split()[1] for row in mlp("versions", "bankchurn").splitlines()[2:]}
        assert "canary@100%" in listed[candidate].split(",")
        status = wait_for_canary(server, lambda c: c["version"] == candidate and c["traffic_percent"] == 100)
        assert (status["traffic_percent_from"], status["receiving_percent"]) == ("registry", 100)
        answered = {answered_by(server) for _ in range(20)}  # unkeyed: drawn at the share
        assert answered == {candidate}
        mlp("canary", "bankchurn", "--end")
        assert SHARE_TAG not in client.get_registered_model("bankchurn").tags
        status = wait_for_canary(server, lambda c: c["traffic_percent"] == 50)
        assert status["traffic_percent_from"] == "setting"
    finally:
        write_canary_share(client, "bankchurn", None)
        client.delete_registered_model_alias("bankchurn", "canary")


def wait_for_canary(
    server: Server, done: Callable[[dict[str, Any]], bool], seconds: float = 30
) -> dict[str, Any]:
    """``GET /model`` -> ``canary`` once ``done`` holds of it."""
    deadline = time.monotonic() + seconds
    while not done(status := http_client.get(f"{server.url}/model").json()["canary"]):
        assert time.monotonic() < deadline, f"the canary never got there: {status}"
        time.sleep(0.2)
    return status


def answered_by(server: Server) -> str:
    """The version that answered one unkeyed, unforced prediction."""
    spec = registry.get_service("bankchurn")
    features = spec.recipe.generate(1, 3).drop(columns=[spec.recipe.target])
    response = http_client.post(f"{server.url}/predict", json=valid_requests(spec, to_records(features))[0])
    assert response.status_code == 200, response.text
    return str(response.json()["model"]["version"])


def wait_for_version(server: Server, version: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while http_client.get(f"{server.url}/model").json()["version"] != version:
        assert time.monotonic() < deadline, f"the service never served v{version}"
        time.sleep(0.2)
