"""The admission limit over HTTP: a full replica refuses predictions at once and keeps answering the rest."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from raw_asgi import RawRequest
from toy import FAILING_X, TOY, FailingToy, ToyModel

from servekit.admission import AdmissionLimit
from servekit.metrics.names import MetricNames
from servekit.model import INLINE_BATCH_LIMIT, ModelArtifact, Record
from servekit.rest import create_app
from servekit.rest.predictor import Predictor
from servekit.rest.telemetry import Timings
from servekit.settings import load_settings
from servekit.spec import ServiceSpec
from servekit.testing import metric_sample, request_rows, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")
ROW = {"x": 2.0, "color": "red"}


def admission_of(client: TestClient) -> AdmissionLimit:
    return client.app.state.admission  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def full_client(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    """A replica with a limit of 2, both places taken (as by two requests being answered)."""
    artifact, _ = toy_trained
    settings = load_settings("toy", max_concurrent_requests=2)
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        admission_of(client).enter()
        admission_of(client).enter()
        yield client


def test_a_full_replica_refuses_each_prediction_endpoint_at_once(full_client: TestClient) -> None:
    single = full_client.post("/predict", json=ROW, headers={"x-request-id": "burst-1"})
    batch = full_client.post("/predict/batch", json={"instances": [ROW]})
    # Refused before the body is read: a malformed one is not even looked at.
    unread = full_client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    v2 = full_client.post("/v2/models/toy/infer", json={"inputs": []})

    for response in (single, batch, unread):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        body = response.json()
        assert body["error"] == "overloaded"
        assert "answering 2 prediction requests" in body["message"]
        assert "TOY_MAX_CONCURRENT_REQUESTS" in body["message"]
    assert single.headers["x-request-id"] == "burst-1"
    assert "server-timing" in single.headers
    # The Open Inference Protocol's clients read the message from "error".
    assert v2.status_code == 503
    assert v2.json()["code"] == "overloaded"
    assert "TOY_MAX_CONCURRENT_REQUESTS" in v2.json()["error"]

    assert metric_sample(full_client, NAMES.prediction_requests_shed_total, limit="requests") == 4
    assert metric_sample(full_client, NAMES.prediction_requests_shed_total, limit="instances") == 0
    assert metric_sample(full_client, NAMES.prediction_requests_in_flight) == 2
    labels = {"endpoint": "/predict", "method": "POST", "status": "503"}
    assert metric_sample(full_client, NAMES.requests_total, **labels) == 2


def test_probes_metadata_and_scrapes_are_never_refused(full_client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/model", "/metrics", "/v2/health/ready", "/openapi.json"):
        assert full_client.get(path).status_code == 200, path
    assert metric_sample(full_client, NAMES.prediction_requests_shed_total, limit="requests") == 0


def test_a_freed_place_answers_the_next_request(full_client: TestClient) -> None:
    assert full_client.post("/predict", json=ROW).status_code == 503
    admission_of(full_client).leave()
    assert full_client.post("/predict", json=ROW).status_code == 200
    assert admission_of(full_client).in_flight == 1


def test_the_limit_holds_behind_a_path_prefix(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", max_concurrent_requests=1, root_path="/toy")
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        admission_of(client).enter()
        assert client.post("/toy/predict", json=ROW).status_code == 503
        assert client.get("/toy/healthz").status_code == 200


class GatedToy(ToyModel):
    """Holds a batch (answered in a worker thread) until the test opens the gate."""

    entered = threading.Event()
    gate = threading.Event()

    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if len(records) > INLINE_BATCH_LIMIT:
            GatedToy.entered.set()
            assert GatedToy.gate.wait(30), "the test never opened the gate"
        return super().predict(records)


@pytest.fixture
def gated() -> Iterator[ServiceSpec]:
    """The toy service with its model gated, the gate closed; opened again whatever the test did."""
    GatedToy.entered.clear()
    GatedToy.gate.clear()
    yield dataclasses.replace(TOY, model=GatedToy)
    GatedToy.gate.set()


@contextlib.contextmanager
def batch_held(client: TestClient, rows: list[dict[str, Any]]) -> Iterator[list[int]]:
    """A batch sent and held in the gated model while the body runs; then its answer's status."""
    answers: list[int] = []
    held = threading.Thread(
        target=lambda: answers.append(client.post("/predict/batch", json={"instances": rows}).status_code)
    )
    held.start()
    try:
        assert GatedToy.entered.wait(30)
        yield answers
    finally:
        GatedToy.gate.set()
        held.join(30)


def test_a_place_is_held_while_a_request_is_answered(
    toy_trained: tuple[ModelArtifact, Split], gated: ServiceSpec
) -> None:
    artifact, data = toy_trained
    settings = load_settings("toy", max_concurrent_requests=1, max_batch_size=64)
    spec = gated
    rows = request_rows(data, INLINE_BATCH_LIMIT + 1)
    with TestClient(create_app(spec, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with batch_held(client, rows) as answers:
            assert metric_sample(client, NAMES.prediction_requests_in_flight) == 1
            assert client.post("/predict", json=ROW).status_code == 503
            assert client.get("/healthz").status_code == 200
        assert answers == [200]
        assert metric_sample(client, NAMES.prediction_requests_in_flight) == 0
        assert client.post("/predict", json=ROW).status_code == 200


def test_a_request_that_fails_gives_its_place_back(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", max_concurrent_requests=1)
    spec = dataclasses.replace(TOY, model=FailingToy)
    with TestClient(
        create_app(spec, settings, source=lambda: artifact), raise_server_exceptions=False
    ) as client:
        wait_ready(client)
        assert client.post("/predict", json={"x": FAILING_X, "color": "red"}).status_code == 500
        assert client.post("/predict", json={"x": "not a number", "color": "red"}).status_code == 422
        assert admission_of(client).in_flight == 0
        assert client.post("/predict", json=ROW).status_code == 200


def test_the_limit_is_the_service_s_unless_the_operator_sets_one(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    slow_model = dataclasses.replace(TOY, max_concurrent_requests=3)

    def limit_of(spec: ServiceSpec, **settings: Any) -> int:
        with TestClient(
            create_app(spec, load_settings("toy", **settings), source=lambda: artifact)
        ) as client:
            wait_ready(client)
            limit: int = client.get("/model").json()["admission"]["limit"]
        return limit

    assert limit_of(TOY) == 16
    assert limit_of(slow_model) == 3
    assert limit_of(slow_model, max_concurrent_requests=0) == 0
    assert limit_of(slow_model, max_concurrent_requests=40) == 40


def test_the_instance_limit_is_the_service_s_unless_the_operator_sets_one(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    slow_model = dataclasses.replace(TOY, max_concurrent_instances=300)

    def admission_of_app(spec: ServiceSpec, **settings: Any) -> dict[str, int]:
        with TestClient(
            create_app(spec, load_settings("toy", **settings), source=lambda: artifact)
        ) as client:
            wait_ready(client)
            admission: dict[str, int] = client.get("/model").json()["admission"]
        return admission

    defaults = {
        "limit": 16,
        "in_flight": 0,
        "instance_limit": 1024,
        "instances_in_flight": 0,
        "client_limit": 0,  # no API keys, no clients
        "clients_in_flight": 0,
        "max_loop_lag_seconds": 0.25,
    }
    assert admission_of_app(TOY) == defaults
    assert admission_of_app(TOY, max_loop_lag_seconds=0)["max_loop_lag_seconds"] == 0
    assert admission_of_app(slow_model)["instance_limit"] == 300
    assert admission_of_app(slow_model, max_concurrent_instances=0)["instance_limit"] == 0
    assert admission_of_app(slow_model, max_concurrent_instances=2048)["instance_limit"] == 2048


def test_a_batch_beside_others_is_refused_by_the_instances_it_would_add(
    toy_trained: tuple[ModelArtifact, Split], gated: ServiceSpec
) -> None:
    artifact, data = toy_trained
    size = INLINE_BATCH_LIMIT + 1
    settings = load_settings("toy", max_concurrent_instances=size + 10, max_batch_size=64)
    spec = gated
    rows = request_rows(data, size)
    with TestClient(create_app(spec, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with batch_held(client, rows) as answers:
            assert metric_sample(client, NAMES.prediction_instances_in_flight) == size
            big = {"instances": rows}
            refused = client.post("/predict/batch", json=big, headers={"x-request-id": "big-2"})
            # Single records and small batches are answered on the loop and never wait here.
            small = client.post("/predict/batch", json={"instances": rows[:INLINE_BATCH_LIMIT]})
            single = client.post("/predict", json=ROW)
        assert answers == [200]
        assert (small.status_code, single.status_code) == (200, 200)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["x-request-id"] == "big-2"
        body = refused.json()
        assert body["error"] == "overloaded"
        assert (
            f"predicting {size} instances in batches; {size} more would pass its limit of {size + 10}"
            in (body["message"])
        )
        assert "TOY_MAX_CONCURRENT_INSTANCES" in body["message"]
        assert metric_sample(client, NAMES.prediction_requests_shed_total, limit="instances") == 1
        assert metric_sample(client, NAMES.prediction_requests_shed_total, limit="requests") == 0
        assert metric_sample(client, NAMES.prediction_instances_in_flight) == 0
        # The batch answered alone: once the first is done, the same batch is taken.
        assert client.post("/predict/batch", json={"instances": rows}).status_code == 200


def test_a_cancelled_prediction_holds_its_places_until_the_model_is_done(
    toy_trained: tuple[ModelArtifact, Split], gated: ServiceSpec
) -> None:
    # As a gRPC deadline cancels its call: the thread cannot be stopped, so the places stay taken.
    artifact, data = toy_trained
    size = INLINE_BATCH_LIMIT + 1
    settings = load_settings("toy", max_concurrent_requests=1, max_concurrent_instances=size)
    rows = request_rows(data, size)
    with TestClient(create_app(gated, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        admission = admission_of(client)
        predictor: Predictor = client.app.state.predictor  # type: ignore[attr-defined]

        async def predict() -> None:
            with admission.admitted():
                await predictor(rows, False, Timings())

        async def cancel_while_predicting() -> tuple[int, int]:
            caller = asyncio.create_task(predict())
            assert await asyncio.to_thread(GatedToy.entered.wait, 30)
            caller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await caller
            held = (admission.in_flight, admission.instances_in_flight)
            GatedToy.gate.set()
            while admission.in_flight or admission.instances_in_flight:  # freed as the thread ends
                await asyncio.sleep(0.001)
            return held

        with contextlib.ExitStack() as stack:
            stack.callback(GatedToy.gate.set)
            held = client.portal.call(cancel_while_predicting)
        assert held == (1, size)
        assert metric_sample(client, NAMES.prediction_instances_in_flight) == 0
        assert client.post("/predict/batch", json={"instances": rows}).status_code == 200


def test_a_slow_body_holds_no_place(toy_trained: tuple[ModelArtifact, Split]) -> None:
    # Sixteen of these held every place of an idle replica, which refused everyone else.
    artifact, _ = toy_trained
    settings = load_settings("toy", max_concurrent_requests=1)
    body = json.dumps(ROW).encode()

    async def beside_a_slow_upload(app: Any) -> tuple[int, int, RawRequest, RawRequest]:
        slow = RawRequest("/predict", content_length=len(body))
        slow.body(body[:1], more=True)
        uploading = slow.start(app)
        await asyncio.wait_for(slow.waiting.wait(), 30)  # read the first byte, waits for more
        in_flight = admission_of(client).in_flight
        whole = RawRequest("/predict", content_length=len(body))
        whole.body(body, more=False)
        await asyncio.wait_for(whole.start(app), 30)
        slow.body(body[1:], more=False)
        await asyncio.wait_for(uploading, 30)
        return in_flight, admission_of(client).in_flight, whole, slow

    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        during, after, whole, slow = client.portal.call(beside_a_slow_upload, client.app)
    assert during == after == 0
    assert (whole.status, slow.status) == (200, 200), whole.text


def test_a_place_refused_once_the_body_is_in_is_503(toy_trained: tuple[ModelArtifact, Split]) -> None:
    # Free when the request came, full by the time its body arrived: refused then, and counted.
    artifact, _ = toy_trained
    settings = load_settings("toy", max_concurrent_requests=1)
    body = json.dumps(ROW).encode()

    async def fill_during_upload(app: Any) -> RawRequest:
        request = RawRequest("/predict", content_length=len(body))
        request.body(body[:1], more=True)
        uploading = request.start(app)
        await asyncio.wait_for(request.waiting.wait(), 30)
        admission_of(client).enter()
        request.body(body[1:], more=False)
        await asyncio.wait_for(uploading, 30)
        return request

    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        request = client.portal.call(fill_during_upload, client.app)
        assert metric_sample(client, NAMES.prediction_requests_shed_total, limit="requests") == 1
        assert admission_of(client).in_flight == 1
    assert request.status == 503
    assert "TOY_MAX_CONCURRENT_REQUESTS" in json.loads(request.text)["message"]
