"""The managed targets' batch limit: a 413 naming ``<SVC>_MAX_BATCH_SIZE`` whatever the instances
hold, as ``POST /predict/batch`` answers (the toy model, built in memory, not packaged)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from fastapi import HTTPException
from toy import TOY, ToyModel

from servekit.inference import batch_adapter
from servekit.managed import sagemaker
from servekit.managed.common import LoadedModel
from servekit.managed.vertex import ServekitPredictor
from servekit.model import ModelArtifact
from servekit.testing import cpr_request, vertex_handler
from servekit.training.splitting import Split

LIMIT = 256
#: Wrong in every field the toy request has, and one it does not.
BAD = {"x": "eleven", "color": "green", "extra": 1}
OVER = {
    "error": "batch_too_large",
    "message": "257 instances; the limit is 256 (TOY_MAX_BATCH_SIZE); send at most 256 per request",
    "fields": [
        {"field": "instances", "problem": "257 instances, over the limit of 256 (TOY_MAX_BATCH_SIZE)"}
    ],
}


@pytest.fixture(scope="module")
def loaded(toy_trained: tuple[ModelArtifact, Split]) -> LoadedModel:
    artifact, _ = toy_trained
    return LoadedModel(TOY, ToyModel(artifact), batch_adapter(TOY.request), LIMIT)


def sagemaker_refusal(loaded: LoadedModel, body: bytes | str, content_type: str) -> tuple[int, Any]:
    with pytest.raises(sagemaker.InvalidRequest) as caught:
        sagemaker.predict_fn(sagemaker.input_fn(body, content_type), loaded)
    return caught.value.status_code, json.loads(caught.value.message)


@pytest.mark.parametrize("count", [257, 256])
def test_sagemaker_json_over_the_limit_is_a_413_however_bad_its_instances(
    loaded: LoadedModel, count: int
) -> None:
    for body in (orjson.dumps({"instances": [BAD] * count}), orjson.dumps([BAD] * count)):
        status, error = sagemaker_refusal(loaded, body, "application/json")
        if count > LIMIT:
            assert (status, error) == (413, OVER)
        else:  # within the limit, each problem is named
            assert status == 422
            assert error["error"] == "invalid_request"


def test_sagemaker_json_with_a_repeated_key_over_the_limit_is_a_413(loaded: LoadedModel) -> None:
    body = b'{"instances": [' + b'{"x": 1.0, "color": "red"}, ' * 256 + b'{"x": 1, "x": 2}]}'
    assert sagemaker_refusal(loaded, body, "application/json") == (413, OVER)


@pytest.mark.parametrize(
    "rows",
    [
        ["eleven,green,"] * 257,  # each row of the right width, and bad
        ["1.0,red"] * 257,  # each row a column short
        ["x,color,note"] + ["1.0,red,"] * 256 + ["1.0,red,,extra"],
    ],
    ids=["bad-cells", "short-rows", "header-and-a-long-row"],
)
def test_sagemaker_csv_over_the_limit_is_a_413_however_bad_its_rows(
    loaded: LoadedModel, rows: list[str]
) -> None:
    assert sagemaker_refusal(loaded, "\n".join(rows) + "\n", "text/csv") == (413, OVER)


def test_sagemaker_csv_within_the_limit_names_the_bad_row(loaded: LoadedModel) -> None:
    """The header is not an instance: 256 rows after it are within the limit."""
    body = "\n".join(["x,color,note"] + ["1.0,red,"] * 255 + ["1.0,red"]) + "\n"
    status, error = sagemaker_refusal(loaded, body, "text/csv")
    assert status == 422
    assert error["fields"][0]["field"] == "instances[255]"
    answered = sagemaker.predict_fn(sagemaker.input_fn("\n".join(["1.0,red,"] * 256), "text/csv"), loaded)
    assert len(answered["predictions"]) == 256


def test_vertex_over_the_limit_is_a_413_however_bad_its_instances(loaded: LoadedModel) -> None:
    predictor = ServekitPredictor()
    predictor._model = loaded
    with pytest.raises(HTTPException) as caught:
        predictor.preprocess({"instances": [BAD] * 257, "parameters": {"explain": True}})
    assert (caught.value.status_code, caught.value.detail) == (413, OVER)
    with pytest.raises(HTTPException) as caught:
        predictor.preprocess({"instances": [BAD] * 256})
    assert caught.value.status_code == 422


def test_vertex_handler_over_the_limit_is_a_413_however_bad_its_instances(loaded: LoadedModel) -> None:
    import asyncio

    handler = vertex_handler(loaded)
    repeated = b'{"instances": [' + b'{"x": 1.0, "color": "red"}, ' * 256 + b'{"x": 1, "x": 2}]}'
    for body in (orjson.dumps({"instances": [BAD] * 257}), repeated):
        response = asyncio.run(handler.handle(cpr_request(body)))
        assert response.status_code == 413
        assert json.loads(response.body) == OVER
