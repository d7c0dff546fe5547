"""`mlp serve` as a real process, loading from a real MLflow registry."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pytest

from processes import (
    Server,
    free_port,
    grpc_infer,
    infer_example,
    metric_value,
    predict_its_example,
    start_service,
    wait_until,
)
from registered import corrupt_copy, train_another_bankchurn
from servekit import http_client, registry
from servekit.loading import load_artifact
from servekit.routing import percentile_of
from servekit.testing import valid_requests
from servekit.training.splitting import to_records
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", registry.available())
def test_serves_the_champion_with_explanations(
    name: str, live_services: dict[str, Server], registered: dict[str, TrainResult]
) -> None:
    server = live_services[name]
    explained_before = explanations_total(server, name)
    model, response = predict_its_example(server.url, explain=True)
    assert model["version"] == registered[name].version
    assert model["run_id"] == registered[name].run_id
    body = response.json()
    assert body["model"]["version"] == registered[name].version
    explanation = body["explanation"]
    assert explanation["scale"]
    assert "explain;dur=" in response.headers["server-timing"]
    metrics = http_client.get(f"{server.url}/metrics").text
    assert (
        f'{name}_model_info{{run_id="{registered[name].run_id}",version="{registered[name].version}"}} 1.0'
        in metrics
    )
    assert explanations_total(server, name) == explained_before + 1
    # Its principal reasons over the wire: the explanation's three strongest inputs that argued for
    # the answer, in order (toward a label; either way for a fare).
    example = model["feature_schema"]["examples"][0]
    reasons = http_client.post(f"{server.url}/predict", params={"reasons": 3}, json=example).json()["reasons"]
    contributions = explanation["contributions"]
    toward = ANSWERED_TOWARD[name](body)
    assert [(r["field"], r["contribution"]) for r in reasons] == [
        (field, contributions[field])
        for field in sorted(contributions, key=lambda f: (-abs(contributions[f]), f))
        if toward == 0 or contributions[field] * toward > 0
    ][:3]


#: The sign of a contribution that argued for each service's answer (ServedModel.reasons_toward):
#: BankChurn's on the log-odds of churn, NLPInsight's on its label's logit; a fare has no direction.
ANSWERED_TOWARD: dict[str, Callable[[dict[str, Any]], int]] = {
    "bankchurn": lambda body: 1 if body["label"] == "churn" else -1,
    "nlpinsight": lambda body: 1,
    "chicagotaxi": lambda body: 0,
}


def explanations_total(server: Server, name: str) -> float:
    """The service's explanation counter (other tests share the server, so compare, never assume 0)."""
    return metric_value(server, f"{name}_explanations_total")


def test_a_challenger_in_the_shadow_is_compared_on_live_traffic_and_followed(
    mlflow_server: Server, registered: dict[str, TrainResult], logs_dir: Path, tmp_path: Path
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = registered["bankchurn"].version
    spec = registry.get_service("bankchurn")
    challenger = train_another_bankchurn(mlflow_server, tmp_path, seed=11)
    client.set_registered_model_alias("bankchurn", "shadowed", challenger.version)
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_MODEL_URI": f"models:/bankchurn/{champion}",
        "BANKCHURN_SHADOW_MODEL_URI": "models:/bankchurn@shadowed",
        "BANKCHURN_MODEL_REFRESH_SECONDS": "1",
    }
    server = start_service("bankchurn", logs_dir, env, label="bankchurn-shadow")
    try:
        server.wait_for("/readyz")
        wait_until(lambda: http_client.get(f"{server.url}/model").json()["shadow"]["ready"])
        shadow = http_client.get(f"{server.url}/model").json()["shadow"]
        assert shadow["version"] == challenger.version
        assert shadow["uri"] == "models:/bankchurn@shadowed"

        rows = to_records(spec.recipe.generate(200, 5).drop(columns=[spec.recipe.target]))
        rows = valid_requests(spec, rows)
        response = http_client.post(f"{server.url}/predict/batch", json={"instances": rows})
        assert response.status_code == 200, response.text
        answered = response.json()
        # Every instance is compared, off the request path: wait for the worker.
        compared = "bankchurn_shadow_predictions_total"
        wait_until(lambda: metric_value(server, compared) == len(rows), seconds=30)

        served = spec.model(load_artifact("bankchurn", f"models:/bankchurn/{champion}", mlflow_server.url))
        other = spec.model(
            load_artifact("bankchurn", f"models:/bankchurn/{challenger.version}", mlflow_server.url)
        )
        ours, theirs = served.predict(rows), other.predict(rows)
        assert [p["churn_probability"] for p in answered["predictions"]] == pytest.approx(
            [p["churn_probability"] for p in ours], rel=1e-9
        )  # the answers are the champion's alone
        disagreements = sum(a["label"] != b["label"] for a, b in zip(ours, theirs, strict=True))
        assert 0 < disagreements < len(rows)
        assert metric_value(server, compared, agree="false") == disagreements
        difference = sum(
            abs(a["churn_probability"] - b["churn_probability"]) for a, b in zip(ours, theirs, strict=True)
        )
        assert metric_value(server, "bankchurn_shadow_score_difference_sum") == pytest.approx(difference)

        # The shadow follows its alias; pointed at the served version it is skipped, not compared.
        client.set_registered_model_alias("bankchurn", "shadowed", champion)
        wait_until(lambda: http_client.get(f"{server.url}/model").json()["shadow"]["version"] == champion)
        http_client.post(f"{server.url}/predict/batch", json={"instances": rows[:10]})
        skipped = "bankchurn_shadow_skipped_total"
        wait_until(lambda: metric_value(server, skipped, reason="same_model") == 10, seconds=30)
        assert metric_value(server, compared) == len(rows)
        assert metric_value(server, "bankchurn_shadow_model_info", version=champion) == 1
    finally:
        server.stop()
        client.delete_registered_model_alias("bankchurn", "shadowed")
        if client.get_model_version_by_alias("bankchurn", "champion").version != champion:
            client.set_registered_model_alias("bankchurn", "champion", champion)


def test_a_canary_answers_its_share_until_mlp_canary_ends_it(
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    logs_dir: Path,
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    champion = registered["bankchurn"].version
    spec = registry.get_service("bankchurn")
    candidate = train_another_bankchurn(mlflow_server, tmp_path, seed=12).version
    started = mlp("canary", "bankchurn", candidate)
    assert f"canary is now v{candidate} (champion v{champion})" in started
    assert "`mlp canary bankchurn --end` rolls it back" in started
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_MODEL_URI": f"models:/bankchurn/{champion}",
        "BANKCHURN_CANARY_MODEL_URI": "models:/bankchurn@canary",
        "BANKCHURN_CANARY_TRAFFIC_PERCENT": "30",
        "BANKCHURN_MODEL_REFRESH_SECONDS": "1",
    }
    server = start_service("bankchurn", logs_dir, env, label="bankchurn-canary", grpc_port=free_port())
    try:
        server.wait_for("/readyz")
        wait_until(lambda: http_client.get(f"{server.url}/model").json()["canary"]["ready"])
        status = http_client.get(f"{server.url}/model").json()["canary"]
        assert (status["version"], status["receiving_percent"]) == (candidate, 30)

        models = {
            version: spec.model(load_artifact("bankchurn", f"models:/bankchurn/{version}", mlflow_server.url))
            for version in (champion, candidate)
        }
        rows = valid_requests(
            spec, to_records(spec.recipe.generate(120, 6).drop(columns=[spec.recipe.target]))
        )
        keys = [f"customer-{i}" for i in range(len(rows))]
        expected = [candidate if percentile_of(key) < 30 else champion for key in keys]
        assert 0 < expected.count(candidate) < len(rows)
        for row, key, version in zip(rows, keys, expected, strict=True):
            response = http_client.post(f"{server.url}/predict", json=row, headers={"X-Routing-Key": key})
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model"]["version"] == version
            assert body["churn_probability"] == pytest.approx(
                models[version].predict([row])[0]["churn_probability"], rel=1e-9
            )
        ok = "bankchurn_variant_requests_total"
        assert metric_value(server, ok, variant="canary", result="ok") == expected.count(candidate)
        assert metric_value(server, ok, variant="stable", result="ok") == expected.count(champion)
        # Over gRPC a pinned version is answered by the variant that serves it.
        tensors = infer_example(server.url)
        assert (
            grpc_infer(server, "bankchurn", {**tensors, "model_version": candidate}).model_version
            == candidate
        )

        # Ending the canary points it at the champion: every request is the champion's again.
        ended = mlp("canary", "bankchurn", "--end")
        assert f"canary is now v{champion}, the champion" in ended
        wait_until(lambda: http_client.get(f"{server.url}/model").json()["canary"]["version"] == champion)
        assert http_client.get(f"{server.url}/model").json()["canary"]["receiving_percent"] == 0
        moved = [key for key, version in zip(keys, expected, strict=True) if version == candidate]
        for key, row in zip(moved, rows, strict=False):
            response = http_client.post(f"{server.url}/predict", json=row, headers={"X-Routing-Key": key})
            assert response.json()["model"]["version"] == champion
    finally:
        server.stop()
        client.delete_registered_model_alias("bankchurn", "canary")


def serve_alias(alias: str, mlflow_server: Server, logs_dir: Path, **settings: str) -> Server:
    """``mlp serve bankchurn`` on ``models:/bankchurn@<alias>``, with ``BANKCHURN_<setting>`` values."""
    env = {
        "MLFLOW_TRACKING_URI": mlflow_server.url,
        "BANKCHURN_MODEL_URI": f"models:/bankchurn@{alias}",
        **{f"BANKCHURN_{name}": value for name, value in settings.items()},
    }
    return start_service("bankchurn", logs_dir, env, label=f"bankchurn-{alias}")


def test_missing_alias_keeps_the_service_alive_and_not_ready_until_it_appears(
    mlflow_server: Server, registered: dict[str, TrainResult], logs_dir: Path
) -> None:
    server = serve_alias("pending", mlflow_server, logs_dir, LOAD_RETRY_MAX_SECONDS="1")
    try:
        server.wait_for("/readyz", status=503, seconds=120)
        server.wait_for("/healthz")
        # The first answers come while the first attempt is still running (no error yet).
        wait_until(lambda: http_client.get(f"{server.url}/readyz").json()["error"] is not None)
        # The kind of failure, not its message: a probe answers anyone, and the message names the
        # registry's address; the log has it.
        reason = http_client.get(f"{server.url}/readyz").json()["error"]
        assert "(the registry holds no such model, version or alias); retrying" in reason
        assert "127.0.0.1" not in reason
        assert "pending" not in reason
        client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
        wait_until(lambda: "model load failed" in server.logs())
        failure = next(line for line in server.logs().splitlines() if "model load failed" in line)
        assert "models:/bankchurn@pending" in failure
        client.set_registered_model_alias("bankchurn", "pending", registered["bankchurn"].version)
        ready = server.wait_for("/readyz", seconds=60).json()
        assert ready["model"]["version"] == registered["bankchurn"].version
    finally:
        server.stop()
        client.delete_registered_model_alias("bankchurn", "pending")


def test_a_moved_alias_is_served_without_a_restart_and_a_broken_version_is_not(
    mlflow_server: Server, registered: dict[str, TrainResult], logs_dir: Path, tmp_path: Path
) -> None:
    client = mlflow.MlflowClient(mlflow_server.url, registry_uri=mlflow_server.url)
    first = client.get_model_version("bankchurn", registered["bankchurn"].version)
    second = client.copy_model_version(f"models:/bankchurn/{first.version}", "bankchurn")
    broken = corrupt_copy(client, first.version, tmp_path)
    client.set_registered_model_alias("bankchurn", "follow", first.version)
    server = serve_alias("follow", mlflow_server, logs_dir, MODEL_REFRESH_SECONDS="1")
    try:
        server.wait_for("/readyz", seconds=120)
        client.set_registered_model_alias("bankchurn", "follow", second.version)
        # Predictions go on while the new version loads; each is answered, by one version then the other.
        served: list[str] = []
        while not served or served[-1] != second.version:
            _, response = predict_its_example(server.url, explain=True)
            served.append(response.json()["model"]["version"])
            assert len(served) < 5000, "the service never switched to the version the alias points at"
        switch = served.index(second.version)
        assert set(served[:switch]) <= {first.version}
        assert set(served[switch:]) == {second.version}
        metrics = http_client.get(f"{server.url}/metrics").text
        assert f'version="{second.version}"' in metrics
        assert f'version="{first.version}"' not in metrics
        assert (
            f"model updated: bankchurn version {second.version} (run {first.run_id}) replaces "
            f"version {first.version}: models:/bankchurn@follow points at it now"
        ) in server.logs()

        client.set_registered_model_alias("bankchurn", "follow", broken.version)
        wait_until(lambda: "model refresh failed" in server.logs())
        failure = next(line for line in server.logs().splitlines() if "model refresh failed" in line)
        assert f"still serving version {second.version}; retrying version {broken.version} in" in failure
        assert f"models:/bankchurn/{broken.version}" in failure
        ready = server.wait_for("/readyz")
        assert ready.json()["model"]["version"] == second.version
        described = http_client.get(f"{server.url}/model").json()
        assert described["version"] == second.version
        assert f"retrying version {broken.version} in" in described["refresh"]["error"]
        _, response = predict_its_example(server.url, explain=False)
        assert response.json()["model"]["version"] == second.version
        metrics = http_client.get(f"{server.url}/metrics").text
        # One count per failed attempt, each also a log line. The retries come 0.5, 1, 2 s apart,
        # so on a busy machine a second one may fall between the first and this read.
        # Loading the version failed, not asking the registry: ModelRefreshFailing says which.
        [counted] = re.findall(
            r'^bankchurn_model_refresh_failures_total\{step="load"\} (\S+)$', metrics, re.MULTILINE
        )
        assert 'bankchurn_model_refresh_failures_total{step="alias"} 0.0' in metrics
        assert 1 <= float(counted) <= server.logs().count("model refresh failed")
        assert "bankchurn_model_refresh_failing 1.0" in metrics
    finally:
        server.stop()
        client.delete_registered_model_alias("bankchurn", "follow")


def test_registry_down_is_reported_in_one_json_line_per_attempt(logs_dir: Path) -> None:
    env = {
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}",
        "BANKCHURN_LOAD_RETRY_MAX_SECONDS": "1",
        "BANKCHURN_LOG_FORMAT": "json",  # as the Kubernetes base sets it
    }
    server = start_service("bankchurn", logs_dir, env, label="bankchurn-no-registry")
    try:
        server.wait_for("/healthz", seconds=120)
        wait_until(lambda: server.logs().count("model load failed") >= 2)
        readiness = http_client.get(f"{server.url}/readyz")
        assert readiness.status_code == 503
        assert "(the registry or the model's files could not be read" in readiness.json()["error"]
        assert "127.0.0.1" not in readiness.json()["error"]
        assert http_client.post(f"{server.url}/predict", json={}).status_code == 503
    finally:
        server.stop()
    # Every line is one JSON object, uvicorn's own included, so the cluster's log agent
    # indexes severity and fields without a parser.
    lines = [json.loads(line) for line in server.logs().splitlines()]
    assert any(line["message"].startswith("Uvicorn running on http://127.0.0.1") for line in lines)
    failures = [line for line in lines if "model load failed" in line["message"]]
    assert len(failures) >= 2
    assert all(line["severity"] == "ERROR" and line["logger"] == "servekit.runtime" for line in failures)
    assert {line["service"] for line in lines} == {"bankchurn"}
    assert all("request_id" not in line for line in failures)  # loading is no request's doing
