"""A prediction endpoint's query string, as strict as its body: an unknown parameter or one given
twice is a 422 naming it, never an answer to a question the caller did not mean to ask."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

ROW = {"x": 3.0, "color": "red"}
INFER = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [3.0]}]}


@pytest.mark.parametrize("path", ["/predict", "/predict/batch"])
def test_a_misspelt_parameter_is_refused_rather_than_ignored(toy_client: TestClient, path: str) -> None:
    body = ROW if path == "/predict" else {"instances": [ROW]}
    response = toy_client.post(f"{path}?explian=true", json=body)
    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "query.explian", "problem": "not a parameter of this endpoint; it takes explain, reasons"}
    ]
    # Asked once each, the two it takes answer as ever.
    answered = toy_client.post(f"{path}?explain=true&reasons=1", json=body)
    assert answered.status_code == 200, answered.text


def test_a_parameter_given_twice_is_refused_rather_than_the_last_kept(toy_client: TestClient) -> None:
    response = toy_client.post("/predict?reasons=3&reasons=0&explain=true&explain=false&cb=1", json=ROW)
    assert response.status_code == 422
    assert response.json()["fields"] == [
        {"field": "query.reasons", "problem": "given 2 times; send it once"},
        {"field": "query.explain", "problem": "given 2 times; send it once"},
        {"field": "query.cb", "problem": "not a parameter of this endpoint; it takes explain, reasons"},
    ]
    assert response.json()["message"].startswith("3 problems: query.reasons: given 2 times")


def test_a_parameter_named_with_thousands_of_characters_is_named_by_its_start(toy_client: TestClient) -> None:
    response = toy_client.post(f"/predict?{'q' * 5000}=1", json=ROW)
    assert response.status_code == 422
    (problem,) = response.json()["fields"]
    assert problem["field"] == f"query.{'q' * 122}... (5,006 characters)"
    assert len(response.content) < 600, response.content


def test_the_open_inference_endpoint_takes_its_options_in_the_body(toy_client: TestClient) -> None:
    response = toy_client.post("/v2/models/toy/infer?explain=true", json=INFER)
    assert response.status_code == 422
    assert response.json()["error"] == (
        "1 problem: query.explain: not a parameter of this endpoint; it takes none: "
        "the protocol's options are the body's parameters"
    )


@pytest.mark.parametrize(
    ("asked", "explained"), [("true", True), ("TRUE", True), ("false", False), ("False", False)]
)
def test_explain_is_true_or_false_in_any_case(toy_client: TestClient, asked: str, explained: bool) -> None:
    for path in ("/predict", "/predict/batch"):
        body = ROW if path == "/predict" else {"instances": [ROW]}
        answer = toy_client.post(f"{path}?explain={asked}", json=body)
        assert answer.status_code == 200, answer.text
        prediction = answer.json() if path == "/predict" else answer.json()["predictions"][0]
        assert ("explanation" in prediction) is explained, (path, asked)


@pytest.mark.parametrize("asked", ["1", "0", "yes", "y", "t", "on", "off", "", " true"])
def test_explain_in_any_other_spelling_is_refused_naming_what_it_takes(
    toy_client: TestClient, asked: str
) -> None:
    """FastAPI's query booleans took ``explain=on`` or ``explain=t`` as true, which a body's JSON never
    would: a caller of /v2 or of another client library would not have guessed them."""
    for path in ("/predict", "/predict/batch"):
        body = ROW if path == "/predict" else {"instances": [ROW]}
        response = toy_client.post(f"{path}?explain={asked}", json=body)
        assert response.status_code == 422, (path, asked, response.text)
        assert response.json()["fields"] == [
            {
                "field": "query.explain",
                "problem": f"{asked!r} is neither true nor false; send explain=true or explain=false",
            }
        ]


@pytest.mark.parametrize("asked", ["+3", " 3", "3 ", "03", "3.0", "3_0", "-0", "3e0", "0x3", "٣"])
def test_reasons_in_anything_but_plain_digits_is_refused_naming_what_it_takes(
    toy_client: TestClient, asked: str
) -> None:
    """int() reads each of these as 3 (``3_0`` as 30): a typo was answered as another number."""
    response = toy_client.post("/predict", params={"reasons": asked}, json=ROW)
    assert response.status_code == 422, (asked, response.text)
    (problem,) = response.json()["fields"]
    assert problem == {
        "field": "query.reasons",
        "problem": f"{asked!r} is not a whole number in plain digits; send one such as 3 "
        "(no sign, space, fraction or leading zero)",
    }


@pytest.mark.parametrize("asked", ["0", "3", "10"])
def test_reasons_in_plain_digits_is_taken(toy_client: TestClient, asked: str) -> None:
    answer = toy_client.post(f"/predict?reasons={asked}", json=ROW)
    assert answer.status_code == 200, answer.text
    assert len(answer.json().get("reasons") or []) == min(int(asked), len(ROW))


def test_the_options_are_refused_before_a_model_is_ready(toy_client: TestClient) -> None:
    """A bad query string is the caller's to mend whatever the pod's state: a 422, never a 503 that
    a client would retry unchanged."""
    runtime = toy_client.app.state.runtime  # type: ignore[attr-defined]
    served, runtime.model = runtime.model, None
    try:
        assert toy_client.post("/predict?reasons=99", json=ROW).status_code == 422
        assert toy_client.post("/predict?explain=true", json=ROW).status_code == 503
    finally:
        runtime.model = served
