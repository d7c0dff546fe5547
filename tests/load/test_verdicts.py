"""The load test's verdicts and the choice of its payloads, without a Locust run or a service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

import load.payloads
from bankchurn.data import generate_raw
from load.payloads import OTHER_DATA_DRIFT, TRAINING_ROWS_DRIFT, choose, payloads
from load.verdicts import Endpoint, endpoint_verdict, slo_verdict, thresholds, unanswered
from mixin.common import Objectives
from servekit import registry
from servekit.datasets import SHARED
from servekit.testing import http_stub, valid_requests
from servekit.training.fingerprint import sha256_of_frame
from servekit.training.trainer import TRAINING_ROWS, row_hashes, split, to_records

SLO = Objectives()


def test_p95_thresholds_name_the_typo() -> None:
    assert thresholds("predict=100, explain=300")["explain"] == 300.0
    with pytest.raises(ValueError, match="unknown kind 'predcit'"):
        thresholds("predcit=100")
    for typo in ("predict=abc", "predict", "predict=-5", "predict=nan"):
        with pytest.raises(ValueError, match=f"{typo!r} is not kind=milliseconds"):
            thresholds(typo)


def test_a_dead_endpoint_fails_however_fast_its_refusals() -> None:
    # Connection refused answers in no time: the p95 of a dead endpoint is fast.
    dead = Endpoint("nlpinsight /predict", 238, 216, 9.0, {9: 238})
    line, problems = endpoint_verdict(dead, 250.0, 0.001)
    assert line.endswith("FAILED")
    assert problems == [
        "nlpinsight /predict: 216 of 238 requests failed (90.8% > 0.10%; locust_failures.csv says why)"
    ]
    healthy = Endpoint("nlpinsight /predict", 238, 0, 9.0, {9: 238})
    assert endpoint_verdict(healthy, 250.0, 0.001) == (
        "nlpinsight /predict: 238 requests, 0 failed, p95 9 ms (limit 250) ok",
        [],
    )
    slow = Endpoint("nlpinsight /predict", 238, 0, 300.0, {300: 238})
    assert endpoint_verdict(slow, 250.0, 0.001)[1] == ["nlpinsight /predict: p95 300 ms > 250 ms"]


def test_an_endpoint_without_requests_is_a_problem() -> None:
    sent = [Endpoint("bankchurn /predict", 10, 0, 5.0, {5: 10})]
    problems = unanswered(["bankchurn /predict", "nlpinsight /predict"], sent)
    assert len(problems) == 1
    assert problems[0].startswith("nlpinsight /predict: no request was made")


def endpoints(fast: int, slow: int, explained_slow: int = 0) -> list[Endpoint]:
    return [
        Endpoint("chicagotaxi /predict", fast + slow, 0, 40.0, {5: fast, 69: slow}),
        Endpoint("chicagotaxi /predict?explain", 100, 0, 40.0, {5: 100 - explained_slow, 80: explained_slow}),
        Endpoint("chicagotaxi /predict/batch", 50, 0, 400.0, {400: 50}),  # not the SLO's endpoint
    ]


def verdict(found: list[Endpoint], enforce: bool = True) -> tuple[str, str | None]:
    result = slo_verdict(
        "chicagotaxi", found, SLO.latency_endpoint, SLO.latency_threshold, SLO.latency, enforce=enforce
    )
    assert result is not None
    return result


def test_the_latency_slo_counts_the_share_of_predict_requests_over_its_threshold() -> None:
    line, problem = verdict(endpoints(fast=298, slow=2))
    assert problem is None
    assert line == (
        "chicagotaxi /predict (explained too): 0.5% of 400 over 50 ms, budget 1% (SLO: 99% under 50 ms) ok"
    )
    # 69 ms at p99, as the probe measured: 3 % over 50 ms, three times the budget.
    line, problem = verdict(endpoints(fast=288, slow=6, explained_slow=6))
    assert line.endswith("OVER BUDGET")
    assert problem is not None
    assert "3.0% of requests over 50 ms burns the latency budget (1%) 3.0x as fast" in problem
    assert "LOADTEST_SLO=report" in problem
    line, problem = verdict(endpoints(fast=288, slow=6, explained_slow=6), enforce=False)
    assert problem is None
    assert "OVER BUDGET (reported only" in line
    # Too few requests to say anything of a 1 % budget.
    line, problem = verdict([Endpoint("chicagotaxi /predict", 20, 0, 80.0, {80: 20})])
    assert problem is None
    assert "too few requests to judge" in line
    # No /predict request at all (--tags batch): nothing to say.
    batch_only = [Endpoint("chicagotaxi /predict/batch", 50, 0, 400.0, {400: 50})]
    args = (SLO.latency_endpoint, SLO.latency_threshold, SLO.latency)
    assert slo_verdict("chicagotaxi", batch_only, *args, enforce=True) is None


@contextmanager
def service_saying(described: dict[str, Any]) -> Iterator[str]:
    """A stand-in service whose GET /model answers ``described``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps(described).encode()
            self.send_response(200 if self.path == "/model" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    with http_stub(Handler) as url:
        yield url


def test_auto_sends_data_like_the_served_models_training_data(tmp_path: Path) -> None:
    synthetic = {"version": "3", "data": {"source": "synthetic(rows=10000, seed=42)"}}
    with service_saying(synthetic) as host:
        mode, path, reason = choose("bankchurn", "auto", host)
        assert (mode, path) == ("synthetic", None)
        assert reason == "the served model (version 3) was trained on synthetic(rows=10000, seed=42)"
        sent = payloads("bankchurn", 20, mode="auto", host=host)
        assert sent.source == "synthetic"
        assert len(sent.rows) == 20
    real_file = tmp_path / "Churn_Modelling.csv"
    real_file.write_text("not read here\n")
    with service_saying({"version": "4", "data": {"source": str(real_file)}}) as host:
        assert choose("bankchurn", "auto", host) == (
            "real",
            real_file,
            f"the served model (version 4) was trained on {real_file}",
        )
    gone = tmp_path / "gone.csv"
    with service_saying({"version": "5", "data": {"source": str(gone)}}) as host:
        mode, path, reason = choose("bankchurn", "auto", host)
    shared = sorted((SHARED / "bankchurn").glob("*.csv"))
    assert (mode, path) == (("real", shared[0]) if shared else ("synthetic", None))
    assert "not found here" in reason
    # A model that does not say, or no service: real data when present, as before, and why.
    with service_saying({"version": "1"}) as host:
        mode, _, reason = choose("bankchurn", "auto", host)
    assert mode == ("real" if shared else "synthetic")
    assert "does not say what it was trained on" in reason
    # An explicit mode is followed, and an unknown one named.
    assert choose("bankchurn", "synthetic", None)[::2] == ("synthetic", "LOADTEST_DATA=synthetic")
    with pytest.raises(ValueError, match="LOADTEST_DATA='reall'"):
        choose("bankchurn", "reall", None)


def _logged_run(tmp_path: Path, seed: int, training_rows: Any) -> tuple[str, str]:
    """A run in a SQLite registry under ``tmp_path`` logged as ``mlp train`` logs one: its split seed,
    held-out share and training-row hashes. Its id and the registry's URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("bankchurn", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_param(run_id, "seed", seed)
    client.log_param(run_id, "test_size", registry.get_service("bankchurn").recipe.test_size)
    np.save(tmp_path / TRAINING_ROWS, training_rows)
    client.log_artifact(run_id, str(tmp_path / TRAINING_ROWS))
    return run_id, uri


def test_real_rows_are_the_served_models_held_out_rows_not_its_training_rows(tmp_path: Path) -> None:
    # NLPInsight trained on the real file, sent that file's rows (80 % of them training rows): its
    # text_known_word_share at a PSI of 0.9 against a baseline of held-out rows.
    spec = registry.get_service("bankchurn")
    trained_on = tmp_path / "churn.csv"
    generate_raw(400, seed=5).to_csv(trained_on, index=False)
    frame = spec.recipe.load_csv(trained_on)
    data = split(spec, frame, 7)
    run_id, uri = _logged_run(tmp_path, 7, row_hashes(data.x_train, data.y_train))
    described = {
        "version": "4",
        "run_id": run_id,
        "registry_uri": uri,
        "data": {"source": str(trained_on), "frame_sha256": sha256_of_frame(frame), "rows": len(frame)},
    }

    def key(row: dict[str, Any]) -> str:
        return json.dumps(row, sort_keys=True)

    held_out = {key(row) for row in valid_requests(spec, to_records(data.x_test))}
    with service_saying(described) as host:
        sent = payloads("bankchurn", 1000, mode="auto", host=host)
        assert {key(row) for row in sent.rows} == held_out
        assert sent.reason.endswith(f"the {len(data.x_test)} rows it held out of 400 (split seed 7)")

    # What cannot be matched is said, and the whole file sent, as before.
    other = tmp_path / "other.csv"
    generate_raw(400, seed=6).to_csv(other, index=False)
    with service_saying({**described, "data": {**described["data"], "source": str(other)}}) as host:
        sent = payloads("bankchurn", 1000, mode="auto", host=host)
    assert len(sent.rows) == len(
        valid_requests(spec, to_records(spec.recipe.features(spec.recipe.load_csv(other))))
    )
    # None of another file's rows is a training row: the warning is of data unlike its own.
    assert sent.reason == (
        f"the served model (version 4) was trained on {other}; every row of the file, not the data it was "
        "trained on (another frame_sha256 than it recorded), so none need be its training rows; "
        f"{OTHER_DATA_DRIFT} where the two differ"
    )
    assert "training rows included" not in sent.reason
    with service_saying({**described, "registry_uri": f"sqlite:///{tmp_path / 'gone.db'}"}) as host:
        reason = payloads("bankchurn", 1000, mode="auto", host=host).reason
    assert (
        f"every row of the file, training rows included (no split seed recorded: its run {run_id} cannot "
        "be read from the registry (no registry at" in reason
    )
    assert reason.endswith(TRAINING_ROWS_DRIFT)
    assert not (tmp_path / "gone.db").exists()
    # A seed that does not give the run's training rows (as another split function would not).
    wrong_id, wrong_uri = _logged_run(tmp_path / "wrong", 8, row_hashes(data.x_train, data.y_train))
    with service_saying({**described, "run_id": wrong_id, "registry_uri": wrong_uri}) as host:
        reason = payloads("bankchurn", 1000, mode="auto", host=host).reason
    assert (
        "every row of the file, training rows included (the split with seed 8 is not the one its run "
        f"logged (training_rows.npy)): {TRAINING_ROWS_DRIFT}" in reason
    )
    # The model's own word for its seed, where it gives one: no registry needed.
    with service_saying({**described, "run_id": "", "data": {**described["data"], "seed": 7}}) as host:
        sent = payloads("bankchurn", 1000, mode="auto", host=host)
    assert {key(row) for row in sent.rows} == held_out


def test_real_rows_sent_to_a_model_trained_on_synthetic_rows_are_said_to_be_none_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOADTEST_DATA=real against `make up`'s model warned of its training rows: none is here."""
    shared = tmp_path / "bankchurn"
    shared.mkdir()
    generate_raw(200, seed=5).to_csv(shared / "churn.csv", index=False)
    monkeypatch.setattr(load.payloads, "SHARED", tmp_path)
    source = "synthetic(rows=10000, seed=42)"
    described = {"version": "3", "data": {"source": source, "frame_sha256": "0" * 64, "seed": 42}}
    with service_saying(described) as host:
        sent = payloads("bankchurn", 1000, mode="real", host=host)
    assert sent.source == str((shared / "churn.csv").resolve())
    assert sent.reason == (
        f"LOADTEST_DATA=real; every row of the file, none of them its training rows (it was trained on "
        f"{source}): {OTHER_DATA_DRIFT}"
    )
    # No service to ask: nothing claimed of its training rows either way.
    assert payloads("bankchurn", 1000, mode="real").reason == (
        "LOADTEST_DATA=real; every row of the file (no service to ask what it was trained on, or held out)"
    )
