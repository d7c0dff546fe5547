"""Browser apps on a listed origin can call the API; nobody else gets CORS headers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from toy import FAILING_X, TOY, FailingToy

from servekit.auth.key_lines import key_line, new_key
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
APP = "https://risk.example.com"
PREFLIGHT = {
    "origin": APP,
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type",
}


def client_with(artifact: ModelArtifact, **settings: object) -> TestClient:
    return TestClient(create_app(TOY, load_settings("toy", **settings), source=lambda: artifact))


@pytest.fixture
def cors_client(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    with client_with(toy_trained[0], cors_allow_origins=f"{APP}, http://localhost:3000") as client:
        wait_ready(client)
        yield client


def test_a_listed_origin_passes_the_preflight_and_can_read_the_answer(cors_client: TestClient) -> None:
    preflight = cors_client.options("/predict", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == APP
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-max-age"] == "600"

    answer = cors_client.post("/predict?explain=true", json=ROW, headers={"origin": APP})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == APP
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed
    assert "server-timing" in exposed
    # An error is readable too, so the page can show which field was wrong.
    bad = cors_client.post("/predict", json={**ROW, "x": 99}, headers={"origin": APP})
    assert (bad.status_code, bad.headers["access-control-allow-origin"]) == (422, APP)


def test_a_500_is_readable_by_the_page_too(toy_trained: tuple[ModelArtifact, Split]) -> None:
    app = create_app(
        replace(TOY, model=FailingToy),
        load_settings("toy", cors_allow_origins=APP),
        source=lambda: toy_trained[0],
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        wait_ready(client)
        failed = client.post("/predict", json={**ROW, "x": FAILING_X}, headers={"origin": APP})
        assert failed.status_code == 500
        assert failed.headers["access-control-allow-origin"] == APP
        assert "x-request-id" in failed.headers["access-control-expose-headers"].lower()
        assert failed.headers["vary"] == "Origin"
        elsewhere = client.post(
            "/predict", json={**ROW, "x": FAILING_X}, headers={"origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 500
        assert "access-control-allow-origin" not in elsewhere.headers


def test_preflights_are_not_counted_as_requests(cors_client: TestClient) -> None:
    for _ in range(3):
        cors_client.options("/predict", headers=PREFLIGHT)
    metrics = cors_client.get("/metrics").text
    assert 'toy_requests_total{endpoint="/readyz",method="GET",status="200"}' in metrics  # counting works
    assert 'method="OPTIONS"' not in metrics


def test_another_origin_gets_no_cors_headers(cors_client: TestClient) -> None:
    preflight = cors_client.options("/predict", headers={**PREFLIGHT, "origin": "https://evil.example"})
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    answer = cors_client.post("/predict", json=ROW, headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answer.headers


def test_a_header_the_api_does_not_read_fails_the_preflight(cors_client: TestClient) -> None:
    preflight = cors_client.options(
        "/predict", headers={**PREFLIGHT, "access-control-request-headers": "content-type, x-session-token"}
    )
    assert preflight.status_code == 400


def test_off_by_default(toy_trained: tuple[ModelArtifact, Split]) -> None:
    with client_with(toy_trained[0]) as client:
        wait_ready(client)
        preflight = client.options("/predict", headers=PREFLIGHT)
        assert preflight.status_code == 405
        assert "access-control-allow-origin" not in preflight.headers
        assert (
            "access-control-allow-origin"
            not in client.post("/predict", json=ROW, headers={"origin": APP}).headers
        )


def test_a_wildcard_allows_any_origin(toy_trained: tuple[ModelArtifact, Split]) -> None:
    with client_with(toy_trained[0], cors_allow_origins="*") as client:
        wait_ready(client)
        answer = client.post("/predict", json=ROW, headers={"origin": "https://anyone.example"})
        assert answer.headers["access-control-allow-origin"] == "*"


def test_an_ipv6_origin_passes_the_preflight(toy_trained: tuple[ModelArtifact, Split]) -> None:
    origin = "http://[::1]:3000"
    with client_with(toy_trained[0], cors_allow_origins=origin) as client:
        wait_ready(client)
        preflight = client.options("/predict", headers={**PREFLIGHT, "origin": origin})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin


def test_a_page_refused_by_a_full_replica_can_read_when_to_retry(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    app = create_app(
        TOY,
        load_settings("toy", cors_allow_origins=APP, max_concurrent_requests=1),
        source=lambda: toy_trained[0],
    )
    with TestClient(app) as client:
        wait_ready(client)
        client.app.state.admission.enter()  # type: ignore[attr-defined]
        refused = client.post("/predict", json=ROW, headers={"origin": APP})
    assert refused.status_code == 503
    assert refused.headers["access-control-allow-origin"] == APP
    assert refused.headers["retry-after"] == "1"
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()


def test_a_page_may_send_an_api_key_and_its_preflight_needs_none(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    key = new_key()
    (tmp_path / "keys").write_text(key_line("web", key) + "\n")
    with client_with(toy_trained[0], cors_allow_origins=APP, api_keys_file=str(tmp_path / "keys")) as client:
        wait_ready(client)
        preflight = client.options(
            "/predict", headers={**PREFLIGHT, "access-control-request-headers": "authorization, content-type"}
        )
        assert preflight.status_code == 200
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = client.post("/predict", json=ROW, headers={"origin": APP})
        # The page can read why: the 401 carries the CORS headers too.
        assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (401, APP)
        keyed = {"origin": APP, "authorization": f"Bearer {key}"}
        answered = client.post("/predict", json=ROW, headers=keyed)
        assert answered.status_code == 200


def test_a_page_may_send_every_request_header_the_api_documents_or_reads(cors_client: TestClient) -> None:
    # The routing headers are documented on every prediction operation: a page that pins a
    # variant, or keeps a session on one, must pass the preflight that precedes its request.
    document = cors_client.get("/openapi.json").json()
    documented = {
        parameter["name"].lower()
        for operations in document["paths"].values()
        for operation in operations.values()
        for parameter in operation.get("parameters", ())
        if parameter["in"] == "header"
    }
    assert {"x-model-variant", "x-routing-key"} <= documented
    read = {"x-request-id", "traceparent", "tracestate", "x-amzn-trace-id", "content-encoding"}
    read |= {"authorization", "x-api-key", "inference-header-content-length"}
    for path in ("/predict", "/predict/batch", "/v2/models/toy/infer"):
        for header in sorted(documented | read):
            preflight = cors_client.options(
                path, headers={**PREFLIGHT, "access-control-request-headers": f"content-type, {header}"}
            )
            assert preflight.status_code == 200, (path, header, preflight.text)
            assert header in preflight.headers["access-control-allow-headers"].lower()


def test_a_page_can_read_where_a_binary_answer_s_json_ends(cors_client: TestClient) -> None:
    answer = cors_client.post(
        "/v2/models/toy/infer",
        json={
            "inputs": [
                {"name": "x", "shape": [1], "datatype": "FP64", "data": [3.0]},
                {"name": "color", "shape": [1], "datatype": "BYTES", "data": ["red"]},
            ],
            "parameters": {"binary_data_output": True},
        },
        headers={"origin": APP},
    )
    assert answer.status_code == 200, answer.text
    assert "inference-header-content-length" in answer.headers
    assert "inference-header-content-length" in answer.headers["access-control-expose-headers"].lower()
