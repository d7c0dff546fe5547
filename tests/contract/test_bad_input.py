"""Every service answers bad input with a 4xx that names the field and the problem.

The cases are derived from each service's own request schema (its required
fields, bounds and categories), so a new service is covered the moment it is
registered, and every case applies to it (no skips).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from servekit import registry
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import train_in_memory, wait_ready

MAX_BATCH = 8
MAX_BODY = 8192


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: bytes
    status: int
    field: str
    problem: str = ""


def _properties(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each field's schema with ``Optional[...]``'s ``anyOf`` unwrapped."""
    out = {}
    for name, prop in schema["properties"].items():
        variants = [v for v in prop.get("anyOf", [prop]) if v.get("type") != "null"]
        out[name] = {**prop, **variants[0]} if variants else prop
    return out


def _dumps(body: Any) -> bytes:
    return json.dumps(body, allow_nan=True).encode()


def cases_for(name: str) -> list[Case]:
    spec = registry.get_service(name)
    schema = spec.request.model_json_schema()
    example = dict(schema["examples"][0])
    props = _properties(schema)
    first = schema["required"][0]
    numeric = next((f for f, p in props.items() if p.get("type") in ("number", "integer")), first)
    without_first = {k: v for k, v in example.items() if k != first}
    # The example with its first field sent again at the end, with the same (valid) value.
    repeated = _dumps(example)[:-1] + b", " + _dumps(first) + b": " + _dumps(example[first]) + b"}"
    cases = [
        Case("malformed-json", "/predict", b'{"' + first.encode() + b'": ', 422, "body"),
        Case("missing-field", "/predict", _dumps(without_first), 422, first, "Field required"),
        Case("wrong-type", "/predict", _dumps({**example, first: {"nested": 1}}), 422, first),
        Case("nan", "/predict", _dumps({**example, numeric: math.nan}), 422, numeric),
        Case("infinity", "/predict", _dumps({**example, numeric: math.inf}), 422, numeric),
        Case("extra-field", "/predict", _dumps({**example, "unexpected": 1}), 422, "unexpected", "Extra"),
        Case("not-an-object", "/predict", b"[]", 422, "body"),
        Case("duplicate-key", "/predict", repeated, 422, first, "given more than once"),
        Case(
            "duplicate-key-in-batch",
            "/predict/batch",
            b'{"instances": [' + _dumps(example) + b", " + repeated + b"]}",
            422,
            f"instances[1].{first}",
            "given more than once",
        ),
        Case("empty-batch", "/predict/batch", _dumps({"instances": []}), 422, "instances"),
        # A misspelt option would otherwise be ignored: an answer without the explanation asked for.
        Case("unknown-query-parameter", "/predict?explian=true", _dumps(example), 422, "query.explian"),
        Case(
            "query-parameter-twice",
            "/predict/batch?reasons=3&reasons=0",
            _dumps({"instances": [example]}),
            422,
            "query.reasons",
            "given 2 times",
        ),
        # Spellings a body's JSON would not take: refused naming what the parameter takes.
        Case(
            "explain-not-a-boolean",
            "/predict?explain=yes",
            _dumps(example),
            422,
            "query.explain",
            "send explain=true or explain=false",
        ),
        Case(
            "reasons-with-a-sign",
            "/predict?reasons=%2B3",
            _dumps(example),
            422,
            "query.reasons",
            "plain digits",
        ),
        Case(
            "reasons-as-a-float",
            "/predict?reasons=3.0",
            _dumps(example),
            422,
            "query.reasons",
            "plain digits",
        ),
        Case(
            "batch-over-limit", "/predict/batch", _dumps({"instances": [example] * (MAX_BATCH + 1)}), 413, ""
        ),
        Case("body-over-limit", "/predict", _dumps({**example, "padding": "x" * MAX_BODY}), 413, ""),
        Case(
            "bad-item-in-batch",
            "/predict/batch",
            _dumps({"instances": [example, without_first]}),
            422,
            f"instances[1].{first}",
            "Field required",
        ),
    ]
    for field, prop in props.items():
        for bound in ("maximum", "exclusiveMaximum"):
            if bound in prop:
                over = {**example, field: prop[bound] * 10 + 1000}
                cases.append(Case(f"out-of-range-{field}", "/predict", _dumps(over), 422, field))
                break
        if "enum" in prop:
            unknown = {**example, field: "no-such-category"}
            cases.append(Case(f"unknown-category-{field}", "/predict", _dumps(unknown), 422, field))
        if prop.get("type") == "integer":
            # A whole float is the integer (test_whole_floats_are_the_integers_the_schema_counts_them);
            # a fraction is not, nor is a boolean: JSON Schema's integers are no booleans.
            fraction = {**example, field: _inside(prop) + 0.5}
            cases.append(
                Case(f"fraction-{field}", "/predict", _dumps(fraction), 422, field, "fractional part")
            )
            boolean = {**example, field: True}
            cases.append(Case(f"boolean-{field}", "/predict", _dumps(boolean), 422, field, "valid integer"))
    return cases


def _inside(prop: dict[str, Any]) -> int:
    """An integer of the field's range with room for a half above it."""
    return int(prop.get("minimum", 0))


CASES = [(name, case) for name in registry.available() for case in cases_for(name)]


@pytest.fixture(scope="module")
def client_for() -> Iterator[Callable[[str], TestClient]]:
    """A test client per service, each on a tiny model trained in memory on first use."""
    with ExitStack() as stack:
        clients: dict[str, TestClient] = {}

        def get(name: str) -> TestClient:
            if name not in clients:
                spec = registry.get_service(name)
                artifact, _ = train_in_memory(spec, rows=1500)
                settings = load_settings(name, max_batch_size=MAX_BATCH, max_body_bytes=MAX_BODY)
                app = create_app(spec, settings, source=lambda: artifact)
                clients[name] = stack.enter_context(TestClient(app))
                wait_ready(clients[name])
            return clients[name]

        yield get


@pytest.mark.parametrize(("service", "case"), CASES, ids=[f"{s}-{c.name}" for s, c in CASES])
def test_bad_input_gets_a_4xx_naming_the_field(
    service: str, case: Case, client_for: Callable[[str], TestClient]
) -> None:
    response = client_for(service).post(
        case.path, content=case.body, headers={"content-type": "application/json"}
    )
    assert response.status_code == case.status, response.text
    body = response.json()
    assert body["error"]
    assert body["message"]
    if case.field:
        problems = {f["field"]: f["problem"] for f in body["fields"]}
        assert case.field in problems, body
        assert case.problem in problems[case.field], body


def integer_fields(name: str) -> list[str]:
    """The fields of a service's request its schema types as integers (nullable ones too)."""
    schema = registry.get_service(name).request.model_json_schema()
    return [field for field, prop in _properties(schema).items() if prop.get("type") == "integer"]


WITH_INTEGERS = [name for name in registry.available() if integer_fields(name)]


@pytest.mark.parametrize("service", WITH_INTEGERS)
def test_whole_floats_are_the_integers_the_schema_counts_them(
    service: str, client_for: Callable[[str], TestClient]
) -> None:
    """``"Age": 42.0`` is valid by the published schema (JSON Schema's integer is a number with no
    fractional part) and what a data frame's integer column with a gap sends: it is answered as 42."""
    example = dict(registry.get_service(service).request.model_json_schema()["examples"][0])
    as_floats = {**example, **{field: float(example[field]) for field in integer_fields(service)}}
    client = client_for(service)
    sent = [client.post("/predict", content=_dumps(body)) for body in (example, as_floats)]
    assert [r.status_code for r in sent] == [200, 200], sent[1].text
    assert sent[1].json() == sent[0].json()


def test_the_services_with_integer_fields_are_the_ones_that_have_them() -> None:
    assert {name: integer_fields(name) for name in WITH_INTEGERS} == {
        "bankchurn": ["CreditScore", "Age", "Tenure", "NumOfProducts", "HasCrCard", "IsActiveMember"],
        "chicagotaxi": ["pickup_community_area", "dropoff_community_area"],
    }


@pytest.mark.parametrize("service", registry.available())
def test_a_body_that_is_not_json_said_to_be_another_media_type_is_a_415_naming_the_header(
    service: str, client_for: Callable[[str], TestClient]
) -> None:
    client = client_for(service)
    example = registry.get_service(service).request.model_json_schema()["examples"][0]
    csv = (",".join(example) + "\n" + ",".join(map(str, example.values()))).encode()
    for path in ("/predict", "/predict/batch"):
        response = client.post(path, content=csv, headers={"content-type": "text/csv; charset=utf-8"})
        assert response.status_code == 415, response.text
        problems = {f["field"]: f["problem"] for f in response.json()["fields"]}
        assert "the body is not JSON, and is said to be 'text/csv'" in problems["headers.content-type"]
    # The header alone refuses nothing: JSON is read whatever it is said to be.
    for media_type in ("text/plain", "application/x-www-form-urlencoded", "application/vnd.api+json"):
        response = client.post("/predict", content=_dumps(example), headers={"content-type": media_type})
        assert response.status_code == 200, response.text
    # A body that is not JSON under curl -d's default, a JSON type or no header is a JSON syntax error.
    for headers in (
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "application/json"},
        {},
    ):
        response = client.post("/predict", content=csv, headers=headers)
        assert response.status_code == 422, response.text
        assert [f["field"] for f in response.json()["fields"]] == ["body"]


@pytest.mark.parametrize("service", registry.available())
def test_a_body_said_to_be_in_a_charset_other_than_utf_8_is_a_415_naming_it(
    service: str, client_for: Callable[[str], TestClient]
) -> None:
    example = registry.get_service(service).request.model_json_schema()["examples"][0]
    response = client_for(service).post(
        "/predict",
        content=json.dumps(example).encode("utf-16"),
        headers={"content-type": "application/json; charset=utf-16"},
    )
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    (problem,) = response.json()["fields"]
    assert problem["field"] == "headers.content-type"
    assert problem["problem"].startswith("charset 'utf-16'")
