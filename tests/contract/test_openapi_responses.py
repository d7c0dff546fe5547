"""Every service's answers are what its OpenAPI document says: generated clients read them by it.

The document's response schemas are built from each service's models, while the answers are
built by its served model: nothing tied one to the other. NLPInsight's explanation (a label,
tokens with offsets) was described as the tabular one, so generated clients did not see its
fields. Each answer, explained and with reasons, single and batch, is validated here against
``/openapi.json`` itself.

So is every other answer, errors included: FastAPI documented a 422 in its own shape, which the
services never send, on operations that never refuse a parameter, and ``/model`` had no schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient
from httpx import Response

from servekit import registry
from servekit.auth.key_lines import key_line, new_key
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.spec import ServiceSpec
from servekit.testing import request_rows, train_in_memory, valid_requests, wait_ready

SERVICES = registry.available()


@pytest.fixture(scope="module", params=SERVICES)
def trained(request: pytest.FixtureRequest) -> tuple[ServiceSpec, ModelArtifact, list[dict[str, Any]]]:
    spec = registry.get_service(request.param)
    artifact, split = train_in_memory(spec, rows=800)
    rows = valid_requests(spec, request_rows(split, 40))[:4]
    assert rows
    return spec, artifact, rows


@pytest.fixture(scope="module")
def service(
    trained: tuple[ServiceSpec, ModelArtifact, list[dict[str, Any]]],
) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    spec, artifact, rows = trained
    settings = load_settings(spec.name, max_batch_size=8)
    with TestClient(create_app(spec, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        yield client, rows


def validator(document: dict[str, Any], path: str) -> jsonschema.Draft202012Validator:
    """The schema of ``path``'s 200 answer, with the document's components to resolve its refs."""
    content = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]
    schema = {**content["schema"], "components": document["components"]}
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_explained_answers_validate_against_the_openapi_document(
    service: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, rows = service
    document = client.get("/openapi.json").json()
    single, batch = validator(document, "/predict"), validator(document, "/predict/batch")
    for query in ("?explain=true&reasons=3", "?explain=true", ""):
        answer = client.post(f"/predict{query}", json=rows[0])
        assert answer.status_code == 200, answer.text
        single.validate(answer.json())
        answers = client.post(f"/predict/batch{query}", json={"instances": rows})
        assert answers.status_code == 200, answers.text
        batch.validate(answers.json())
    # Described, not merely allowed: every field of the explanation is in its schema.
    explanation = client.post("/predict?explain=true", json=rows[0]).json()["explanation"]
    response = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    name = response["schema"]["$ref"].rsplit("/", 1)[1]
    schemas = document["components"]["schemas"]
    (ref,) = [s["$ref"] for s in schemas[name]["properties"]["explanation"]["anyOf"] if "$ref" in s]
    assert set(explanation) == set(schemas[ref.rsplit("/", 1)[1]]["properties"])


#: The 503 of a readiness endpoint is its own answer, not an error body.
READINESS = {"/readyz": "Readiness", "/v2/health/ready": "ServerReady"}


def test_every_documented_error_is_in_the_body_the_service_sends(
    service: tuple[TestClient, list[dict[str, Any]]],
) -> None:
    client, _ = service
    document = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in json.dumps(document)
    assert "ValidationError" not in document["components"]["schemas"]
    for path, operations in document["paths"].items():
        body = "InferenceError" if path.startswith("/v2") else "ErrorBody"
        ready = "ModelReady" if path.endswith("/ready") and "{model_name}" in path else READINESS.get(path)
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                assert list(response["content"]) == ["application/json"], (method, path, status)
                ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
                expected = ready if status == "503" and ready else body
                assert ref == expected, (method, path, status)


def documented(document: dict[str, Any], path: str, method: str, answer: Response) -> None:
    """``answer`` has a status, a media type and (for JSON) a body that ``path``'s operation documents."""
    operation = document["paths"][path][method]
    where = f"{method.upper()} {answer.request.url} answered {answer.status_code} {answer.text[:300]}"
    assert str(answer.status_code) in operation["responses"], where
    response = operation["responses"][str(answer.status_code)]
    content = response["content"]
    # The headers a generated client reads (ids, timing, when to retry, how to authenticate) are
    # documented where they are sent, and sent where documented as required.
    for header in ("X-Request-ID", "Server-Timing", "Retry-After", "WWW-Authenticate"):
        sent = header.lower() in answer.headers
        documented_header = response.get("headers", {}).get(header)
        assert sent == (documented_header is not None and documented_header["required"]), (where, header)
    media_type = answer.headers["content-type"].split(";")[0]
    assert media_type in content, where
    schema = content[media_type]["schema"]
    if media_type == "application/json":
        jsonschema.Draft202012Validator({**schema, "components": document["components"]}).validate(
            answer.json()
        )
    else:
        assert schema == {"type": "string"}, where


def gets(document: dict[str, Any], name: str, version: str) -> list[tuple[str, str]]:
    """Every GET operation's path, and a URL of it naming ``name`` and ``version``."""
    return [
        (path, path.replace("{model_name}", name).replace("{model_version}", version))
        for path, operations in document["paths"].items()
        if "get" in operations
    ]


def test_every_answer_to_a_get_is_as_documented(
    trained: tuple[ServiceSpec, ModelArtifact, list[dict[str, Any]]],
) -> None:
    # With a shadow, a canary and capture, so that /model describes each of them.
    spec, artifact, _ = trained
    settings = load_settings(spec.name, capture_percent=1, canary_traffic_percent=10)
    app = create_app(
        spec,
        settings,
        source=lambda: artifact,
        shadow_source=lambda: artifact,
        canary_source=lambda: artifact,
    )
    with TestClient(app) as client:
        wait_ready(client)
        document = client.get("/openapi.json").json()
        version = artifact.version
        for path, url in gets(document, spec.name, version):
            documented(document, path, "get", client.get(url))
            # A parameter it does not take: the probes ignore it, the others' 422 is documented.
            documented(document, path, "get", client.get(f"{url}?x=1"))
        model = client.get("/model").json()
        assert model["shadow"]
        assert model["canary"]
        assert model["capture"]
        refused = [
            ("/model/card", "/model/card?variant=bogus", 422),
            ("/v2/models/{model_name}", "/v2/models/nope", 404),
            ("/v2/models/{model_name}/ready", "/v2/models/nope/ready", 404),
            ("/v2/models/{model_name}/versions/{model_version}", f"/v2/models/{spec.name}/versions/999", 404),
        ]
        for path, url, status in refused:
            answer = client.get(url)
            assert answer.status_code == status, answer.text
            documented(document, path, "get", answer)
    with TestClient(create_app(spec, load_settings(spec.name), source=lambda: artifact)) as client:
        wait_ready(client)
        answer = client.get("/model/card?variant=canary")  # no canary here
        assert answer.status_code == 404
        documented(document, "/model/card", "get", answer)


def never_loads() -> ModelArtifact:
    raise RuntimeError("registry unreachable")


@pytest.mark.parametrize("service_name", SERVICES)
def test_every_answer_of_a_replica_still_loading_or_without_a_key_is_as_documented(
    service_name: str, tmp_path: Path
) -> None:
    spec = registry.get_service(service_name)
    key = new_key()
    read_key = new_key()
    (tmp_path / "keys").write_text(
        key_line("client", key) + "\n" + key_line("reader", read_key, scope="read") + "\n"
    )
    settings = load_settings(spec.name, api_keys_file=str(tmp_path / "keys"))
    with TestClient(create_app(spec, settings, source=never_loads)) as client:
        document = client.get("/openapi.json").json()
        keyed = {"authorization": f"Bearer {key}"}
        for path, url in gets(document, spec.name, "1"):
            documented(document, path, "get", client.get(url, headers=keyed))
            if "security" in document["paths"][path]["get"]:  # not the probes
                answer = client.get(url)
                assert answer.status_code == 401
                documented(document, path, "get", answer)
        # A read-only key's 403 on what runs the model, as documented there and only there.
        reader = {"authorization": f"Bearer {read_key}"}
        row = spec.request.model_json_schema()["examples"][0]
        for path, body in (("/predict", row), ("/predict/batch", {"instances": [row]})):
            answer = client.post(path, json=body, headers=reader)
            assert answer.status_code == 403
            documented(document, path, "post", answer)
        refused = {
            path
            for path, operations in document["paths"].items()
            if "403" in operations.get("post", {}).get("responses", {})
        }
        assert refused == {path for path, operations in document["paths"].items() if "post" in operations}
        assert not [
            path
            for path, operations in document["paths"].items()
            if "403" in operations.get("get", {}).get("responses", {})
        ]
