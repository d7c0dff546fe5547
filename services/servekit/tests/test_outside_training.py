"""Answers that say which inputs were outside the training rows' range, and the metric counting them."""

from __future__ import annotations

import copy
import dataclasses

import orjson
import pytest
from fastapi.testclient import TestClient
from toy import TOY, ToyModel

from servekit.codecs.open_inference import OpenInferenceCodec
from servekit.inference import run_model
from servekit.metrics import ServiceMetrics
from servekit.model import ModelArtifact
from servekit.training.splitting import Split

COUNTED = "toy_inputs_outside_training_total"


def ranges(artifact: ModelArtifact) -> dict[str, tuple[float, float]]:
    described = TOY.model(artifact).describe()["baselines"]["training_ranges"]
    return {column: (item["min"], item["max"]) for column, item in described.items()}


def test_get_model_states_each_columns_training_range(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, split = toy_trained
    described = TOY.model(artifact).describe()["baselines"]["training_ranges"]
    # The rows the pipeline was fitted on: the training part of the split, not the held-out rows.
    x = split.x_train["x"]
    assert described["x"] == {"field": "x", "min": x.min(), "max": x.max()}
    assert described["x_squared"] == {"field": "x", "min": x.min() ** 2, "max": x.max() ** 2}
    assert "color" not in described


def test_an_answer_lists_its_inputs_outside_and_the_metric_counts_each_field_once(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    low, high = ranges(artifact)["x"]
    # The request allows 0 to 10: both ends lie outside.
    assert low > 0
    assert high < 10
    metrics = ServiceMetrics("toy")
    metrics.model_served(TOY.model(artifact), {})
    assert metrics.registry.get_sample_value(COUNTED, {"feature": "x"}) == 0  # before any answer
    records = [{"x": 5.0, "color": "red", "note": None}, {"x": 10.0, "color": "blue", "note": None}]
    inside, above = run_model(TOY.model(artifact), records, explain=False, metrics=metrics)
    assert inside["outside_training"] == []
    assert above["outside_training"] == [
        {"field": "x", "column": "x", "value": 10.0, "training_min": low, "training_max": high},
        {
            "field": "x",
            "column": "x_squared",
            "value": 100.0,
            "training_min": low**2,
            "training_max": high**2,
        },
    ]
    # One answer with x outside, though two of its columns were.
    assert metrics.registry.get_sample_value(COUNTED, {"feature": "x"}) == 1


def test_the_answer_over_http_and_its_schema(toy_client: TestClient) -> None:
    body = toy_client.post("/predict", json={"x": 0.0, "color": "red"}).json()
    assert [item["column"] for item in body["outside_training"]] == ["x", "x_squared"]
    batch = toy_client.post("/predict/batch", json={"instances": [{"x": 5.0, "color": "red"}]}).json()
    assert batch["predictions"][0]["outside_training"] == []
    schemas = toy_client.get("/openapi.json").json()["components"]["schemas"]
    assert "outside_training" in schemas["ToyPredictionResponse"]["properties"]
    assert set(schemas["OutsideTrainingBody"]["required"]) == {
        "field",
        "column",
        "value",
        "training_min",
        "training_max",
    }
    metrics = toy_client.get("/metrics").text
    assert f'{COUNTED}{{feature="x"}} 1.0' in metrics


def test_the_open_inference_output_is_the_same_document(toy_client: TestClient) -> None:
    inputs = [
        {"name": "x", "datatype": "FP64", "shape": [2], "data": [5.0, 10.0]},
        {"name": "color", "datatype": "BYTES", "shape": [2], "data": ["red", "red"]},
    ]
    response = toy_client.post("/v2/models/toy/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    documents = [orjson.loads(d) for d in outputs["outside_training"]["data"]]
    single = toy_client.post("/predict", json={"x": 10.0, "color": "red"}).json()
    assert documents == [[], single["outside_training"]]
    names = [o["name"] for o in toy_client.get("/v2/models/toy").json()["outputs"]]
    assert names == ["value", "outside_training", "explanation", "reasons"]


def test_a_service_whose_model_keeps_no_ranges_promises_no_such_output() -> None:
    codec = OpenInferenceCodec(TOY.request, TOY.response)
    assert [o["name"] for o in codec.metadata("toy", "1")["outputs"]] == ["value", "explanation", "reasons"]
    answer = codec.encode(
        {"name": "toy", "version": "1"}, "id", [{"value": 1.0, "outside_training": []}], None
    )
    assert [o["name"] for o in answer["outputs"]] == ["value"]


def test_a_model_trained_before_ranges_were_kept_answers_without_the_key(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    model = ToyModel(dataclasses.replace(artifact, pipeline=copy.deepcopy(artifact.pipeline)))
    del model.trees.encoder.training_min_  # as unpickled from such a model
    (answer,) = run_model(model, [{"x": 10.0, "color": "red", "note": None}], explain=False)
    assert "outside_training" not in answer  # not "[]": nothing was checked
    assert model.describe()["baselines"]["training_ranges"] == {}


def test_a_failure_to_check_the_range_never_costs_the_prediction(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(matrix: object) -> None:
        raise RuntimeError("a bug in outside_training")

    artifact, _ = toy_trained
    copied = dataclasses.replace(artifact, version="broken-ranges", pipeline=copy.deepcopy(artifact.pipeline))
    model = ToyModel(copied)
    model.trees.encoder.outside_training = broken  # type: ignore[method-assign]
    for _ in range(3):
        (answer,) = run_model(model, [{"x": 5.0, "color": "red", "note": None}], explain=False)
        assert "value" in answer
        assert "outside_training" not in answer
    message = "checking inputs against the training range failed (logged once for version broken-ranges)"
    assert caplog.text.count(message) == 1
