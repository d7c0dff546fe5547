"""Shadow scoring: a second model scores the served traffic off the request path, compared per instance."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from toy import FAILING_X, TOY, FailingToy, ToyModel

from servekit.capture import PredictionCapture
from servekit.metrics import MetricNames, ServiceMetrics
from servekit.metrics.shadow import ShadowMetrics
from servekit.model import ModelArtifact, Record
from servekit.rest import create_app
from servekit.runtime import Loaded, ModelRuntime
from servekit.settings import load_settings
from servekit.shadow import MAX_SHADOW_BATCH, ShadowScorer, score_difference
from servekit.testing import metric_sample, request_rows, train_in_memory, wait_loaded, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")


@pytest.fixture(scope="module")
def challenger() -> ModelArtifact:
    """Another toy model: other rows and seed, so its predictions differ from the served one's."""
    artifact, _ = train_in_memory(TOY, rows=300, seed=7)
    return dataclasses.replace(artifact, version="2", run_id="run-2")


def served_app(served: ModelArtifact, shadow: ModelArtifact | None, **settings: Any) -> TestClient:
    app = create_app(
        TOY,
        load_settings("toy", max_batch_size=64, **settings),
        source=lambda: served,
        shadow_source=(lambda: shadow) if shadow else None,
    )
    return TestClient(app)


@pytest.fixture
def shadowed(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact
) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    artifact, data = toy_trained
    with served_app(artifact, challenger) as client:
        wait_loaded(client, client.app.state.shadow.runtime)  # type: ignore[attr-defined]
        yield client, request_rows(data, 40)


def test_every_instance_is_compared_with_the_shadow_models_prediction(
    shadowed: tuple[TestClient, list[dict[str, Any]]],
    toy_trained: tuple[ModelArtifact, Split],
    challenger: ModelArtifact,
) -> None:
    client, rows = shadowed
    batch = client.post("/predict/batch", json={"instances": rows[:30]})
    singles = [client.post("/predict", json=row) for row in rows[30:]]
    assert batch.status_code == 200
    assert all(r.status_code == 200 for r in singles)
    assert client.app.state.shadow.drain()  # type: ignore[attr-defined]

    served, shadow = ToyModel(toy_trained[0]), ToyModel(challenger)
    ours, theirs = served.predict(rows), shadow.predict(rows)
    # The answers are the served model's alone.
    answered = [p["value"] for p in batch.json()["predictions"]] + [r.json()["value"] for r in singles]
    assert answered == pytest.approx([p["value"] for p in ours], rel=1e-12)
    pairs: dict[tuple[str, str], int] = {}
    for a, b in zip(ours, theirs, strict=True):
        key = (served.outcome(a), shadow.outcome(b))
        pairs[key] = pairs.get(key, 0) + 1
    assert len(pairs) > 1, "the two toy models should disagree on some rows for this test to mean much"
    for (outcome, shadow_outcome), count in pairs.items():
        agree = "true" if outcome == shadow_outcome else "false"
        labels = {"outcome": outcome, "shadow_outcome": shadow_outcome, "agree": agree}
        assert metric_sample(client, NAMES.shadow_predictions_total, **labels) == count
    differences = [abs(a["value"] - b["value"]) for a, b in zip(ours, theirs, strict=True)]
    assert metric_sample(client, f"{NAMES.shadow_score_difference}_count") == len(rows)
    assert metric_sample(client, f"{NAMES.shadow_score_difference}_sum") == pytest.approx(sum(differences))
    assert metric_sample(client, NAMES.shadow_model_info, version="2", run_id="run-2") == 1
    for reason in ("queue_full", "not_ready", "same_model", "canary", "failed"):
        assert metric_sample(client, NAMES.shadow_skipped_total, reason=reason) == 0


def test_explained_and_open_inference_requests_are_shadowed_too(
    shadowed: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, rows = shadowed
    assert client.post("/predict", params={"explain": "true"}, json=rows[0]).status_code == 200
    infer = {
        "inputs": [
            {"name": "x", "datatype": "FP64", "shape": [2], "data": [rows[1]["x"], rows[2]["x"]]},
            {
                "name": "color",
                "datatype": "BYTES",
                "shape": [2],
                "data": [rows[1]["color"], rows[2]["color"]],
            },
            {"name": "note", "datatype": "BYTES", "shape": [2], "data": ["", ""]},
        ]
    }
    assert client.post("/v2/models/toy/infer", json=infer).status_code == 200, "V2 request refused"
    assert client.app.state.shadow.drain()  # type: ignore[attr-defined]
    assert metric_sample(client, f"{NAMES.shadow_score_difference}_count") == 3


def test_model_describes_the_shadow(shadowed: tuple[TestClient, list[dict[str, Any]]]) -> None:
    client, _ = shadowed
    shadow = client.get("/model").json()["shadow"]
    assert shadow["version"] == "2"
    assert shadow["run_id"] == "run-2"
    assert shadow["ready"] is True
    assert shadow["sample_rate"] == 1.0
    assert shadow["max_pending"] == 10_000
    assert shadow["error"] is None


def test_without_a_shadow_model_there_are_no_shadow_series(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    with served_app(artifact, None) as client:
        wait_ready(client)
        assert client.post("/predict", json=request_rows(data, 1)[0]).status_code == 200
        assert client.get("/model").json()["shadow"] is None
        assert "_shadow_" not in client.get("/metrics").text


def test_during_a_canary_rollout_the_shadow_is_compared_with_the_stable_model_only(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact
) -> None:
    stable, data = toy_trained
    canary_artifact, _ = train_in_memory(TOY, rows=300, seed=11)
    canary_artifact = dataclasses.replace(canary_artifact, version="3", run_id="run-3")
    app = create_app(
        TOY,
        load_settings("toy", max_batch_size=64, canary_traffic_percent=0),
        source=lambda: stable,
        shadow_source=lambda: challenger,
        canary_source=lambda: canary_artifact,
    )
    rows = request_rows(data, 30)
    with TestClient(app) as client:
        wait_loaded(client, app.state.shadow.runtime)
        wait_loaded(client, app.state.canary.runtime)
        to_canary = client.post(
            "/predict/batch", json={"instances": rows[:12]}, headers={"X-Model-Variant": "canary"}
        )
        to_stable = client.post(
            "/predict/batch", json={"instances": rows[12:]}, headers={"X-Model-Variant": "stable"}
        )
        assert to_canary.json()["model"]["version"] == "3"
        assert to_stable.json()["model"]["version"] == "test"
        assert app.state.shadow.drain()

        assert metric_sample(client, NAMES.shadow_skipped_total, reason="canary") == 12
        assert metric_sample(client, f"{NAMES.shadow_score_difference}_count") == 18
        # The pairs are the stable model's outcomes against the shadow's, none of the canary's.
        served, shadow = ToyModel(stable), ToyModel(challenger)
        expected: dict[tuple[str, str], int] = {}
        for a, b in zip(served.predict(rows[12:]), shadow.predict(rows[12:]), strict=True):
            key = (served.outcome(a), shadow.outcome(b))
            expected[key] = expected.get(key, 0) + 1
        for (outcome, shadow_outcome), count in expected.items():
            agree = "true" if outcome == shadow_outcome else "false"
            labels = {"outcome": outcome, "shadow_outcome": shadow_outcome, "agree": agree}
            assert metric_sample(client, NAMES.shadow_predictions_total, **labels) == count


def test_the_served_version_itself_is_skipped_not_compared(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    with served_app(artifact, artifact) as client:  # champion == challenger after a winning retrain
        wait_loaded(client, client.app.state.shadow.runtime)  # type: ignore[attr-defined]
        assert client.post("/predict/batch", json={"instances": request_rows(data, 5)}).status_code == 200
        assert client.app.state.shadow.drain()  # type: ignore[attr-defined]
        assert metric_sample(client, NAMES.shadow_skipped_total, reason="same_model") == 5
        assert metric_sample(client, f"{NAMES.shadow_score_difference}_count") == 0


class CountingToy(ToyModel):
    calls: list[int]

    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        self.calls.append(len(records))
        return super().predict(records)


class FailingCountingToy(CountingToy, FailingToy):
    pass


def scorer_of(
    artifact: ModelArtifact, model_class: type[CountingToy] = CountingToy, **options: Any
) -> tuple[ShadowScorer, CountingToy, ShadowMetrics]:
    metrics = ShadowMetrics(NAMES, CollectorRegistry())
    runtime = ModelRuntime(model_class, lambda: artifact, metrics, role="shadow model")
    model = model_class(artifact)
    model.calls = []
    runtime.activate(Loaded(model, {}))
    return ShadowScorer(runtime, metrics, uri="memory://", **options), model, metrics


def test_a_failing_shadow_is_counted_and_logged_once_per_version(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    served = ToyModel(toy_trained[0])
    rows = [{"x": FAILING_X, "color": "red", "note": None}]
    scorer, _, metrics = scorer_of(challenger, FailingCountingToy)
    scorer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="servekit.shadow"):
            for _ in range(3):
                scorer.submit(served, rows, served.predict(rows))  # never raises into the request
                assert scorer.drain()
    finally:
        scorer.stop()
    assert skipped(metrics, "failed") == 3
    lines = [r.getMessage() for r in caplog.records if r.name == "servekit.shadow"]
    assert len(lines) == 1, lines  # once per version, not once per request
    assert "shadow model version 2 failed to predict" in lines[0]
    assert "RuntimeError: lookup table is empty" in lines[0]


def test_a_shadow_that_does_not_load_leaves_the_service_answering(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    artifact, data = toy_trained

    def unreachable() -> ModelArtifact:
        raise ConnectionError("registry unreachable")

    app = create_app(TOY, load_settings("toy"), source=lambda: artifact, shadow_source=unreachable)
    with TestClient(app) as client, caplog.at_level(logging.ERROR, logger="servekit.runtime"):
        wait_ready(client)
        assert client.get("/readyz").status_code == 200
        assert client.post("/predict", json=request_rows(data, 1)[0]).status_code == 200
        assert client.app.state.shadow.drain()  # type: ignore[attr-defined]
        assert metric_sample(client, NAMES.shadow_skipped_total, reason="not_ready") == 1
        shadow = client.get("/model").json()["shadow"]
    assert shadow["ready"] is False
    assert "ConnectionError: registry unreachable" in shadow["error"]
    assert "shadow model load failed (attempt 1" in caplog.text


def test_only_the_captured_requests_shadow_answers_are_captured(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact
) -> None:
    served = ToyModel(toy_trained[0])
    rows = request_rows(toy_trained[1], 4)
    written: list[tuple[str, str, str, int, list[float]]] = []

    class Capture(PredictionCapture):
        def shadowed(self, model: Any, routed: str, request_id: str, records: Any, predictions: Any) -> int:
            values = [p["value"] for p in predictions]
            written.append((model.artifact.version, routed, request_id, len(records), values))
            return len(records)

    capture = Capture(100, log_format="json", on_captured=lambda _: None)
    scorer, shadow, _ = scorer_of(challenger, capture=capture)
    scorer.submit(served, rows[:2], served.predict(rows[:2]), captured_as=("r-1", "drawn"))
    scorer.submit(served, rows[2:3], served.predict(rows[2:3]))  # its served answers not captured
    scorer.submit(served, rows[3:], served.predict(rows[3:]), captured_as=("r-3", "fallback"))
    scorer.start()
    try:
        assert scorer.drain()
    finally:
        scorer.stop()
    assert shadow.calls == [4]  # one call for the three requests, the uncaptured one too
    theirs = [p["value"] for p in ToyModel(challenger).predict(rows)]
    assert written == [("2", "drawn", "r-1", 2, theirs[:2]), ("2", "fallback", "r-3", 1, theirs[3:])]


def skipped(metrics: ShadowMetrics, reason: str) -> float:
    return metrics.skipped.labels(reason=reason)._value.get()


def test_queued_requests_are_scored_in_one_call_and_a_full_queue_skips(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact
) -> None:
    artifact, data = toy_trained
    served = ToyModel(artifact)
    rows = request_rows(data, 10)
    scorer, shadow, metrics = scorer_of(challenger, max_pending=30)
    # Not started: requests wait in the queue, as they do while the worker is busy.
    for _ in range(3):
        scorer.submit(served, rows, served.predict(rows))
    scorer.submit(served, rows, served.predict(rows))  # 40 > 30: skipped, not queued
    assert skipped(metrics, "queue_full") == 10
    scorer.start()
    try:
        assert scorer.drain()
    finally:
        scorer.stop()
    assert shadow.calls[-1] == 30  # three requests, one call to the model
    assert metrics.score_difference._sum.get() > 0  # type: ignore[attr-defined]


def test_the_worker_takes_at_most_a_batch_limit(
    challenger: ModelArtifact, toy_trained: tuple[ModelArtifact, Split]
) -> None:
    served = ToyModel(toy_trained[0])
    row = {"x": 1.0, "color": "blue", "note": None}
    scorer, shadow, _ = scorer_of(challenger, max_pending=3 * MAX_SHADOW_BATCH)
    records = [row] * (MAX_SHADOW_BATCH // 2 + 1)
    for _ in range(3):
        scorer.submit(served, records, served.predict(records))
    scorer.start()
    try:
        assert scorer.drain()
    finally:
        scorer.stop()
    # Two requests would exceed the limit, so each is scored on its own.
    assert shadow.calls[-3:] == [len(records)] * 3


def test_sampling_and_a_shadow_not_loaded_yet(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact
) -> None:
    served = ToyModel(toy_trained[0])
    rows = request_rows(toy_trained[1], 4)
    draws = iter([0.9, 0.1])
    scorer, shadow, metrics = scorer_of(challenger, sample_rate=0.5, draw=lambda: next(draws))
    scorer.submit(served, rows, served.predict(rows))  # 0.9 >= 0.5: not sampled
    scorer.submit(served, rows, served.predict(rows))  # 0.1: sampled
    scorer.runtime.model = None  # as before the shadow has loaded
    scorer.start()
    try:
        assert scorer.drain()
    finally:
        scorer.stop()
    assert skipped(metrics, "not_ready") == 4  # the sampled request only
    assert shadow.calls == []


@pytest.mark.parametrize(
    ("served", "shadow", "expected"),
    [
        ({"p": 0.2}, {"p": 0.5}, 0.3),
        ({"a": 0.2, "b": 0.8}, {"a": 0.1, "b": 0.9}, 0.1),
        ({"a": 1.0}, {"b": 1.0}, None),
        ({}, {}, None),
    ],
)
def test_score_difference_is_the_largest_over_shared_scores(
    served: dict[str, float], shadow: dict[str, float], expected: float | None
) -> None:
    got = score_difference(served, shadow)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_service_metrics_and_shadow_metrics_share_one_exposition(challenger: ModelArtifact) -> None:
    metrics = ServiceMetrics("toy")
    shadow = ShadowMetrics(metrics.names, metrics.registry)
    shadow.model_served(ToyModel(challenger), {})
    text = metrics.exposition().decode()
    assert 'toy_shadow_model_info{run_id="run-2",version="2"} 1.0' in text
    assert 'toy_shadow_skipped_total{reason="queue_full"} 0.0' in text


def test_a_shadow_whose_alias_is_deleted_ends_until_it_names_a_version_again(
    toy_trained: tuple[ModelArtifact, Split], challenger: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    """It kept scoring with the deleted version, warning at every refresh, as if still asked for;
    the canary in the same case ends."""
    from servekit.loading import ModelLoadError

    alias: dict[str, str | None] = {"version": "2"}

    def probe() -> str:
        if alias["version"] is None:
            raise ModelLoadError("resolving models:/toy@challenger: alias challenger not found", missing=True)
        return alias["version"]

    registry = CollectorRegistry()
    metrics = ShadowMetrics(NAMES, registry)
    runtime = ModelRuntime(
        ToyModel,
        lambda: dataclasses.replace(challenger, version=probe(), run_id=f"run-{probe()}"),
        metrics,
        probe=probe,
        refresh_interval=10,
        role="shadow model",
    )
    scorer = ShadowScorer(runtime, metrics, uri="models:/toy@challenger")
    asyncio.run(runtime.load_until_ready())
    assert registry.get_sample_value(NAMES.shadow_model_info, {"version": "2", "run_id": "run-2"}) == 1
    alias["version"] = None
    # The load's own line is caught too where an earlier test in this process left INFO on.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="servekit.runtime"):
        for _ in range(3):
            asyncio.run(runtime.refresh())
    said = [r.message for r in caplog.records if "shadow model" in r.message]
    assert len(said) == 1, said  # once, not at every refresh
    assert said[0].startswith("shadow model ended: version 2 is no longer served")
    assert runtime.model is None
    assert registry.get_sample_value(NAMES.shadow_model_info, {"version": "2", "run_id": "run-2"}) is None
    status = scorer.status()
    assert (status["version"], status["ready"]) == (None, False)
    assert status["error"].startswith("its alias names no version any more (ModelLoadError: resolving")
    # Nothing is sampled for a shadow that ended: not skipped as "not ready", which it is not.
    served = ToyModel(toy_trained[0])
    rows = request_rows(toy_trained[1], 4)
    scorer.submit(served, rows, served.predict(rows))
    assert scorer._pending_instances == 0
    assert skipped(metrics, "not_ready") == 0
    alias["version"] = "3"  # a new challenger: compared again
    asyncio.run(runtime.refresh())
    assert runtime.model is not None
    assert runtime.model.artifact.version == "3"
    assert registry.get_sample_value(NAMES.shadow_model_info, {"version": "3", "run_id": "run-3"}) == 1
    scorer.submit(served, rows, served.predict(rows))
    assert scorer._pending_instances == 4
