"""What a client generated from ``/openapi.json`` is told: every answer it can get, with its headers,
each operation under a stable name, and types it can generate without guessing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit.auth.key_lines import key_line, new_key
from servekit.errors import ERROR_CODES
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.openapi import OPERATION_IDS
from servekit.settings import load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
PREDICTIONS = ("/predict", "/predict/batch", "/v2/models/{model_name}/infer")


@pytest.fixture(scope="module")
def keys() -> dict[str, str]:
    return {"reader": new_key(), "writer": new_key()}


@pytest.fixture(scope="module")
def keyed(
    toy_trained: tuple[ModelArtifact, Split], tmp_path_factory: pytest.TempPathFactory, keys: dict[str, str]
) -> Iterator[TestClient]:
    """The toy service with API keys: one read-only, one that opens everything."""
    path = tmp_path_factory.mktemp("keys") / "keys"
    path.write_text(
        f"{key_line('reader', keys['reader'], scope='read')}\n{key_line('writer', keys['writer'])}\n"
    )
    settings = load_settings("toy", api_keys_file=str(path), max_batch_size=8)
    with TestClient(create_app(TOY, settings, source=lambda: toy_trained[0])) as client:
        wait_ready(client)
        yield client


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, by_method in document["paths"].items():
        for method, operation in by_method.items():
            yield path, method, operation


def test_every_operation_has_its_own_stable_id(toy_client: TestClient) -> None:
    """FastAPI's ids (``predict_predict_post``) change with an endpoint function's name, and with
    them every generated client's method names."""
    document = toy_client.get("/openapi.json").json()
    ids = {
        (method.upper(), path): operation["operationId"] for path, method, operation in operations(document)
    }
    assert ids == OPERATION_IDS
    assert len(set(ids.values())) == len(ids)
    assert not [name for name in ids.values() if name.endswith(("_get", "_post"))]


def test_a_read_only_keys_403_is_documented_where_it_is_answered(
    keyed: TestClient, keys: dict[str, str]
) -> None:
    document = keyed.get("/openapi.json").json()
    refused = {path for path, _, operation in operations(document) if "403" in operation["responses"]}
    assert refused == {*PREDICTIONS, "/v2/models/{model_name}/versions/{model_version}/infer"}
    reader = {"x-api-key": keys["reader"]}
    for path, body in (("/predict", ROW), ("/predict/batch", {"instances": [ROW]})):
        answer = keyed.post(path, json=body, headers=reader)
        assert answer.status_code == 403
        schema = document["paths"][path]["post"]["responses"]["403"]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}
        assert answer.json()["error"] == "forbidden"
    infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]["responses"]["403"]
    assert infer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InferenceError"}
    for path in ("/model", "/model/card", "/v2", "/v2/models/{model_name}"):
        assert keyed.get(path.replace("{model_name}", "toy"), headers=reader).status_code == 200


def test_every_response_documents_the_headers_it_is_sent_with(keyed: TestClient) -> None:
    document = keyed.get("/openapi.json").json()
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            headers = response["headers"]
            where = (method, path, status)
            assert {"X-Request-ID", "Server-Timing"} <= set(headers), where
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            error_body = schema.get("$ref", "").endswith(("/ErrorBody", "/InferenceError"))
            # A probe's own 503 (Readiness, ServerReady) is an answer, not an error: no Retry-After.
            retried = status in ("429", "503") and error_body
            assert ("Retry-After" in headers) == retried, where
            assert ("WWW-Authenticate" in headers) == (status == "401"), where
    # What the middleware and the handlers send, as documented.
    answer = keyed.post("/predict", json=ROW)
    assert answer.status_code == 401
    assert {"x-request-id", "server-timing", "www-authenticate"} <= set(answer.headers)


def test_the_prediction_operations_document_the_id_and_trace_headers_they_read(
    toy_client: TestClient,
) -> None:
    document = toy_client.get("/openapi.json").json()
    for path in PREDICTIONS:
        parameters = {p["name"]: p for p in document["paths"][path]["post"]["parameters"]}
        request_id, trace = parameters["X-Request-ID"], parameters["traceparent"]
        assert (request_id["in"], request_id["required"], trace["in"], trace["required"]) == (
            "header",
            False,
            "header",
            False,
        )
        assert request_id["schema"]["maxLength"] == 128
        assert "A-Z a-z 0-9" in request_id["description"]
    # The id sent is the id answered; one outside the documented pattern is replaced, not refused.
    sent = toy_client.post("/predict", json=ROW, headers={"x-request-id": "order-42"})
    assert sent.headers["x-request-id"] == "order-42"
    replaced = toy_client.post("/predict", json=ROW, headers={"x-request-id": "x" * 129})
    assert replaced.status_code == 200
    assert replaced.headers["x-request-id"] != "x" * 129


def test_every_get_documents_the_answer_to_a_parameter_it_does_not_take(toy_client: TestClient) -> None:
    """``GET /model?x=1`` is a 422 (its QueryRule): a generated client is told so, as for every route."""
    document = toy_client.get("/openapi.json").json()
    for path, method, operation in operations(document):
        if method != "get":
            continue
        url = path.replace("{model_name}", "toy").replace("{model_version}", "1")
        answer = toy_client.get(f"{url}?unknown=1")
        assert str(answer.status_code) in operation["responses"], (path, answer.text)
    assert toy_client.get("/model?x=1").json()["error"] == "invalid_request"


def test_the_error_codes_are_an_enum_of_both_error_bodies(toy_client: TestClient) -> None:
    schemas = toy_client.get("/openapi.json").json()["components"]["schemas"]
    for body, field in (("ErrorBody", "error"), ("InferenceError", "code")):
        code = schemas[body]["properties"][field]
        assert code["enum"] == list(ERROR_CODES)
        assert code["description"]
    # /v2's error is the message, as the protocol has it; each body says which field is which.
    assert "error is the machine-readable code" in schemas["ErrorBody"]["description"]
    assert "fixes error as the message" in schemas["InferenceError"]["description"]


def test_the_probes_statuses_are_enums(toy_client: TestClient) -> None:
    schemas = toy_client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["Health"]["properties"]["status"]["const"] == "ok"
    assert schemas["Readiness"]["properties"]["status"]["enum"] == ["ready", "loading"]


def test_no_union_carries_its_branches_constraints(toy_client: TestClient) -> None:
    """A constraint beside ``anyOf`` (an array's maxItems next to null) made datamodel-codegen write
    a class per property, numbered Data1, Data2, ... as each input's ``data`` had one."""
    schemas = toy_client.get("/openapi.json").json()["components"]["schemas"]
    annotations = {"anyOf", "default", "description", "title", "examples"}
    beside = {
        (name, field): sorted(set(prop) - annotations)
        for name, schema in schemas.items()
        for field, prop in schema.get("properties", {}).items()
        if "anyOf" in prop and set(prop) - annotations
    }
    assert beside == {}


def test_a_trailing_slash_is_a_404_not_a_redirect(toy_client: TestClient) -> None:
    """Starlette's 307 to ``https://<Host>/predict`` is not followed by generated clients."""
    for method, path in (("POST", "/predict/"), ("POST", "/predict/batch/"), ("GET", "/model/")):
        answer = toy_client.request(method, path, json=ROW, follow_redirects=False)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), path
        assert "location" not in answer.headers
