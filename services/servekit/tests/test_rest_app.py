"""The HTTP transport against the toy service: endpoints, errors, metrics, Server-Timing."""

from __future__ import annotations

import asyncio
import inspect
import json
import re

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from toy import TOY

from servekit.metrics import ServiceMetrics
from servekit.metrics.names import GRPC_INFER, GRPC_METHOD, OPEN_INFERENCE_INFER
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.routes import RequestRoute
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}


def test_predict_and_explain(toy_client: TestClient) -> None:
    response = toy_client.post("/predict?explain=true", json=ROW)
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == {"name": "toy", "version": "test"}
    explanation = body["explanation"]
    assert explanation["scale"] == "units"
    assert set(explanation["contributions"]) == {"x", "color"}
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(body["value"], rel=1e-6)
    timing = response.headers["server-timing"]
    for phase in ("validate", "predict", "explain", "total"):
        assert f"{phase};dur=" in timing


def test_reasons_are_the_explanations_strongest_inputs_with_their_values(toy_client: TestClient) -> None:
    explained = toy_client.post("/predict?explain=true", json=ROW).json()
    response = toy_client.post("/predict?reasons=1", json=ROW)
    assert response.status_code == 200
    body = response.json()
    assert "explanation" not in body  # the whole explanation only when asked
    assert "explain;dur=" in response.headers["server-timing"]
    contributions = explained["explanation"]["contributions"]
    strongest = max(contributions, key=lambda field: abs(contributions[field]))
    assert body["reasons"] == [
        {"field": strongest, "value": ROW[strongest], "contribution": contributions[strongest]}
    ]
    # No more reasons than inputs, ranked by size either way; both when both are asked.
    both = toy_client.post("/predict?reasons=5&explain=true", json=ROW).json()
    assert [r["field"] for r in both["reasons"]] == sorted(
        contributions, key=lambda f: -abs(contributions[f])
    )
    assert both["explanation"] == explained["explanation"]
    # In a batch, each instance its own.
    rows = [ROW, {"x": 9.5, "color": "blue"}]
    batch = toy_client.post("/predict/batch?reasons=2", json={"instances": rows}).json()["predictions"]
    singles = [toy_client.post("/predict?reasons=2", json=row).json()["reasons"] for row in rows]
    assert [p["reasons"] for p in batch] == singles
    assert singles[0] != singles[1]
    assert "reasons" not in toy_client.post("/predict", json=ROW).json()


@pytest.mark.parametrize("asked", ["-1", "51", "two", "1.5"])
def test_a_bad_number_of_reasons_is_a_422_naming_the_parameter(toy_client: TestClient, asked: str) -> None:
    for path in ("/predict", "/predict/batch"):
        body = ROW if path == "/predict" else {"instances": [ROW]}
        response = toy_client.post(path, params={"reasons": asked}, json=body)
        assert response.status_code == 422, (path, asked)
        [problem] = response.json()["fields"]
        assert problem["field"] == "query.reasons"
        assert problem["problem"]


def test_batch_keeps_order(toy_client: TestClient) -> None:
    rows = [{"x": float(x), "color": "blue"} for x in range(8)]
    single = [toy_client.post("/predict", json=row).json()["value"] for row in rows]
    batch = toy_client.post("/predict/batch", json={"instances": rows}).json()
    assert [p["value"] for p in batch["predictions"]] == pytest.approx(single)


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        (b"{", "body", "EOF"),
        (b'{"x": 1.0}', "color", "Field required"),
        (b'{"x": "one", "color": "red"}', "x", "valid number"),
        (b'{"x": 11.0, "color": "red"}', "x", "less than or equal to 10"),
        (b'{"x": 1.0, "color": "green"}', "color", "'red' or 'blue'"),
        (b'{"x": NaN, "color": "red"}', "x", ""),
        (b'{"x": Infinity, "color": "red"}', "x", ""),
        (b'{"x": 1.0, "color": "red", "extra": 1}', "extra", "Extra inputs"),
        (b"[]", "body", "an object"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    toy_client: TestClient, body: bytes, field: str, problem: str
) -> None:
    response = toy_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    fields = response.json()["fields"]
    assert any(f["field"] == field and problem in f["problem"] for f in fields), fields


def test_empty_batch_is_a_422(toy_client: TestClient) -> None:
    response = toy_client.post("/predict/batch", json={"instances": []})
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "instances"


def test_batch_over_the_limit_is_a_413(toy_client: TestClient) -> None:
    response = toy_client.post("/predict/batch", json={"instances": [ROW] * 9})
    assert response.status_code == 413
    assert "limit is 8" in response.json()["message"]


def test_a_batch_over_the_limit_is_a_413_naming_the_setting_however_bad_its_instances(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    """The 413 ``<SVC>_MAX_BATCH_SIZE`` promises, not a 422 listing each bad instance's problems."""
    artifact, _ = toy_trained
    bad = {"x": "eleven", "color": "green", "extra": 1}
    with TestClient(create_app(TOY, load_settings("toy"), source=lambda: artifact)) as client:
        wait_ready(client)
        over = client.post("/predict/batch", json={"instances": [bad] * 257})
        repeated = client.post(  # valid to the model, but a key given twice in the last instance
            "/predict/batch",
            content=b'{"instances": [' + b'{"x": 1.0, "color": "red"}, ' * 256 + b'{"x": 1, "x": 2}]}',
            headers={"content-type": "application/json"},
        )
        within = client.post("/predict/batch", json={"instances": [bad] * 256})
    assert over.status_code == 413, over.text
    assert over.json() == {
        "error": "batch_too_large",
        "message": "257 instances; the limit is 256 (TOY_MAX_BATCH_SIZE); send at most 256 per request",
        "fields": [
            {"field": "instances", "problem": "257 instances, over the limit of 256 (TOY_MAX_BATCH_SIZE)"}
        ],
    }
    assert repeated.status_code == 413
    assert within.status_code == 422  # within the limit, each problem is named


def test_body_over_the_limit_is_a_413(toy_client: TestClient) -> None:
    body = json.dumps({"x": 1.0, "color": "red", "note": "n" * 5000})
    response = toy_client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["fields"][0]["field"] == "body"


def test_chunked_body_over_the_limit_is_a_413(toy_client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"x": 1.0, "color": "red", "note": "'
        for _ in range(100):
            yield b"n" * 100
        yield b'"}'

    response = toy_client.post("/predict", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_unknown_path_and_method_keep_the_error_shape(toy_client: TestClient) -> None:
    assert toy_client.get("/nope").json() == {
        "error": "not_found",
        "message": "no endpoint at /nope; the endpoints are listed at /docs",
        "fields": [],
    }
    wrong_method = toy_client.get("/predict")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert wrong_method.json() == {
        "error": "method_not_allowed",
        "message": "GET is not allowed on /predict; allowed: POST",
        "fields": [],
    }
    probe = toy_client.post("/healthz")
    assert probe.headers["allow"] == "GET, HEAD"
    assert probe.json()["message"] == "POST is not allowed on /healthz; allowed: GET, HEAD"
    long_path = toy_client.get("/" + "x" * 500).json()["message"]
    assert long_path == f"no endpoint at /{'x' * 119}…; the endpoints are listed at /docs"
    assert toy_client.post("/predict?explain=maybe", json=ROW).json()["fields"][0]["field"] == (
        "query.explain"
    )


def test_probes_answer_head_as_they_answer_get(toy_client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        response = toy_client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
        assert response.headers["content-type"] == "application/json"
    # HEAD is an alias, not a second operation in the API document.
    assert set(toy_client.get("/openapi.json").json()["paths"]["/readyz"]) == {"get"}


def test_metrics_follow_the_contract(toy_client: TestClient) -> None:
    toy_client.post("/predict?explain=true", json=ROW)
    toy_client.post("/predict", json={"x": 99})
    toy_client.get("/metrics")
    text = toy_client.get("/metrics").text
    assert 'toy_requests_total{endpoint="/predict",method="POST",status="200"} 1.0' in text
    assert 'toy_requests_total{endpoint="/predict",method="POST",status="422"} 1.0' in text
    # The 422 is no latency event: a refusal in well under a millisecond would flatter the SLI.
    assert 'toy_prediction_latency_seconds_count{endpoint="/predict"} 1.0' in text
    assert "toy_explanation_latency_seconds_count 1.0" in text
    assert "toy_explanations_total 1.0" in text
    assert 'toy_model_info{run_id="in-memory",version="test"} 1.0' in text
    assert "toy_model_ready 1.0" in text
    assert 'toy_attribution_abs_sum_total{feature="x"}' in text
    assert 'toy_training_outcome_share{outcome="' in text
    # Scrapes are not traffic.
    assert 'endpoint="/metrics"' not in text
    assert "_created" not in text


def test_a_prediction_endpoints_server_errors_are_counted_from_zero_before_the_first() -> None:
    """A series that appears at its first 5xx shows rate() no increase: a new pod's first failures
    would never reach the availability alerts (monitoring/rules: service:request_errors:ratio_rate*)."""
    text = generate_latest(ServiceMetrics("toy").registry).decode()
    for endpoint, method in (
        ("/predict", "POST"),
        ("/predict/batch", "POST"),
        (OPEN_INFERENCE_INFER, "POST"),
        (GRPC_INFER, GRPC_METHOD),
    ):
        for status in ("500", "503"):
            series = f'toy_requests_total{{endpoint="{endpoint}",method="{method}",status="{status}"}} 0.0'
            assert series in text


def test_outcomes_are_counted(toy_client: TestClient) -> None:
    toy_client.post("/predict/batch", json={"instances": [{"x": 0.0, "color": "blue"}] * 3})
    text = toy_client.get("/metrics").text
    assert 'toy_predictions_total{outcome="low"} 3.0' in text


def test_openapi_documents_the_request_bodies(toy_client: TestClient) -> None:
    document = toy_client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    assert schemas["ToyRequest"]["additionalProperties"] is False
    assert "ToyRequestBatch" in schemas
    body = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/ToyRequest"}
    assert "413" in document["paths"]["/predict/batch"]["post"]["responses"]
    for path in ("/predict", "/predict/batch"):
        parameters = {p["name"]: p for p in document["paths"][path]["post"]["parameters"]}
        assert parameters["reasons"]["schema"]["maximum"] == 50
        assert {"explain", "X-Model-Variant"} <= set(parameters)
    assert set(schemas["ReasonBody"]["required"]) == {"field", "value", "contribution"}


def test_model_endpoint_describes_the_model(toy_client: TestClient) -> None:
    body = toy_client.get("/model").json()
    assert body["name"] == "toy"
    assert body["version"] == "test"
    assert "mae" in body["training_metrics"]
    assert body["feature_schema"]["properties"]["x"]["maximum"] == 10
    assert set(body["baselines"]["attribution_means"]) == {"x", "color"}


def test_root_path_serves_under_a_prefix(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    settings = load_settings("toy", root_path="/toy")
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        assert client.post("/toy/predict", json=ROW).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes hit the pod without the prefix
        client.post("/toy/predict", json=ROW)
        assert 'toy_requests_total{endpoint="/predict"' in client.get("/toy/metrics").text
        # What a client behind an ingress that keeps the prefix is pointed at keeps it too.
        not_found = client.get("/toy/nope").json()["message"]
        assert not_found == "no endpoint at /toy/nope; the endpoints are listed at /toy/docs"
        wrong_method = client.get("/toy/predict")
        assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")
        # Not a 307 to a URL built from the request's Host, which generated clients do not follow.
        for path in ("/toy/predict/", "/toy/predict/batch/"):
            slash = client.post(path, json=ROW, follow_redirects=False)
            assert slash.status_code == 404, path
            assert "location" not in slash.headers
            assert slash.json()["message"] == f"no endpoint at {path}; the endpoints are listed at /toy/docs"


def test_not_ready_until_loaded_and_says_why(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    attempts = {"n": 0}

    def flaky() -> ModelArtifact:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("registry unreachable")
        return artifact

    settings = load_settings("toy", load_retry_initial_seconds=0.05, load_retry_max_seconds=0.1)
    metrics = ServiceMetrics("toy")
    with TestClient(create_app(TOY, settings, source=flaky, metrics=metrics)) as client:
        first = client.get("/readyz")
        if first.status_code == 503:
            assert client.post("/predict", json=ROW).status_code == 503

        wait_ready(client)
        assert attempts["n"] == 3
        assert client.get("/readyz").json()["model"]["version"] == "test"


def test_a_model_that_never_loads_stays_alive_and_not_ready() -> None:
    def broken() -> ModelArtifact:
        raise FileNotFoundError("artifact corrupt: model.skops missing")

    settings = load_settings("toy", load_retry_initial_seconds=0.01, load_retry_max_seconds=0.02)
    with TestClient(create_app(TOY, settings, source=broken)) as client:
        asyncio.run(asyncio.sleep(0.1))
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert client.head("/readyz").status_code == 503
        # How often and of which kind, not the failure's own message, which stays in the log.
        assert re.fullmatch(
            r"loading the model failed (once|\d+ times) \(the registry or the model's files could not "
            r"be read, or the model did not warm up\); retrying, each failure in the service's log",
            ready.json()["error"],
        )
        assert client.get("/healthz").status_code == 200
        response = client.post("/predict", json=ROW)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "artifact corrupt" not in response.text + client.get("/model").text
        assert "toy_model_ready 0.0" in client.get("/metrics").text


def test_large_responses_are_gzipped_for_clients_that_accept_it(toy_client: TestClient) -> None:
    batch = {"instances": [{"x": float(i), "color": "red"} for i in range(8)]}
    plain = toy_client.post(
        "/predict/batch?explain=true", json=batch, headers={"accept-encoding": "identity"}
    )
    gzipped = toy_client.post("/predict/batch?explain=true", json=batch, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert len(plain.content) >= 1024  # the default threshold
    assert gzipped.headers["content-encoding"] == "gzip"
    assert int(gzipped.headers["content-length"]) < len(plain.content) / 2
    assert "accept-encoding" in gzipped.headers["vary"].lower()
    assert "total;dur=" in gzipped.headers["server-timing"]
    assert gzipped.json() == plain.json()  # httpx decodes it, as any client does
    # Small answers are not worth it; Prometheus's scrape of /metrics is.
    single = toy_client.post("/predict", json={"x": 1.0, "color": "red"}, headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in single.headers
    scrape = toy_client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert scrape.headers["content-encoding"] == "gzip"


def test_gzip_min_bytes_0_turns_compression_off(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    app = create_app(TOY, load_settings("toy", gzip_min_bytes=0), source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        response = client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert len(response.content) > 1024
    assert "content-encoding" not in response.headers


def test_no_route_sends_a_request_through_the_thread_pool(toy_client: TestClient) -> None:
    """FastAPI runs a plain-function endpoint or dependency in its thread pool: a hop there and
    back on every request, which cost a one-record /predict a quarter of its throughput when the
    query check was one. A model's work goes to a thread on purpose, and only for a large batch."""

    def plain_functions(dependant: Dependant) -> list[str]:
        own = (
            []
            if inspect.iscoroutinefunction(dependant.call)
            else [getattr(dependant.call, "__qualname__", "?")]
        )
        return own + [name for sub in dependant.dependencies for name in plain_functions(sub)]

    routes = [route for route in toy_client.app.routes if isinstance(route, APIRoute)]  # type: ignore[attr-defined]
    assert {"/predict", "/predict/batch", "/healthz", "/metrics"} <= {route.path for route in routes}
    assert {route.path: plain_functions(route.dependant) for route in routes} == {
        route.path: [] for route in routes
    }


def test_the_prediction_endpoints_leave_fastapi_nothing_to_solve(toy_client: TestClient) -> None:
    """Their options are read by ``rest.query.prediction_options``: FastAPI's dependency solving of
    two query parameters and a check took a one-record /predict 80 µs, a sixth of its time in the
    process, and its handler, with nothing left to solve, 45 µs more (``rest.routes``). The request
    is all they are given; the parameters are in the document all the same."""
    routes = {route.path: route for route in toy_client.app.routes if isinstance(route, APIRoute)}  # type: ignore[attr-defined]
    document = toy_client.get("/openapi.json").json()
    for path in ("/predict", "/predict/batch"):
        assert isinstance(routes[path], RequestRoute), path  # and so FastAPI's handler is not run
    dependant = routes["/v2/models/{model_name}/infer"].dependant
    assert (dependant.dependencies, dependant.query_params) == ([], [])
    for path in ("/predict", "/predict/batch"):
        assert {"explain", "reasons"} <= {p["name"] for p in document["paths"][path]["post"]["parameters"]}


@pytest.mark.parametrize("path", ["/predict", "/predict/batch", "/v2/models/toy/infer"])
def test_a_megabyte_of_unknown_fields_is_refused_naming_the_body_not_each_field(
    toy_trained: tuple[ModelArtifact, Split], path: str
) -> None:
    """Each of 100,000 unknown fields was a problem pydantic listed, holding the event loop (and the
    probes) for a second, and answered in 6.7 MB."""
    artifact, _ = toy_trained
    settings = load_settings("toy", max_body_bytes=2_000_000)
    flood = ("{" + ",".join(f'"k{i}": 0' for i in range(100_000)) + "}").encode()
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        response = client.post(path, content=flood, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert len(response.content) < 1_000
    (problem,) = response.json()["fields"]
    assert problem["field"] == "body"
    fields = len(TOY.request.model_fields)
    assert problem["problem"].startswith(f"holds over {settings.max_batch_size * (fields + 4) + 64:,} fields")
