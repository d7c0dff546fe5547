"""The load test's verdicts and the choice of its payloads, without a Locust run or a service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

import load.payloads
from bankchurn.data import generate_raw
from load.payloads import (
    OTHER_DATA_DRIFT,
    REGISTRY_CREDENTIALS,
    TRAINING_ROWS_DRIFT,
    RefusalError,
    check_access,
    choose,
    payloads,
    server_message,
)
from load.verdicts import Endpoint, SuccessTimes, endpoint_verdict, slo_verdict, thresholds, unanswered
from mixin.common import Objectives
from servekit import registry
from servekit.testing import StubHandler, http_stub, new_tracking_database, valid_requests
from servekit.training.fingerprint import sha256_of_frame
from servekit.training.splitting import split, to_records
from servekit.training.training_rows import TRAINING_ROWS, row_hashes

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
        "chicagotaxi /predict (explained too): 0.5% of 400 successful requests over 50 ms, budget 1% "
        "(SLO: 99% under 50 ms) ok"
    )
    # 69 ms at p99, as the probe measured: 3 % over 50 ms, three times the budget.
    line, problem = verdict(endpoints(fast=288, slow=6, explained_slow=6))
    assert line.endswith("OVER BUDGET")
    assert problem is not None
    assert "3.0% of successful requests over 50 ms burns the latency budget (1%) 3.0x as fast" in problem
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


def test_the_latency_slo_is_judged_on_successful_requests_only() -> None:
    # Every request refused in no time (401, 429, 503): the SLO line said "ok".
    refused = [
        Endpoint("chicagotaxi /predict", 300, 300, 2.0, {}),
        Endpoint("chicagotaxi /predict?explain", 9, 9, 2.0, {}),
    ]
    for enforce in (True, False):
        line, problem = verdict(refused, enforce=enforce)
        assert line == "chicagotaxi /predict (explained too): no successful requests of 309 FAILED"
        assert problem == (
            "chicagotaxi /predict: no successful requests (of 309) to judge the latency SLO by "
            "(locust_failures.csv says why they failed)"
        )
    # 900 fast refusals and 100 answers, 5 of them slow: 5 % of the answers, not 0.5 % of all.
    diluted = [Endpoint("chicagotaxi /predict", 1000, 900, 3.0, {5: 95, 69: 5})]
    line, problem = verdict(diluted)
    assert line.startswith("chicagotaxi /predict (explained too): 5.0% of 100 successful requests over 50 ms")
    assert line.endswith("OVER BUDGET")
    assert problem is not None


def test_success_times_leave_the_failures_out() -> None:
    times = SuccessTimes(lambda ms: round(ms, -1) if ms >= 100 else round(ms))
    times.record("bankchurn /predict", 4.4, None)
    times.record("bankchurn /predict", 147.0, None)
    times.record("bankchurn /predict", 1.0, ConnectionError("401"))
    times.record("bankchurn /predict", None, None)  # Locust's "no response time"
    assert times.of("bankchurn /predict") == {4: 1, 150: 1}  # the failure's 1 ms left out
    assert times.of("nlpinsight /predict") == {}


@contextmanager
def service_saying(
    described: dict[str, Any], status: int = 200, predict: tuple[int, dict[str, Any]] = (200, {})
) -> Iterator[str]:
    """A stand-in service whose GET /model answers ``described`` with ``status``, and whose POST
    /predict answers ``predict``."""

    class Handler(StubHandler):
        def do_GET(self) -> None:
            self.answer(status if self.path == "/model" else 404, described)

        def do_POST(self) -> None:
            self.body()
            self.answer(*predict) if self.path == "/predict" else self.answer(404, {})

    with http_stub(Handler) as url:
        yield url


def test_auto_sends_data_like_the_served_models_training_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This machine's shared data sets, or their absence, decide nothing here.
    shared_dir = tmp_path / "shared"
    monkeypatch.setattr(load.payloads, "SHARED", shared_dir)
    monkeypatch.delenv("LOADTEST_ALLOW_SYNTHETIC", raising=False)
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
    # A model of a file not here: no synthetic rows (its drift alerts), the shared file if any.
    gone = tmp_path / "gone.csv"
    with service_saying({"version": "5", "data": {"source": str(gone)}}) as host:
        with pytest.raises(RefusalError, match=f"version 5\\) was trained on {gone}, not found here"):
            choose("bankchurn", "auto", host)
        (shared_dir / "bankchurn").mkdir(parents=True)
        shared = shared_dir / "bankchurn" / "churn.csv"
        shared.write_text("not read here\n")
        mode, path, reason = choose("bankchurn", "auto", host)
    assert (mode, path) == ("real", shared)
    assert reason.endswith("not found here: the shared file instead")
    # A model that does not say, or no service: real data when present, as before, and why.
    with service_saying({"version": "1"}) as host:
        mode, _, reason = choose("bankchurn", "auto", host)
    assert mode == "real"
    assert "does not say what it was trained on" in reason
    shared.unlink()
    with service_saying({"version": "1"}) as host:
        assert choose("bankchurn", "auto", host)[0] == "synthetic"
    # An explicit mode is followed, and an unknown one named.
    assert choose("bankchurn", "synthetic", None)[::2] == ("synthetic", "LOADTEST_DATA=synthetic")
    with pytest.raises(ValueError, match="LOADTEST_DATA='reall'"):
        choose("bankchurn", "reall", None)


def _logged_run(tmp_path: Path, seed: int, training_rows: Any) -> tuple[str, str]:
    """A run in a SQLite registry under ``tmp_path`` logged as ``mlp train`` logs one: its split seed,
    held-out share and training-row hashes. Its id and the registry's URI."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("bankchurn", artifact_location=(tmp_path / "artifacts").as_uri())
    run_id = client.create_run(experiment).info.run_id
    client.log_param(run_id, "seed", seed)
    client.log_param(run_id, "test_size", registry.get_service("bankchurn").recipe.test_size)
    np.save(tmp_path / TRAINING_ROWS, training_rows)
    client.log_artifact(run_id, str(tmp_path / TRAINING_ROWS))
    return run_id, uri


def test_real_rows_are_the_served_models_held_out_rows_not_its_training_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # NLPInsight trained on the real file, sent that file's rows (80 % of them training rows): its
    # text_known_word_share at a PSI of 0.9 against a baseline of held-out rows.
    # The run is read from the registry the model names, as where no registry of one's own is set
    # (the test session's MLflow server is, in MLFLOW_TRACKING_URI, and would be read first).
    for variable in ("MLFLOW_TRACKING_URI", *REGISTRY_CREDENTIALS):
        monkeypatch.delenv(variable, raising=False)
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


@contextmanager
def registry_recording(heard: list[str]) -> Iterator[str]:
    """A stand-in registry that answers every request with an empty object and keeps each
    request's ``Authorization`` header (empty when none) in ``heard``."""

    class Handler(StubHandler):
        def every(self) -> None:
            heard.append(self.headers.get("Authorization", ""))
            self.body()
            self.answer(200, {})

        do_GET = do_POST = every  # noqa: N815 (http.server's names)

    with http_stub(Handler) as url:
        yield url


def test_the_registry_token_goes_only_to_the_registry_it_is_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The served registry_uri was read before MLFLOW_TRACKING_URI, and MLflow sends the
    environment's token to any registry: a GET /model naming http://attacker got the token."""
    spec = registry.get_service("bankchurn")
    trained_on = tmp_path / "churn.csv"
    generate_raw(400, seed=5).to_csv(trained_on, index=False)
    frame = spec.recipe.load_csv(trained_on)
    data = split(spec, frame, 7)
    run_id, uri = _logged_run(tmp_path, 7, row_hashes(data.x_train, data.y_train))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "prod-secret-token")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    heard: list[str] = []
    with registry_recording(heard) as elsewhere:
        described = {
            "version": "4",
            "run_id": run_id,
            "registry_uri": elsewhere,
            "data": {"source": str(trained_on), "frame_sha256": sha256_of_frame(frame)},
        }
        with service_saying(described) as host:
            reason = payloads("bankchurn", 1000, mode="auto", host=host).reason
            assert heard == []
            assert (
                f"training rows included (no split seed recorded: its registry {elsewhere} is not read with "
                "MLFLOW_TRACKING_TOKEN set, which would be sent to it: set MLFLOW_TRACKING_URI to the "
                "registry those credentials are for)"
            ) in reason
            # The registry the token is for is read, whatever the model names: its held-out rows.
            monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
            sent = payloads("bankchurn", 1000, mode="auto", host=host)
            assert heard == []
            assert sent.reason.endswith(f"the {len(data.x_test)} rows it held out of 400 (split seed 7)")
            # No credentials at all: the model's own registry is asked, with nothing to give away.
            monkeypatch.delenv("MLFLOW_TRACKING_URI")
            monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
            payloads("bankchurn", 1000, mode="auto", host=host)
    assert heard
    assert set(heard) == {""}


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


def test_a_model_of_real_data_gets_no_synthetic_rows_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Load test workflow fetched no training data: a production model of real data was sent
    synthetic rows, with "expect drift alerts" as the only word, and its drift alerts fired."""
    monkeypatch.setattr(load.payloads, "SHARED", tmp_path / "shared")  # no real file of its own
    monkeypatch.delenv("LOADTEST_ALLOW_SYNTHETIC", raising=False)
    gone = "/runner/_temp/training-data/bankchurn.csv"
    with service_saying({"version": "7", "data": {"source": gone}}) as host:
        with pytest.raises(RefusalError) as refused:
            payloads("bankchurn", 20, mode="auto", host=host)
        said = str(refused.value)
        assert said.startswith(
            f"bankchurn: the served model (version 7) was trained on {gone}, not found here"
        )
        assert "LOADTEST_ALLOW_SYNTHETIC=1" in said
        assert "InputDrift, PredictionDrift and AttributionDrift alerts would fire" in said
        monkeypatch.setenv("LOADTEST_ALLOW_SYNTHETIC", "1")
        sent = payloads("bankchurn", 20, mode="auto", host=host)
    assert sent.source == "synthetic"
    assert sent.reason.endswith("synthetic rows (LOADTEST_ALLOW_SYNTHETIC=1): expect drift alerts")
    # A file that is there but cannot be used: no synthetic rows either.
    monkeypatch.delenv("LOADTEST_ALLOW_SYNTHETIC")
    broken = tmp_path / "churn.csv"
    broken.write_text("not,the,columns\n1,2,3\n")
    served = service_saying({"version": "8", "data": {"source": str(broken)}})
    with served as host, pytest.raises(RefusalError) as refused:
        payloads("bankchurn", 20, mode="auto", host=host)
    assert f"; but {broken} is unusable (" in str(refused.value)
    assert str(refused.value).endswith("or set LOADTEST_ALLOW_SYNTHETIC=1 to send synthetic rows anyway")
    # A model of synthetic data gets synthetic rows, as before; and so does an explicit mode.
    with service_saying({"version": "3", "data": {"source": "synthetic(rows=10, seed=42)"}}) as host:
        assert payloads("bankchurn", 20, mode="auto", host=host).source == "synthetic"
    with service_saying({"version": "7", "data": {"source": gone}}) as host:
        assert payloads("bankchurn", 20, mode="synthetic", host=host).source == "synthetic"


def test_a_refused_key_stops_the_load_test_naming_its_variable_and_the_services_reason() -> None:
    """Without the key, 256 requests answered 401 and the start line only said it "could not tell"
    what the model was trained on; with a read-only key every prediction was a bare 403."""
    missing = {"error": "unauthenticated", "message": "this endpoint needs an API key of this service: x"}
    with service_saying(missing, status=401) as host, pytest.raises(RefusalError) as refused:
        choose("bankchurn", "auto", host)
    assert str(refused.value) == (
        f"bankchurn: {host} refused GET /model (HTTP 401: this endpoint needs an API key of this service: "
        "x): LOADTEST_BANKCHURN_API_KEY is not set and the service asks for an API key: set it (mlp api-key "
        "loadtest); every request would be refused"
    )
    with service_saying(missing, status=401) as host, pytest.raises(RefusalError) as refused:
        choose("bankchurn", "auto", host, api_key="mlp_wrong")
    assert "LOADTEST_BANKCHURN_API_KEY is not a key of this service" in str(refused.value)
    # A read-only key reads GET /model; the first prediction tells.
    closed = {"error": "forbidden", "message": "this endpoint is closed to read-only keys: oncall's key"}
    with service_saying(
        {"version": "3", "data": {"source": "synthetic(rows=10, seed=42)"}}, predict=(403, closed)
    ) as host:
        assert choose("bankchurn", "auto", host, api_key="mlp_ro")[0] == "synthetic"
        with pytest.raises(RefusalError) as refused:
            check_access("bankchurn", host, "mlp_ro", {"CreditScore": 600})
    assert str(refused.value) == (
        f"bankchurn: {host} refused a prediction (HTTP 403: this endpoint is closed to read-only keys: "
        "oncall's key): LOADTEST_BANKCHURN_API_KEY may not predict (a read-only key, mlp api-key "
        "--read-only?): give it a key without a scope (mlp api-key loadtest); every request would be refused"
    )
    # Anything else is the run's to report: an invalid row, a failing service, nothing listening.
    for answer in ((200, {}), (422, {"message": "bad"}), (503, {"message": "not ready"})):
        with service_saying({}, predict=answer) as host:
            check_access("bankchurn", host, "", {})
    check_access("bankchurn", "http://127.0.0.1:9", "", {})


def test_a_failures_text_is_the_services_message() -> None:
    assert (
        server_message(422, b'{"error": "invalid_request", "message": "Age: too old"}')
        == "HTTP 422: Age: too old"
    )
    # Open Inference Protocol paths carry the message as "error".
    assert (
        server_message(400, '{"error": "no input named x", "code": "invalid"}')
        == "HTTP 400: no input named x"
    )
    assert server_message(502, "<html>\n Bad   gateway</html>") == "HTTP 502: <html> Bad gateway</html>"
    assert server_message(503, None) == "HTTP 503"
    # One failure row per request id would bury every other failure.
    many = [
        server_message(
            500, json.dumps({"message": f"the service failed; its log names the cause under request id {i}"})
        )
        for i in ("a1", "b2")
    ]
    assert many[0] == many[1] == "HTTP 500: the service failed; its log names the cause under request id <id>"
    assert len(server_message(400, "x" * 1000)) == len("HTTP 400: ") + 300


def test_a_kind_of_overload_is_one_failure_row_whatever_its_counts() -> None:
    """A full replica's 503 named how many instances it was predicting: a row of
    locust_failures.csv per count; a client's 429 likewise."""
    full = [
        server_message(
            503,
            json.dumps(
                {
                    "message": f"this replica is predicting {busy} instances in batches; {more} more would "
                    "pass its limit of 256 (BANKCHURN_MAX_CONCURRENT_INSTANCES)"
                }
            ),
        )
        for busy, more in ((200, 64), (240, 17))
    ]
    assert (
        full[0]
        == full[1]
        == (
            "HTTP 503: this replica is predicting <n> instances in batches; <n> more would pass its limit of "
            "<n> (BANKCHURN_MAX_CONCURRENT_INSTANCES)"
        )
    )
    client = "client loadtest2 has {} prediction requests in flight on this replica; retry in 1 s"
    assert (
        server_message(429, client.format(4))
        == server_message(429, client.format(5))
        == (
            "HTTP 429: client loadtest2 has <n> prediction requests in flight on this replica; retry in <n> s"
        )
    )
    # A client's mistake keeps its numbers: they are what it has to fix.
    assert server_message(422, '{"message": "Age: 200 is over 120"}') == "HTTP 422: Age: 200 is over 120"
