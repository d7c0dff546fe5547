"""SageMaker and Vertex AI contracts, called in-process, answer exactly as the FastAPI service does.

Each service gets a tiny model trained in memory, written as the MLflow model directory the
trainer logs, packaged as ``model.tar.gz`` and unpacked as SageMaker would; both managed
contracts then load it from disk while the FastAPI app serves the in-memory original.
"""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from servekit import registry
from servekit.managed import common, csv_body, packaging, sagemaker
from servekit.managed.common import LoadedModel
from servekit.managed.vertex import ServekitPredictor
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import request_rows, train_in_memory, wait_ready

SERVICES = registry.available()
ROWS = {"nlpinsight": 600}
#: Stands in for the MLflow model's requirements.txt (the trainer lets MLflow infer it).
TRAINED_WITH = ["scikit-learn", "lightgbm", "numpy", "pandas", "scipy", "skops"]


def _types(schema: dict[str, Any]) -> set[str]:
    types = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        types |= _types(option)
    return types


def examples(request: type[BaseModel]) -> list[dict[str, Any]]:
    """The request model's OpenAPI examples (e.g. an ISO timestamp next to a Unix one)."""
    return [dict(e) for e in request.model_json_schema().get("examples", [])]


def as_json_types(request: type[BaseModel], row: dict[str, Any]) -> dict[str, Any]:
    """A held-out row as a client sends it: integral floats of integer fields as integers."""
    properties = request.model_json_schema()["properties"]
    out = {}
    for name, value in row.items():
        integer_only = _types(properties[name]) & {"integer", "number"} == {"integer"}
        out[name] = int(value) if integer_only and isinstance(value, float) and value.is_integer() else value
    return out


class Target:
    def __init__(self, name: str, tmp: Path) -> None:
        spec = registry.get_service(name)
        artifact, data = train_in_memory(spec, rows=ROWS.get(name, 800))
        self.artifact: ModelArtifact = artifact
        self.rows = examples(spec.request) + [as_json_types(spec.request, r) for r in request_rows(data, 5)]
        model_dir = packaging.save_mlflow_model(
            artifact, tmp / "mlflow-model", packaging.installed_pins(TRAINED_WITH)
        )
        self.package, self.notes = packaging.build_package(
            name, model_dir, tmp / "model.tar.gz", packaging.manifest_of(artifact)
        )
        self.unpacked = packaging.extract(self.package, tmp / "opt-ml-model")
        self.sagemaker: LoadedModel = sagemaker.model_fn(str(self.unpacked))
        self.vertex = ServekitPredictor()
        self.vertex.load(str(self.unpacked))
        self.spec = spec

    def invoke(self, body: bytes | str, content_type: str = "application/json") -> bytes:
        decoded = sagemaker.input_fn(body, content_type)
        out, media = sagemaker.output_fn(sagemaker.predict_fn(decoded, self.sagemaker), "application/json")
        assert media == "application/json"
        return out

    def vertex_predict(self, request: dict[str, Any]) -> bytes:
        result = self.vertex.postprocess(self.vertex.predict(self.vertex.preprocess(request)))
        return orjson.dumps(result)


@pytest.fixture(scope="module", params=SERVICES)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Target:
    return Target(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def rest(target: Target) -> Iterator[TestClient]:
    artifact = target.artifact
    with TestClient(create_app(target.spec, load_settings(target.spec.name), source=lambda: artifact)) as c:
        wait_ready(c)
        yield c


#: What a request may ask beside the predictions: the same options over every transport.
ASKED: list[dict[str, Any]] = [{}, {"explain": True}, {"reasons": 2}, {"explain": True, "reasons": 3}]


def rest_batch(client: TestClient, rows: list[dict[str, Any]], asked: dict[str, Any]) -> bytes:
    params = {key: str(value).lower() for key, value in asked.items()}
    response = client.post("/predict/batch", params=params, json={"instances": rows})
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize("asked", ASKED)
def test_sagemaker_json_equals_rest(target: Target, rest: TestClient, asked: dict[str, Any]) -> None:
    expected = rest_batch(rest, target.rows, asked)
    got = target.invoke(orjson.dumps({"instances": target.rows, **asked}))
    assert got == expected
    predictions = json.loads(got)["predictions"]
    assert all(("explanation" in p) is asked.get("explain", False) for p in predictions)
    assert all(len(p.get("reasons", [])) == asked.get("reasons", 0) for p in predictions)


def test_sagemaker_bare_list_and_str_body(target: Target, rest: TestClient) -> None:
    expected = rest_batch(rest, target.rows, {})
    assert target.invoke(orjson.dumps(target.rows).decode()) == expected


@pytest.mark.parametrize("asked", ASKED)
def test_sagemaker_csv_equals_rest(target: Target, rest: TestClient, asked: dict[str, Any]) -> None:
    fields = list(target.spec.request.model_fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(fields)  # optional header
    for row in target.rows:
        writer.writerow(["" if row[f] is None else row[f] for f in fields])
    content_type = "; ".join(["text/csv", *(f"{key}={str(value).lower()}" for key, value in asked.items())])
    assert target.invoke(buffer.getvalue(), content_type) == rest_batch(rest, target.rows, asked)


@pytest.mark.parametrize("asked", ASKED)
def test_vertex_equals_rest(target: Target, rest: TestClient, asked: dict[str, Any]) -> None:
    request = {"instances": target.rows, "parameters": asked}
    assert target.vertex_predict(request) == rest_batch(rest, target.rows, asked)
    assert "predictions" in json.loads(target.vertex_predict({"instances": target.rows}))


def bad_bodies(target: Target) -> list[tuple[bytes, str]]:
    field = next(iter(target.spec.request.model_fields))
    row = dict(target.rows[0])
    repeated = orjson.dumps(row)[:-1] + b', "' + field.encode() + b'": ' + orjson.dumps(row[field]) + b"}"
    return [
        (b'{"instances": [', "malformed JSON"),
        (b'{"instances": [' + repeated + b"]}", "a key given twice"),
        (orjson.dumps({"instances": []}), "empty batch"),
        (orjson.dumps({"instances": [{k: v for k, v in row.items() if k != field}]}), "missing field"),
        (orjson.dumps({"instances": [{**row, "unexpected": 1}]}), "extra field"),
        (orjson.dumps({"instances": [row], "explain": "yes"}), "explain not a boolean"),
        (orjson.dumps({"instances": [row], "reasons": -1}), "reasons below 0"),
        (orjson.dumps({"instances": [row], "reasons": 51}), "reasons above the limit"),
        (orjson.dumps({"instances": [row], "reasons": "3"}), "reasons not an integer"),
        (orjson.dumps({"instances": [row], "reasons": True}), "reasons a boolean"),
        (orjson.dumps("just a string"), "not an object"),
    ]


def test_sagemaker_bad_input_is_a_clear_4xx(target: Target, rest: TestClient) -> None:
    for body, what in bad_bodies(target):
        with pytest.raises(sagemaker.InvalidRequest) as caught:
            target.invoke(body)
        error = caught.value
        assert error.status_code == 422, what
        parsed = json.loads(error.message)
        assert parsed["error"] == "invalid_request", what
        assert parsed["fields"], what
        if what.startswith("reasons"):
            assert [f["field"] for f in parsed["fields"]] == ["reasons"], what
            assert "integer from 0 to 50" in parsed["fields"][0]["problem"], what
        elif what not in ("explain not a boolean", "not an object"):
            # the same body the REST service returns for the same instances
            response = rest.post("/predict/batch", content=body, headers={"content-type": "application/json"})
            assert response.status_code == 422, what
            assert response.json() == parsed, what


def test_sagemaker_csv_and_media_type_errors(target: Target) -> None:
    with pytest.raises(sagemaker.InvalidRequest) as caught:
        target.invoke("1,2\n", "text/csv")
    assert caught.value.status_code == 422
    assert "columns" in caught.value.message
    for reasons in ("two", "1.5", "-1", "51"):
        with pytest.raises(sagemaker.InvalidRequest) as caught:
            target.invoke(f"{','.join(map(str, target.rows[0].values()))}\n", f"text/csv; reasons={reasons}")
        assert caught.value.status_code == 422, reasons
        assert json.loads(caught.value.message)["fields"][0]["field"] == "content_type.reasons"
    # A misspelt option, a flag that is neither true nor false and a charset the body is not
    # decoded with are refused, where they used to be ignored or read as false.
    fields = list(target.spec.request.model_fields)
    row = ",".join("" if target.rows[0][f] is None else str(target.rows[0][f]) for f in fields) + "\n"
    for content_type, field, problem in (
        ("text/csv; explian=true", "content_type.explian", "not an option; the options are explain, reasons"),
        ("text/csv; explain=maybe", "content_type.explain", '"maybe" is not true or false'),
        ("text/csv; charset=latin-1", "content_type.charset", '"latin-1" is not supported; send UTF-8'),
    ):
        with pytest.raises(sagemaker.InvalidRequest) as caught:
            target.invoke(row, content_type)
        assert caught.value.status_code == 422, content_type
        assert json.loads(caught.value.message)["fields"] == [{"field": field, "problem": problem}]
    # The media type's own parameters are taken, and a flag's words in any case.
    answered = target.invoke(row, "text/csv; charset=UTF-8; header=absent; explain=YES")
    assert "explanation" in json.loads(answered)["predictions"][0]
    with pytest.raises(sagemaker.InvalidRequest) as caught:
        target.invoke(b"x", "application/x-npy")
    assert caught.value.status_code == 415
    with pytest.raises(sagemaker.InvalidRequest) as caught:
        sagemaker.output_fn({}, "text/csv")
    assert caught.value.status_code == 406


def test_vertex_bad_input_is_an_http_4xx(target: Target) -> None:
    row = dict(target.rows[0])
    for request in (
        {"instances": []},
        {"instances": [{**row, "unexpected": 1}]},
        {"instances": [row], "parameters": {"explain": 1}},
        {"instances": [row], "parameters": {"reasons": 1.5}},
        {"instances": [row], "parameters": {"reasons": 99}},
        {"instances": [row], "parameters": {"explian": True}},
    ):
        with pytest.raises(HTTPException) as caught:
            target.vertex.preprocess(request)
        assert caught.value.status_code == 422
        assert caught.value.detail["error"] == "invalid_request"
    assert caught.value.detail["fields"] == [
        {"field": "parameters.explian", "problem": "not an option; the options are explain, reasons"}
    ]


def test_package_layout_and_pins(target: Target) -> None:
    with tarfile.open(target.package) as tar:
        names = set(tar.getnames())
        requirements = tar.extractfile("code/requirements.txt").read().decode()  # type: ignore[union-attr]
        entry = tar.extractfile("code/inference.py").read().decode()  # type: ignore[union-attr]
    name = target.spec.name
    assert {"MLmodel", "servekit.json", "code/inference.py", "code/requirements.txt"} <= names
    assert "code/servekit/managed/sagemaker.py" in names
    assert f"code/{name}/service.py" in names
    assert not any("__pycache__" in n for n in names)
    assert f'"MLP_SERVICE", "{name}"' in entry
    assert "model_fn" in entry
    lines = requirements.split()
    for dist in TRAINED_WITH:
        assert f"{dist}=={metadata.version(dist)}" in lines
    assert all("==" in line for line in lines), lines
    assert not any(line.split("==")[0] in packaging.WORKSPACE for line in lines)


def test_requirements_pin_the_training_versions(tmp_path: Path) -> None:
    """The model's own pins win over this environment's (the anchor shipped sklearn two majors behind)."""
    (tmp_path / "requirements.txt").write_text(
        "mlflow==3.1.0\nscikit-learn==1.5.2\n# comment\n-c constraints.txt\n"
    )
    lines, notes = packaging.requirements(tmp_path, "bankchurn")
    assert "scikit-learn==1.5.2" in lines
    assert "mlflow==3.1.0" in lines
    assert not any(line.startswith("scikit-learn==") and line != "scikit-learn==1.5.2" for line in lines)
    if metadata.version("scikit-learn") != "1.5.2":
        assert any(note.startswith("scikit-learn: trained with scikit-learn==1.5.2") for note in notes)


@pytest.mark.parametrize("service", SERVICES)
def test_model_requirements_pin_the_model_stack_and_what_it_depends_on(service: str) -> None:
    lines = packaging.model_requirements(service)
    pins = dict(line.split("==") for line in lines)
    # The model stack with its own dependencies, at the versions that fitted the model.
    for dist in [*TRAINED_WITH, "joblib", "threadpoolctl", "python-dateutil"]:
        assert pins[dist] == metadata.version(dist), dist
    # What serving needs beyond unpickling.
    assert {"fastapi", "uvicorn[standard]", "pydantic", "mlflow", "jiter"} <= set(pins)
    # Not what the training process happened to import, nor the installer, nor the workspace.
    assert not {"pytest", "rich", "pip"} & set(pins)
    assert not set(pins) & packaging.WORKSPACE
    names = [line.split("==")[0].split("[")[0] for line in lines]
    assert names == sorted(names)  # one order, so the file changes only when a pin does


def test_managed_batch_limit_is_the_services_own_setting(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``<SVC>_MAX_BATCH_SIZE`` bounds the managed endpoints as it bounds the REST service: 413 above."""
    monkeypatch.setenv(f"{target.spec.name.upper()}_MAX_BATCH_SIZE", "2")
    loaded = sagemaker.model_fn(str(target.unpacked))
    assert loaded.max_batch_size == 2
    body = orjson.dumps({"instances": [target.rows[0]] * 3})
    with pytest.raises(sagemaker.InvalidRequest) as caught:
        sagemaker.predict_fn(sagemaker.input_fn(body, "application/json"), loaded)
    assert caught.value.status_code == 413
    assert "limit is 2" in caught.value.message
    two = orjson.dumps({"instances": [target.rows[0]] * 2})
    assert sagemaker.predict_fn(sagemaker.input_fn(two, "application/json"), loaded)


# -- CSV read as RFC 4180 writes it, and answered as REST answers the same instances ---------


def answer(target: Target, body: bytes | str, content_type: str = "application/json") -> tuple[int, bytes]:
    """What the handlers answer: the body, or a refusal's status and body."""
    try:
        return 200, target.invoke(body, content_type)
    except sagemaker.InvalidRequest as refusal:
        return refusal.status_code, refusal.message.encode()


def rest_answer(rest: TestClient, instances: list[dict[str, Any]]) -> tuple[int, bytes]:
    response = rest.post(
        "/predict/batch",
        content=orjson.dumps({"instances": instances}),
        headers={"content-type": "application/json"},
    )
    return response.status_code, response.content


def as_csv(rows: list[dict[str, Any]], columns: list[str], header: bool = False) -> str:
    """``rows`` as a CSV writer writes them: quoted where a cell holds a comma, quote or line break."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name in columns])
    return buffer.getvalue()


def first_text_field(target: Target) -> str:
    properties = target.spec.request.model_json_schema()["properties"]
    return next(name for name in target.spec.request.model_fields if "string" in _types(properties[name]))


def refused(status_and_body: tuple[int, bytes]) -> list[dict[str, str]]:
    status, body = status_and_body
    assert status == 422, body[:500]
    fields: list[dict[str, str]] = json.loads(body)["fields"]
    return fields


def test_csv_quoted_cells_with_commas_quotes_and_line_breaks_are_read_as_written(
    target: Target, rest: TestClient
) -> None:
    field = first_text_field(target)
    rows = [{**row, field: f'{row[field]}, "quoted"\nand a second line'} for row in target.rows[:3]]
    columns = list(target.spec.request.model_fields)
    assert answer(target, as_csv(rows, columns), "text/csv") == rest_answer(rest, rows)


def test_csv_quote_never_closed_is_a_422_naming_the_row_where_it_opened(target: Target) -> None:
    """Python's reader ran an unclosed quote to the end of the body: the rows after it were one
    cell, and NLPInsight answered four headlines with one prediction, 200."""
    columns = list(target.spec.request.model_fields)
    unquoted = [row for row in target.rows if '"' not in as_csv([row], columns)][:4]
    lines = as_csv(unquoted, columns).splitlines(keepends=True)
    body = lines[0] + '"' + "".join(lines[1:])
    assert refused(answer(target, body, "text/csv")) == [
        {"field": f"instances[1].{columns[0]}", "problem": f"line 2, cell 1: {csv_body.UNCLOSED}"}
    ]
    # Closed by a quote lines later: named where it opened, saying where it closed.
    closed_later = lines[0] + '"' + lines[1] + lines[2].rstrip("\n") + 'x"y\n'
    [problem] = refused(answer(target, closed_later, "text/csv"))
    assert problem["field"] == f"instances[1].{columns[0]}"
    assert problem["problem"].startswith(
        "line 2, cell 1: the quoted cell starting here closes on line 3 and 'y'"
    )
    if target.spec.name == "nlpinsight":
        headlines = (
            '"Breaking: $TSLA misses estimates, shares slide\nFed holds rates steady\n'
            "Apple beats on revenue, stock jumps\nOil prices fall sharply\n"
        )
        [problem] = refused(answer(target, headlines, "text/csv"))
        assert problem["field"] == "instances[0].text"
        assert problem["problem"].startswith(
            "line 1, cell 1: a quoted cell starts here and its quote is never closed"
        )


def _unquoted(value: Any) -> str:
    return "" if value is None else str(value)


def test_csv_quotes_inside_a_cell_that_does_not_start_with_one_are_text(
    target: Target, rest: TestClient
) -> None:
    """Unquoted headlines with quotes in them (``Powell says "no rush"``, ``5"``) were answered 200
    before the CSV was read as RFC 4180, then refused: they are text, as Python's reader and pandas
    read them, and such a cell ends at the next comma or line end."""
    field = first_text_field(target)
    columns = list(target.spec.request.model_fields)
    value = str(target.rows[0][field])
    for text in (f'Powell says "no rush" on {value}', f'5" {value}', f' "{value}"', f'{value}"'):
        rows = [{**target.rows[0], field: text}, target.rows[1]]
        body = ",".join(_unquoted(rows[0][name]) for name in columns) + "\n" + as_csv(rows[1:], columns)
        assert answer(target, body, "text/csv") == rest_answer(rest, rows), text
    if target.spec.name == "nlpinsight":
        headlines = 'Powell says "no rush" to cut rates\nStocks rally 5" on Fed\n'
        status, body = answer(target, headlines, "text/csv")
        assert status == 200, body
        assert len(json.loads(body)["predictions"]) == 2


def test_csv_text_after_a_closing_quote_is_a_422_naming_the_row_and_field(target: Target) -> None:
    field = first_text_field(target)
    columns = list(target.spec.request.model_fields)
    cell = columns.index(field) + 1
    row = ",".join(_unquoted(target.rows[0][name]) for name in columns)
    good = as_csv(target.rows[:1], columns)
    for bad, problem in (
        (
            row.replace(str(target.rows[0][field]), f'"{target.rows[0][field]}"x', 1),
            "the quoted cell starting here closes and 'x' follows its quote",
        ),
        (
            row.replace(str(target.rows[0][field]), f'"{target.rows[0][field]}" ', 1),
            "the quoted cell starting here closes and ' ' follows its quote",
        ),
    ):
        [named] = refused(answer(target, f"{good}{bad}\n", "text/csv"))
        assert named["field"] == f"instances[1].{field}", bad
        assert named["problem"].startswith(f"line 2, cell {cell}: {problem}"), named


def test_csv_header_absent_reads_a_row_of_the_field_names_as_an_instance(
    target: Target, rest: TestClient
) -> None:
    """``header=absent`` was accepted and not read: a row equal to the names was dropped as a header."""
    columns = list(target.spec.request.model_fields)
    rows = [dict(zip(columns, columns, strict=True)), target.rows[0]]
    body = as_csv(rows, columns)
    assert answer(target, body, "text/csv; header=absent") == rest_answer(rest, rows)
    # Without the parameter, such a first row is taken for the header, as documented.
    assert answer(target, body, "text/csv") == rest_answer(rest, rows[1:])


def test_csv_header_names_the_columns_in_any_order(target: Target, rest: TestClient) -> None:
    columns = list(reversed(target.spec.request.model_fields))
    expected = rest_answer(rest, target.rows)
    assert expected[0] == 200
    for content_type in ("text/csv; header=present", "text/csv"):
        assert answer(target, as_csv(target.rows, columns, header=True), content_type) == expected, (
            content_type
        )


def test_csv_header_present_names_each_field_once_or_is_a_422_naming_the_header(target: Target) -> None:
    fields = list(target.spec.request.model_fields)
    renamed = ["Unknown", *fields[1:]]
    [problem] = refused(answer(target, as_csv([], renamed, header=True), "text/csv; header=present"))
    assert problem == {
        "field": "header",
        "problem": f'names no field: "Unknown"; has no column for {fields[0]} (line 1); '
        f"the fields are {', '.join(fields)}",
    }
    # An instance where the header should be is not read as one when the header is said present.
    [problem] = refused(answer(target, as_csv(target.rows[:1], fields), "text/csv; header=present"))
    assert problem["field"] == "header"
    [problem] = refused(answer(target, as_csv(target.rows[:1], fields), "text/csv; header=maybe"))
    assert problem == {"field": "content_type.header", "problem": '"maybe" is not present or absent'}


def test_csv_cell_over_the_csv_modules_limit_is_answered_as_rest_answers_it(
    target: Target, rest: TestClient
) -> None:
    """A cell over 131,072 characters was the csv module's error, a 500 with a traceback."""
    field = first_text_field(target)
    rows = [{**target.rows[0], field: "x" * 140_000}]
    got = answer(target, as_csv(rows, list(target.spec.request.model_fields)), "text/csv")
    assert got == rest_answer(rest, rows)
    assert got[0] == 422
    if target.spec.name == "nlpinsight":
        assert refused(got) == [
            {"field": "instances[0].text", "problem": "has 140000 characters; send at most 5000 characters"}
        ]


def test_managed_body_limit_is_the_services_own_setting(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``<SVC>_MAX_BODY_BYTES`` bounds the managed endpoints as it bounds the REST service: REST's 413
    above it, for JSON and CSV alike (the managed paths read any size)."""
    monkeypatch.setenv(f"{target.spec.name.upper()}_MAX_BODY_BYTES", "1024")
    artifact = target.artifact
    with TestClient(
        create_app(target.spec, load_settings(target.spec.name), source=lambda: artifact)
    ) as small:
        wait_ready(small)
        field = first_text_field(target)
        rows = [{**target.rows[0], field: "x" * 1100}]
        expected = rest_answer(small, rows)
    assert expected[0] == 413
    loaded = sagemaker.model_fn(str(target.unpacked))
    columns = list(target.spec.request.model_fields)
    for body, content_type in (
        (orjson.dumps({"instances": rows}), "application/json"),
        (as_csv(rows, columns), "text/csv"),
    ):
        with pytest.raises(sagemaker.InvalidRequest) as caught:
            sagemaker.predict_fn(sagemaker.input_fn(body, content_type), loaded)
        assert (caught.value.status_code, caught.value.message.encode()) == expected, content_type
    assert sagemaker.predict_fn(
        sagemaker.input_fn(orjson.dumps({"instances": target.rows[:1]}), "application/json"), loaded
    )


def test_option_errors_spell_the_value_as_json(target: Target) -> None:
    row = target.rows[0]
    for options, field, problem in (
        ({"reasons": True}, "reasons", "true is not an integer from 0 to 50"),
        ({"explain": None}, "explain", "null is not true or false"),
        ({"explain": "yes"}, "explain", '"yes" is not true or false'),
    ):
        assert refused(answer(target, orjson.dumps({"instances": [row], **options}))) == [
            {"field": field, "problem": problem}
        ]
    with pytest.raises(HTTPException) as caught:
        target.vertex.preprocess({"instances": [row], "parameters": False})
    assert caught.value.detail["fields"] == [
        {"field": "parameters", "problem": 'false is not an object such as {"explain": true}'}
    ]


def test_the_package_check_names_the_model_by_its_uri_not_a_deleted_download(
    target: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``mlp package-sagemaker`` loads the download to check it: what the model logs while loading
    (NLPInsight: which text normalisation it reads with) named the temporary directory."""
    loaded: list[ModelArtifact] = []
    real = common.served_model

    def spy(spec: Any, artifact: ModelArtifact) -> Any:
        loaded.append(artifact)
        return real(spec, artifact)

    monkeypatch.setattr(common, "served_model", spy)
    download = packaging.save_mlflow_model(target.artifact, tmp_path / "download", [])
    packaging.check_loads(target.spec.name, download, f"models:/{target.spec.name}/3")
    assert [artifact.uri for artifact in loaded] == [f"models:/{target.spec.name}/3"]
