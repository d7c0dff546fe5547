"""The benchmark's load generator against a live service: it counts what it sent and what failed."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from processes import KeyedService, Server
from servekit import http_client, registry
from servekit.bench import cpu, fairness, load, scaling, soak
from servekit.settings import load_settings
from servekit.testing import request_rows, valid_requests
from servekit.training.splitting import split
from servekit.training.trainer import TrainResult

pytestmark = pytest.mark.integration


def test_load_generator_measures_a_live_service(live_services: dict[str, Server]) -> None:
    server = live_services["bankchurn"]
    example = http_client.get(f"{server.url}/model").json()["feature_schema"]["examples"][0]
    good = load.post_requests("127.0.0.1", server.port, "/predict", [example])
    result = load.run("127.0.0.1", server.port, good, concurrency=2, seconds=1.0, warmup=0.2)
    assert result.requests > 10
    assert result.errors == 0
    assert 0 < result.latency.p50_ms <= result.latency.p99_ms
    assert result.requests_per_second == pytest.approx(result.requests / result.seconds)


def test_load_generator_counts_non_200_answers_as_errors(live_services: dict[str, Server]) -> None:
    server = live_services["bankchurn"]
    bad = load.post_requests("127.0.0.1", server.port, "/predict", [{"unexpected": 1}])
    result = load.run("127.0.0.1", server.port, bad, concurrency=1, seconds=0.5, warmup=0.0)
    assert result.requests > 0
    assert result.errors == result.requests


def test_scaling_rows_read_the_replicas_own_counters(live_services: dict[str, Server]) -> None:
    """CPU and prediction concurrency come from the replica's /metrics, a row per offered load."""
    server = live_services["bankchurn"]
    example = http_client.get(f"{server.url}/model").json()["feature_schema"]["examples"][0]
    explained = load.post_requests("127.0.0.1", server.port, "/predict?explain=true", [example])
    before = scaling.read(server.url, "bankchurn")
    rows = scaling.measure(
        server.url,
        "bankchurn",
        explained,
        capacity=200,
        seconds=1.0,
        deadline=1.0,
        fractions=(0.5,),
        contended=0.5,
    )
    after = scaling.read(server.url, "bankchurn")
    quiet, contended = rows
    assert (quiet["neighbours_spinning"], contended["neighbours_spinning"]) == (0, os.cpu_count())
    for row in rows:
        assert row["fraction_of_capacity"] == 0.5
        assert row["failed"] == row["shed"] == 0
        assert row["goodput_per_second"] == pytest.approx(100, rel=0.1)
        assert 0 < row["cpu_cores"] <= (os.cpu_count() or 1)
        # By Little's law, the mean number of requests in the app: never more than the clients had
        # waiting, the answers a second times their mean wait (the app's time is part of it). How
        # far below depends on the CPU the replica got: not a bound to test.
        waiting = row["goodput_per_second"] * row["answered_mean_ms"] / 1000
        assert 0 < row["prediction_concurrency"] <= 1.05 * waiting + 0.01
    assert after.cpu_seconds > before.cpu_seconds
    assert after.prediction_seconds > before.prediction_seconds
    # The spinning processes are gone.
    assert not spinning_processes()


def spinning_processes() -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if cmdline.read_bytes().endswith(b"while True: pass\0"):
                found.append(cmdline.parent.name)
        except OSError:  # ended while we looked
            pass
    return found


def test_the_soak_mix_gets_the_status_it_expects_from_a_live_service(
    live_services: dict[str, Server],
) -> None:
    """Every kind of request in the mix, errors included, answered as the soak counts it; memory read."""
    server = live_services["bankchurn"]
    spec = registry.get_service("bankchurn")
    data = split(spec, spec.recipe.generate(600, seed=3), seed=3)
    kinds = soak.mix(
        spec, valid_requests(spec, request_rows(data, 120)), load_settings("bankchurn").max_batch_size
    )
    result = soak.soak(server, kinds, seconds=2.0, warmup=0.5, concurrency=2, interval=0.2)
    assert result["load"]["requests"] > 50
    assert result["load"]["errors"] == 0
    assert set(result["mix"]) == {kind.label for kind in kinds}
    memory = result["memory"]
    assert 50 < memory["start_mib"] <= memory["peak_mib"] < soak.MEMORY_LIMIT_BYTES / 2**20
    assert memory["seconds"] >= 1.0
    # A wrong expectation is named before the soak, by its kind.
    wrong = dataclasses.replace(kinds[0], status=422)
    with pytest.raises(AssertionError, match="predict: POST /predict got 200, not 422"):
        soak.check_statuses(server.url, [wrong])


def test_beside_a_runaway_client_the_steady_one_is_never_refused_under_the_client_limit(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path: Path
) -> None:
    spec = registry.get_service("bankchurn")
    data = split(spec, spec.recipe.generate(600, seed=3), seed=3)
    records = valid_requests(spec, request_rows(data, 256))
    measured = fairness.measure(
        spec,
        mlflow_server,
        tmp_path,
        steady_records=records,
        runaway_bodies=[{"instances": batch} for batch in load.batches(records, 64)],
        runaway_path="/predict/batch?explain=true",
        # Measured here: a fixed rate under what a fast host answers never overloads it.
        capacity=None,
        seconds=1.5,
    )
    limited, unlimited = measured[fairness.WITH_LIMIT], measured[fairness.WITHOUT_LIMIT]
    assert measured["runaway_rate"] == pytest.approx(
        fairness.RUNAWAY_FACTOR * measured["capacity_per_second"], abs=0.2
    )
    assert (limited["client_limit"], unlimited["client_limit"]) == (12, 0)
    steady = limited[fairness.STEADY]
    assert steady["sent"] >= 25
    # The runaway holds at most 12 of the 16 places, so the steady client finds one unless it has
    # 4 requests in flight itself (each over 150 ms late, at 20 a second), and it never has 12.
    assert steady["failures"] == {}
    assert steady["shed"] <= steady["sent"] // 10
    assert steady["answered"] + steady["late"] + steady["shed"] == steady["sent"]
    # The replica refuses the runaway with 429, its own share named, and never the steady client;
    # the runaway sees nothing else. Its own count, since on a starved host the runaway may have
    # hung up on every 429 it was sent.
    replica_counted = limited["replica_counted"]
    assert replica_counted.get(fairness.RUNAWAY, {}).get("429", 0) > 0, limited
    assert "429" not in replica_counted.get(fairness.STEADY, {}), limited
    assert set(limited[fairness.RUNAWAY]["failures"]) <= {"HTTP 429"}, limited
    assert all("429" not in counted for counted in unlimited["replica_counted"].values()), unlimited


def test_the_keyed_soak_mix_gets_the_status_it_expects_from_a_service_with_keys(
    keyed_bankchurn: KeyedService,
) -> None:
    spec = registry.get_service("bankchurn")
    data = split(spec, spec.recipe.generate(600, seed=3), seed=3)
    records = valid_requests(spec, request_rows(data, 120))
    limit = load_settings("bankchurn").max_batch_size
    kinds = soak.mix(spec, records, limit, key=keyed_bankchurn.keys["loadtest"])
    soak.check_statuses(keyed_bankchurn.server.url, kinds)
    # And without the key, what needed it is refused: the keyed mix is not passing by accident.
    unkeyed = soak.mix(spec, records, limit)
    with pytest.raises(AssertionError, match="predict: POST /predict got 401, not 200"):
        soak.check_statuses(keyed_bankchurn.server.url, unkeyed)


def test_make_soak_serves_everything_on_behind_api_keys_and_counts_every_status(tmp_path: Path) -> None:
    """The whole command on a short run: its own MLflow, the variants and keys on, the report."""
    output = tmp_path / "soak.json"
    soak.main(["--services", "bankchurn", "--seconds", "7", "--warmup", "1", "--output", str(output)])
    result = json.loads(output.read_text())["services"]["bankchurn"]
    assert result["settings"]["API_KEYS_FILE"]
    assert result["mix"]["no API key"]["status"] == result["mix"]["revoked key"]["status"] == 401
    assert result["load"]["requests"] > 100
    assert result["load"]["errors"] == 0  # the leak verdict of 7 s means nothing; the statuses do


def test_cpu_per_prediction_is_the_replicas_own_cpu_over_the_predictions_it_answered(
    live_services: dict[str, Server],
) -> None:
    """``make cost``'s figure: the served process's CPU (its /metrics) divided by rows answered."""
    server = live_services["bankchurn"]
    spec = registry.get_service("bankchurn")
    records = valid_requests(spec, request_rows(split(spec, spec.recipe.generate(600, seed=3), seed=3), 64))
    single = cpu.cpu_per_prediction(
        server.url, "bankchurn", cpu.Kind("predict", "/predict", 1, 100.0), records, seconds=1.5
    )
    batch = cpu.cpu_per_prediction(
        server.url, "bankchurn", cpu.Kind("batch", "/predict/batch", 16, 10.0), records, seconds=1.5
    )
    assert single["predictions"] == pytest.approx(150, abs=2)
    assert batch["predictions"] in (16 * 14, 16 * 15, 16 * 16)  # rows, not requests
    for row in (single, batch):
        assert row["cpu_ms_per_prediction"] == pytest.approx(
            1000 * row["cpu_seconds"] / row["predictions"], rel=0.01
        )
        assert 0 < row["cores"] < (os.cpu_count() or 1)
    # A batch shares one request's parsing, validation and model call among its rows.
    assert batch["cpu_ms_per_prediction"] < single["cpu_ms_per_prediction"]


def test_cpu_per_prediction_refuses_a_load_the_replica_did_not_answer(
    live_services: dict[str, Server],
) -> None:
    """A rejected request used CPU without a prediction: the figure would be wrong, so there is none."""
    server = live_services["bankchurn"]
    with pytest.raises(
        RuntimeError, match=r"bankchurn predict: 20 of 20 requests were not answered.*HTTP 422"
    ):
        cpu.cpu_per_prediction(
            server.url,
            "bankchurn",
            cpu.Kind("predict", "/predict", 1, 20.0),
            [{"unexpected": 1}],
            seconds=1.0,
        )


def test_make_costs_measurement_gives_each_kind_its_cpu_and_the_bytes_a_captured_answer_logs(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cpu.measure`` on a served champion, at rates low enough to be answered on a busy host (the
    figure is refused otherwise): each kind's CPU, and the log bytes ``k8s/cost.py`` prices."""
    kinds = (
        cpu.Kind("predict", "/predict", 1, 20.0),
        cpu.Kind("predict+explain", "/predict?explain=true", 1, 10.0),
        cpu.Kind("explained batches of 8, per row", "/predict/batch?explain=true", 8, 2.0),
    )
    monkeypatch.setattr(cpu, "KINDS", kinds)
    # A service setting exported by the caller reaches neither replica (the capture would cost CPU).
    monkeypatch.setenv("BANKCHURN_CAPTURE_PERCENT", "100")
    figures, servers = cpu.measure(
        registry.get_service("bankchurn"),
        mlflow_server,
        tmp_path,
        seconds=1.0,
        repeats=1,
        shadow_run_id=registered["bankchurn"].run_id,
    )
    assert list(figures) == [kind.label for kind in kinds]
    for row in figures.values():
        assert row["runs"] == 1
        assert row["cpu_ms_per_prediction"] > 0
        # The same kind on a replica with the champion's run as its shadow on every request.
        assert row[cpu.WITH_SHADOW]["runs"] == 1
        assert row[cpu.WITH_SHADOW]["cpu_ms_per_prediction"] > 0
        assert row[cpu.WITH_SHADOW]["shadow_sample_rate"] == 1.0
    settings = {label: server["settings"] for label, server in servers.items()}
    assert settings["alone"] == {"BANKCHURN_LOG_LEVEL": "WARNING"}
    assert (
        settings[cpu.WITH_SHADOW]["BANKCHURN_SHADOW_MODEL_URI"]
        == f"runs:/{registered['bankchurn'].run_id}/model"
    )
    assert "BANKCHURN_CAPTURE_PERCENT" not in {**settings["alone"], **settings[cpu.WITH_SHADOW]}
    assert servers[cpu.WITH_SHADOW]["shadow_counted"]["compared"] > 0
    plain, explained, batched = (figures[kind.label]["capture_bytes_per_prediction"] for kind in kinds)
    # A captured line holds the inputs and the answer (some 600 bytes), and its explanation (400 more).
    assert 300 < plain < explained < 3000
    assert batched == pytest.approx(explained, abs=20)  # the same lines, placed in their batch
