"""``mlp score`` on JSON Lines: each object's values validated with their JSON types and copied as
they were, a bad line a rejected row; and across formats, into and out of CSV and Parquet."""

from __future__ import annotations

import datetime
import decimal
import gzip
import json
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import TypeAdapter, ValidationError
from toy import TOY, ToyModel, ToyRequest

from servekit.errors import rejection
from servekit.model import ModelArtifact
from servekit.scoring import ScoringError, pool, score_file
from servekit.scoring.formats import JsonLinesFile
from servekit.training.splitting import Split

#: The toy's request fields (x, color, note) beside an id, a count and a nested value; "seen"
#: appears first on the third line, as an export leaves out a null field.
OBJECTS: list[dict[str, Any]] = [
    {"id": "007", "x": 3, "color": "red", "visits": 1, "tags": {"vip": True}},
    {"id": "008", "x": 2.5, "color": "blue", "note": "hello", "visits": 2, "tags": None},
    {"id": "009", "x": 11, "color": "red", "visits": 3, "seen": "2026-11-03"},  # x out of range
    {"id": "010", "x": 9.75, "color": "red", "visits": 4},
]
ADDED = ["value", "outside_training", "model_version", "error"]


@pytest.fixture
def model(toy_trained: tuple[ModelArtifact, Split]) -> ToyModel:
    return ToyModel(toy_trained[0])


def jsonl(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def source(tmp_path: Path) -> Path:
    lines = [json.dumps(o).encode() for o in OBJECTS]
    # A blank line is no row; a line that is no object is a rejected row, named by its line.
    return jsonl(tmp_path / "in.jsonl", [*lines[:2], b"", b'{"id": "0', b"[1, 2]", *lines[2:]])


def test_each_object_is_parsed_as_the_api_parses_a_body(model: ToyModel, tmp_path: Path) -> None:
    lines = [
        b'{"x": 3, "color": "red"}',
        b'{"x": 3, "color": "red", "x": 4}',  # the API refuses a key given twice
        b'{"x": NaN, "color": "red"}',  # read, then refused by the field's name
        b'{"x": "3", "color": "blue"}',  # a number's text, which the API refuses
        b'"x"',
        b"\xff",
    ]
    summary = score_file(TOY, model, jsonl(tmp_path / "in.jsonl", lines), tmp_path / "out.jsonl")
    errors = [row["error"] for row in read_lines(tmp_path / "out.jsonl")]
    assert errors == [
        None,
        "line 2: 'x' given more than once in one object; send each field once",
        "x: Input should be a finite number",
        "x: Input should be a valid number",
        "line 5: a JSON string, not an object",
        "line 6: not JSON (expected value at column 1)",
    ]
    assert (summary.rows, summary.scored) == (6, 1)


def test_each_object_is_validated_as_the_api_validates_the_same_body(model: ToyModel, tmp_path: Path) -> None:
    # Read laxly as CSV cells are, "3", "2.5" and true were scored where the API answers 422.
    lines = [
        b'{"x": 3, "color": "red"}',
        b'{"x": "3", "color": "red"}',
        b'{"x": 2.5, "color": "blue", "note": "hello"}',
        b'{"x": "2.5", "color": "blue"}',
        b'{"x": true, "color": "red"}',
        b'{"x": 3.0, "color": "red", "note": 7}',
        b'{"x": 3e0, "color": "blue", "note": null}',
    ]
    summary = score_file(TOY, model, jsonl(tmp_path / "in.jsonl", lines), tmp_path / "out.jsonl")
    api = TypeAdapter(ToyRequest)
    answered = []
    for line in lines:
        try:
            api.validate_json(line)
        except ValidationError as exc:
            answered.append(rejection(exc))
        else:
            answered.append(None)
    errors = [row["error"] for row in read_lines(tmp_path / "out.jsonl")]
    assert (
        errors
        == answered
        == [
            None,
            "x: Input should be a valid number",
            None,
            "x: Input should be a valid number",
            "x: Input should be a valid number",
            "note: Input should be a valid string",
            None,
        ]
    )
    assert (summary.rows, summary.scored) == (7, 3)
    # The same values as a CSV file's cells are text, read laxly: "3" is the number 3 there.
    cells = "x,color\n3,red\n2.5,blue\n"
    (tmp_path / "in.csv").write_text(cells)
    summary = score_file(TOY, model, tmp_path / "in.csv", tmp_path / "out.csv")
    assert (summary.rows, summary.scored) == (2, 2)


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_json_lines_file_keeps_each_values_json_type_and_gains_typed_scores(
    model: ToyModel, tmp_path: Path
) -> None:
    summary = score_file(TOY, model, source(tmp_path), tmp_path / "out.jsonl", chunk_rows=4)
    rows = read_lines(tmp_path / "out.jsonl")
    # Every key of every object, in the order they first appear; one absent from a line is null.
    columns = ["id", "x", "color", "visits", "tags", "note", "seen"]
    assert [list(row) for row in rows] == [[*columns, *ADDED]] * 6
    assert [row["id"] for row in rows] == ["007", "008", None, None, "009", "010"]
    assert [row["visits"] for row in rows] == [1, 2, None, None, 3, 4]  # numbers, not "1"
    assert rows[0]["tags"] == {"vip": True}
    assert [row["seen"] for row in rows] == [None, None, None, None, "2026-11-03", None]
    # Scored as the API would answer the same objects.
    valid = [{"x": 3.0, "color": "red", "note": None}, {"x": 2.5, "color": "blue", "note": "hello"}]
    valid.append({"x": 9.75, "color": "red", "note": None})
    assert [rows[i]["value"] for i in (0, 1, 5)] == [p["value"] for p in model.predict(valid)]
    assert {rows[i]["model_version"] for i in (0, 1, 5)} == {"test"}
    assert [rows[i]["error"] for i in range(6)] == [
        None,
        None,
        "line 4: not JSON (EOF while parsing a string at column 9)",
        "line 5: a JSON array, not an object",
        "x: Input should be less than or equal to 10",
        None,
    ]
    assert [rows[i]["value"] for i in (2, 3, 4)] == [None] * 3
    assert (summary.rows, summary.scored, summary.output_format) == (6, 3, "jsonl")
    assert summary.rejections[:2] == [
        "row 3: line 4: not JSON (EOF while parsing a string at column 9)",
        "row 4: line 5: a JSON array, not an object",
    ]


def test_worker_processes_write_the_same_lines_as_one_process(
    model: ToyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)  # the toy file is tiny
    score = partial(score_file, TOY, model, source(tmp_path), chunk_rows=2, explain=True, reasons=1)
    alone, shared = score(tmp_path / "alone.jsonl"), score(tmp_path / "shared.jsonl", workers=2)
    assert (shared.workers, alone.workers) == (2, 0)
    assert (tmp_path / "shared.jsonl").read_bytes() == (tmp_path / "alone.jsonl").read_bytes()
    first = read_lines(tmp_path / "alone.jsonl")[0]
    # The explanation and the lists as the documents they are, where CSV and Parquet hold text.
    explanation, outside = first["explanation"], first["outside_training"]
    assert first["reason_1_contribution"] == max(explanation["contributions"].values(), key=abs)
    assert explanation["base_value"] + sum(explanation["contributions"].values()) == pytest.approx(
        first["value"], rel=1e-6
    )
    assert outside == []
    score_file(TOY, model, source(tmp_path), tmp_path / "explained.parquet", explain=True)
    as_text = pq.read_table(tmp_path / "explained.parquet").column("explanation").to_pylist()
    assert json.loads(as_text[0]) == explanation
    assert read_lines(tmp_path / "alone.jsonl")[2]["explanation"] is None  # a rejected row


def test_json_lines_scores_have_the_added_columns_of_every_other_format(
    model: ToyModel, tmp_path: Path
) -> None:
    table = pa.table(
        {
            "id": ["007", "008"],
            "x": pa.array([3.0, None]),
            "color": ["red", "blue"],
            "seen": pa.array([datetime.datetime(2026, 11, 1, 9, 30)] * 2, type=pa.timestamp("ms")),
            "price": pa.array([decimal.Decimal("10.25"), None], type=pa.decimal128(10, 2)),
            "photo": pa.array([b"\x89PNG", b""], type=pa.binary()),
        }
    )
    pq.write_table(table, tmp_path / "in.parquet")
    score_file(TOY, model, tmp_path / "in.parquet", tmp_path / "pq.parquet")
    score_file(TOY, model, tmp_path / "in.parquet", tmp_path / "pq.jsonl")
    from_parquet = read_lines(tmp_path / "pq.jsonl")
    # Parquet's values as JSON: a time as ISO 8601, a decimal as text (every digit), bytes as base64.
    assert from_parquet[0] | {"value": None} == {
        "id": "007",
        "x": 3.0,
        "color": "red",
        "seen": "2026-11-01T09:30:00",
        "price": "10.25",
        "photo": "iVBORw==",
        "value": None,
        "outside_training": [],
        "model_version": "test",
        "error": None,
    }
    typed = pq.read_table(tmp_path / "pq.parquet").select(ADDED).to_pylist()
    for row in typed:  # a list is text in Parquet
        row["outside_training"] = (
            None if row["outside_training"] is None else json.loads(row["outside_training"])
        )
    assert [{k: row[k] for k in ADDED} for row in from_parquet] == typed
    # A CSV file's cells as strings, an empty cell null; the same scores.
    table.drop_columns(["photo"]).to_pandas().to_csv(tmp_path / "in.csv", index=False)
    score_file(TOY, model, tmp_path / "in.csv", tmp_path / "csv.jsonl")
    from_csv = read_lines(tmp_path / "csv.jsonl")
    assert [row["x"] for row in from_csv] == ["3.0", None]
    assert [{k: row[k] for k in ADDED} for row in from_csv] == typed


def test_json_lines_into_csv_and_parquet_write_each_value_as_its_json_text(
    model: ToyModel, tmp_path: Path
) -> None:
    score_file(TOY, model, source(tmp_path), tmp_path / "out.jsonl")
    score_file(TOY, model, source(tmp_path), tmp_path / "out.parquet")
    score_file(TOY, model, source(tmp_path), tmp_path / "out.csv")
    as_lines = read_lines(tmp_path / "out.jsonl")
    table = pq.read_table(tmp_path / "out.parquet")
    copied = ["id", "x", "color", "visits", "tags", "note", "seen"]
    assert table.select(copied).schema == pa.schema([(name, pa.string()) for name in copied])
    assert table.column("tags").to_pylist()[:2] == ['{"vip":true}', None]
    assert table.column("visits").to_pylist() == ["1", "2", None, None, "3", "4"]
    as_text = [{**row, "outside_training": _text(row["outside_training"])} for row in as_lines]
    assert table.select(ADDED).to_pylist() == [{k: row[k] for k in ADDED} for row in as_text]
    cells = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(cells["tags"]) == ['{"vip":true}', "", "", "", "", ""]
    assert list(cells["x"]) == ["3", "2.5", "", "", "11", "9.75"]
    assert list(cells["error"])[3] == "line 5: a JSON array, not an object"


def test_gzip_compressed_json_lines_are_read_and_written_and_foreseen_from_their_text(
    model: ToyModel, tmp_path: Path
) -> None:
    plain = source(tmp_path)
    export = tmp_path / "export"
    export.mkdir()
    for part in range(2):
        (export / f"00000000000{part}.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))
    score_file(TOY, model, export, tmp_path / "scores.jsonl.gz")
    packed = (tmp_path / "scores.jsonl.gz").read_bytes()
    score_file(TOY, model, export, tmp_path / "again.jsonl.gz")
    assert (tmp_path / "again.jsonl.gz").read_bytes() == packed
    rows = [json.loads(line) for line in gzip.decompress(packed).splitlines()]
    assert len(rows) == 12
    # A bad line in a directory of parts names its part.
    assert (
        rows[8]["error"] == "000000000001.jsonl.gz line 4: not JSON (EOF while parsing a string at column 9)"
    )
    # The share left from the text's size (the gzip trailer's), not the packed size.
    packed_parts = JsonLinesFile(tuple(sorted(export.iterdir())))
    plain_parts = JsonLinesFile((plain, plain))
    first = next(packed_parts.chunks(2, ["x"]))
    assert packed_parts.chunks_left(first) == plain_parts.chunks_left(next(plain_parts.chunks(2, ["x"])))
    size = plain.stat().st_size
    assert plain_parts.chunks_left(first) == (2 * size - first[1].size) / first[1].size


def test_a_file_that_is_not_json_lines_is_refused_and_leaves_no_output(
    model: ToyModel, tmp_path: Path
) -> None:
    csv = jsonl(tmp_path / "table.jsonl", [b"x,color", b"3,red"])
    with pytest.raises(ScoringError, match=r"is not JSON Lines: line 1: not JSON"):
        score_file(TOY, model, csv, tmp_path / "out.jsonl")
    array = jsonl(tmp_path / "array.jsonl", [b'[{"x": 3, "color": "red"}]'])
    with pytest.raises(ScoringError, match="is not JSON Lines: line 1: a JSON array, not an object"):
        score_file(TOY, model, array, tmp_path / "out.jsonl")
    empty = jsonl(tmp_path / "empty.jsonl", [b"", b"  "])
    with pytest.raises(ScoringError, match="is empty: not one JSON object"):
        score_file(TOY, model, empty, tmp_path / "out.jsonl")
    no_x = jsonl(tmp_path / "no_x.jsonl", [b'{"color": "red"}'])
    with pytest.raises(ScoringError, match="no column 'x': toy needs x, color, note"):
        score_file(TOY, model, no_x, tmp_path / "out.jsonl")
    broken = tmp_path / "broken.jsonl.gz"
    broken.write_bytes(gzip.compress(b'{"x": 3, "color": "red"}\n' * 50)[:30])
    with pytest.raises(ScoringError, match="not gzip as read"):
        score_file(TOY, model, broken, tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_byte_order_mark_and_windows_line_ends_are_no_part_of_the_objects(
    model: ToyModel, tmp_path: Path
) -> None:
    path = tmp_path / "notepad.ndjson"
    path.write_bytes(b'\xef\xbb\xbf{"x": 3, "color": "red"}\r\n{"x": 4, "color": "blue"}\r\n')
    summary = score_file(TOY, model, path, tmp_path / "out.ndjson")
    assert (summary.rows, summary.scored) == (2, 2)
    assert [row["x"] for row in read_lines(tmp_path / "out.ndjson")] == [3, 4]


def _text(document: Any) -> str | None:
    """A JSON document as CSV and Parquet scores hold it."""
    return None if document is None else json.dumps(document, separators=(",", ":"))
