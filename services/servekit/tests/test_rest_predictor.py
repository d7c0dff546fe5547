"""Where the predictor runs a model: on the event loop when the model calls the work quick, else in
a worker thread, holding its instances in the admission limit."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from toy import TOY, ToyModel

from servekit.model import INLINE_BATCH_LIMIT, ModelArtifact, Record
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import request_rows, wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}


def on_the_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class WhereToy(ToyModel):
    """Records whether each prediction ran on the event loop; a red row is slow work."""

    ran_on_loop: list[bool] = []

    def quick(self, records: Sequence[Record]) -> bool:
        return super().quick(records) and all(record["color"] != "red" for record in records)

    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        WhereToy.ran_on_loop.append(on_the_loop())
        return super().predict(records)


@pytest.fixture
def client(toy_trained: tuple[ModelArtifact, Split]) -> Any:
    artifact, _ = toy_trained
    WhereToy.ran_on_loop.clear()
    app = create_app(dataclasses.replace(TOY, model=WhereToy), load_settings("toy"), source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        WhereToy.ran_on_loop.clear()  # the warm-up's
        yield client


def test_quick_work_runs_on_the_loop_and_slow_work_in_a_thread(client: TestClient) -> None:
    """A single record the model calls slow (an NLPInsight text of thousands of characters) went on
    the loop, and every probe waited behind it."""
    assert client.post("/predict", json={**ROW, "color": "blue"}).status_code == 200
    assert client.post("/predict?explain=true", json=ROW).status_code == 200
    assert WhereToy.ran_on_loop == [True, False]


def test_a_batch_is_quick_by_default_up_to_the_inline_limit(
    client: TestClient, toy_trained: tuple[ModelArtifact, Split]
) -> None:
    _, data = toy_trained
    blue = [{**row, "color": "blue"} for row in request_rows(data, INLINE_BATCH_LIMIT + 1)]
    for rows in (blue[:INLINE_BATCH_LIMIT], blue):
        assert client.post("/predict/batch", json={"instances": rows}).status_code == 200
    assert WhereToy.ran_on_loop == [True, False]
