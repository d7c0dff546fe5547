"""``X-Request-ID`` on every response, and an unexpected failure as a JSON 500 that names it."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from toy import FAILING_X, TOY, FailingToy

from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.request_id import HEADER
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
GENERATED = re.compile(r"[0-9a-f]{32}")


def test_every_response_has_a_fresh_id(toy_client: TestClient) -> None:
    responses = [
        toy_client.post("/predict", json=ROW),
        toy_client.post("/predict", json={"x": "one"}),
        toy_client.get("/nowhere"),
        toy_client.get("/healthz"),
    ]
    assert [r.status_code for r in responses] == [200, 422, 404, 200]
    ids = [r.headers[HEADER] for r in responses]
    assert all(GENERATED.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("sent", ["4bf92f3577b34da6a3ce929d0e0e4736", "client-7:retry.2", "a" * 128])
def test_the_callers_id_comes_back(toy_client: TestClient, sent: str) -> None:
    response = toy_client.post("/predict", json=ROW, headers={"X-Request-ID": sent})
    assert response.headers[HEADER] == sent


@pytest.mark.parametrize("sent", ["a" * 129, "has space", 'quote"d', "semi;colon", ""])
def test_an_implausible_id_is_replaced_not_rejected(toy_client: TestClient, sent: str) -> None:
    response = toy_client.post("/predict", json=ROW, headers={"X-Request-ID": sent})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers[HEADER])


TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"traceparent": TRACEPARENT}, "4bf92f3577b34da6a3ce929d0e0e4736"),
        (
            {"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000/1;o=1"},
            "105445aa7843bc8bf206b12000100000",
        ),
        ({"X-Cloud-Trace-Context": "105445aa7843bc8bf206b12000100000"}, "105445aa7843bc8bf206b12000100000"),
        (
            {"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"},
            "1-5759e988-bd862e3fe1be46a994272793",
        ),
        (
            {
                "X-Amzn-Trace-Id": "Self=1-67891234-12456789abcdef012345678a;"
                "Root=1-67891233-abcdef012345678912345678"
            },
            "1-67891233-abcdef012345678912345678",
        ),
        # An explicit X-Request-ID wins over a trace; an implausible one gives way to it.
        ({"X-Request-ID": "mine", "traceparent": TRACEPARENT}, "mine"),
        ({"X-Request-ID": "not mine", "traceparent": TRACEPARENT}, "4bf92f3577b34da6a3ce929d0e0e4736"),
        # The W3C header wins over a load balancer's, as the mesh's trace is the finer one.
        (
            {"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793", "traceparent": TRACEPARENT},
            "4bf92f3577b34da6a3ce929d0e0e4736",
        ),
    ],
)
def test_without_a_request_id_the_load_balancers_trace_id_is_used(
    toy_client: TestClient, headers: dict[str, str], expected: str
) -> None:
    response = toy_client.post("/predict", json=ROW, headers=headers)
    assert response.headers[HEADER] == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},  # invalid per W3C
        {"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"},  # upper case
        {"X-Cloud-Trace-Context": "not-a-trace"},
        {"X-Amzn-Trace-Id": "Sampled=1"},
        {"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;" + "x" * 600},
    ],
)
def test_a_malformed_trace_header_gives_a_new_id(toy_client: TestClient, headers: dict[str, str]) -> None:
    response = toy_client.post("/predict", json=ROW, headers=headers)
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers[HEADER])


@pytest.fixture
def failing_client(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    artifact, _ = toy_trained
    app = create_app(replace(TOY, model=FailingToy), load_settings("toy"), source=lambda: artifact)
    # The server re-raises after answering (so uvicorn logs the traceback); the test client
    # must answer like a server instead of raising that into the test.
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        yield client


def test_a_model_failure_is_a_json_500_naming_the_request_id(
    failing_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="servekit.rest"):
        response = failing_client.post(
            "/predict", json={**ROW, "x": FAILING_X}, headers={"X-Request-ID": "trace-42"}
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.headers[HEADER] == "trace-42"
    body = response.json()
    assert body["error"] == "internal_error"
    assert "request id trace-42" in body["message"]
    assert "lookup table" not in body["message"]  # internals stay in the log, not with the caller
    logged = [r.getMessage() for r in caplog.records if r.name == "servekit.rest"]
    assert logged == ["request trace-42 POST /predict failed: RuntimeError: lookup table is empty"]
    metrics = failing_client.get("/metrics").text
    assert 'toy_requests_total{endpoint="/predict",method="POST",status="500"} 1.0' in metrics
    # The service keeps serving.
    assert failing_client.post("/predict", json=ROW).status_code == 200
