"""Every service's answers are what its OpenAPI document says: generated clients read them by it.

The document's response schemas are built from each service's models, while the answers are
built by its served model: nothing tied one to the other. NLPInsight's explanation (a label,
tokens with offsets) was described as the tabular one, so generated clients did not see its
fields. Each answer, explained and with reasons, single and batch, is validated here against
``/openapi.json`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from fastapi.testclient import TestClient

from servekit import registry
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import request_rows, train_in_memory, valid_requests, wait_ready

SERVICES = registry.available()


@pytest.fixture(scope="module", params=SERVICES)
def service(request: pytest.FixtureRequest) -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    spec = registry.get_service(request.param)
    artifact, split = train_in_memory(spec, rows=800)
    rows = valid_requests(spec, request_rows(split, 40))[:4]
    assert rows
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
