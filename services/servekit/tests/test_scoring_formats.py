"""``mlp score`` on a Parquet file: its columns kept with their types, the scores typed; and
across formats, Parquet to CSV and CSV to Parquet."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import gzip
import json
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from toy import TOY, ToyModel

from servekit.errors import rejection
from servekit.fields import WholeNumber
from servekit.model import ModelArtifact
from servekit.scoring import ScoringError, pool, run, score_file
from servekit.scoring.formats import CsvFile, ParquetInput, added_schema
from servekit.training.splitting import Split

#: The toy's request fields (x, color, note), an id and two columns the model ignores, typed.
TABLE = pa.table(
    {
        "id": pa.array(["007", "008", "009", "010", "011", "012"]),
        "x": pa.array([3, 2.5, 11, 4, None, 9.75], type=pa.float64()),
        "color": pa.array(["red", "blue", "red", "green", "blue", "red"]).dictionary_encode(),
        "note": pa.array([None, "hello", None, None, None, None], type=pa.string()),
        "visits": pa.array([1, 2, 3, 4, 5, 6], type=pa.int32()),
        "seen": pa.array(
            [datetime.datetime(2026, 11, day, 9, 30) for day in range(1, 7)], type=pa.timestamp("ms")
        ),
    }
)


@pytest.fixture
def model(toy_trained: tuple[ModelArtifact, Split]) -> ToyModel:
    return ToyModel(toy_trained[0])


def parquet(path: Path, table: pa.Table = TABLE, row_group_size: int | None = None) -> Path:
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_a_parquet_file_keeps_its_columns_and_types_and_gains_typed_scores(
    model: ToyModel, tmp_path: Path
) -> None:
    summary = score_file(TOY, model, parquet(tmp_path / "in.parquet"), tmp_path / "out.parquet", chunk_rows=4)
    out = pq.read_table(tmp_path / "out.parquet")
    # The input's columns and their types as they were, then the answer's, each typed.
    assert out.schema.names == [*TABLE.schema.names, "value", "outside_training", "model_version", "error"]
    assert out.select(TABLE.schema.names).equals(TABLE)
    added = {name: out.schema.field(name).type for name in out.schema.names[len(TABLE.schema) :]}
    assert added == {
        "value": pa.float64(),
        "outside_training": pa.string(),
        "model_version": pa.string(),
        "error": pa.string(),
    }
    rows = out.to_pylist()
    valid = [{"x": 3.0, "color": "red", "note": None}, {"x": 2.5, "color": "blue", "note": "hello"}]
    valid.append({"x": 9.75, "color": "red", "note": None})
    # Floats as the model answers them, not as text read back.
    assert [rows[i]["value"] for i in (0, 1, 5)] == [p["value"] for p in model.predict(valid)]
    assert [rows[i]["outside_training"] for i in (0, 1, 5)] == ["[]"] * 3
    assert {rows[i]["model_version"] for i in (0, 1, 5)} == {"test"}
    # A rejected row keeps its place, with nulls, not NaN, and its problem.
    assert [rows[i]["value"] for i in (2, 3, 4)] == [None] * 3
    assert [rows[i]["error"] for i in (0, 2, 3, 4)] == [
        None,
        "x: Input should be less than or equal to 10",
        "color: Input should be 'red' or 'blue'",
        "x: Input should be a valid number",
    ]
    assert (summary.rows, summary.scored, summary.rejections[0]) == (
        6,
        3,
        "row 3: x: Input should be less than or equal to 10",
    )
    # One row group a chunk; and pandas reads it back.
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == 2
    assert list(pd.read_parquet(tmp_path / "out.parquet")["id"]) == ["007", "008", "009", "010", "011", "012"]


def test_worker_processes_write_the_same_table_as_one_process(
    model: ToyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)  # the toy file is tiny
    source = parquet(tmp_path / "in.parquet")
    score = partial(score_file, TOY, model, source, chunk_rows=2, explain=True)
    alone, shared = score(tmp_path / "alone.parquet"), score(tmp_path / "shared.parquet", workers=2)
    assert (shared.workers, alone.workers) == (2, 0)
    assert pq.read_table(tmp_path / "shared.parquet").equals(pq.read_table(tmp_path / "alone.parquet"))
    explained = pq.read_table(tmp_path / "alone.parquet").to_pylist()[0]
    explanation = json.loads(explained["explanation"])
    total = explanation["base_value"] + sum(explanation["contributions"].values())
    assert total == pytest.approx(explained["value"], rel=1e-6)


def test_typed_columns_are_read_as_the_api_reads_json_numbers(model: ToyModel, tmp_path: Path) -> None:
    # An integer column where the request asks a number, as JSON's 3 is a float's 3.0; a
    # column of text where it asks a number is refused per row, as the API refuses "3".
    table = pa.table({"x": pa.array([3, 4], type=pa.int64()), "color": ["red", "blue"]})
    summary = score_file(TOY, model, parquet(tmp_path / "ints.parquet", table), tmp_path / "ints-out.parquet")
    assert (summary.rows, summary.scored) == (2, 2)
    # Validated as the API validates the same JSON values: before, every format was read as CSV
    # cells are, laxly, so "3" (text, large or not) and true were scored where the API answers 422.
    text = pa.table(
        {
            "x": ["3", "four", "2.5"],
            "color": ["red", "blue", "red"],
            "note": pa.array(["a", "b", "c"], type=pa.large_string()),
        }
    )
    summary = score_file(TOY, model, parquet(tmp_path / "text.parquet", text), tmp_path / "text-out.parquet")
    assert (summary.rows, summary.scored) == (3, 0)
    assert summary.rejections == [f"row {row}: x: Input should be a valid number" for row in (1, 2, 3)]
    flags = pa.table({"x": [True, False], "color": ["red", "blue"]})
    summary = score_file(TOY, model, parquet(tmp_path / "bool.parquet", flags), tmp_path / "bool-out.parquet")
    assert summary.rejections == [f"row {row}: x: Input should be a valid number" for row in (1, 2)]
    # The same cells as a CSV file's text are read laxly: a CSV cell has no type.
    pa.csv.write_csv(text, tmp_path / "text.csv")
    summary = score_file(TOY, model, tmp_path / "text.csv", tmp_path / "text-out.csv")
    assert (summary.rows, summary.scored) == (3, 2)
    assert summary.rejections == [
        "row 2: x: Input should be a valid number, unable to parse string as a number"
    ]


class Counts(BaseModel):
    """A request of whole numbers (``servekit.fields.WholeNumber``), a flag and a float, strict as
    the services' are."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    age: WholeNumber
    flag: WholeNumber
    balance: float
    label: str | None = None


def api_answer(api: TypeAdapter[Counts], body: str) -> tuple[dict[str, Any] | None, str | None]:
    """The record the API validates from ``body``, or its 422's words."""
    try:
        return api.validate_json(body).model_dump(), None
    except ValidationError as exc:
        return None, rejection(exc)


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("age", pa.array([42, None], type=pa.int64())),  # null: an int column with a gap
        ("age", pa.array([42, 7], type=pa.uint8())),
        ("age", pa.array([42.0, 42.5])),  # 42.0 is the whole number JSON Schema counts it
        ("age", pa.array([decimal.Decimal("42.00"), decimal.Decimal("42.50")], type=pa.decimal128(6, 2))),
        ("age", pa.array([decimal.Decimal("42"), decimal.Decimal("-1")], type=pa.decimal128(4, 0))),
        ("age", pa.array(["42", "x"])),
        ("age", pa.array(["42", "x"], type=pa.large_string())),
        ("flag", pa.array([True, False])),
        ("flag", pa.array([1, 0], type=pa.int8())),
        ("balance", pa.array([0, 12], type=pa.int64())),  # JSON's 0 is a float's 0.0
        ("balance", pa.array([0.5, 1e3], type=pa.float32())),
        ("balance", pa.array([decimal.Decimal("0.10"), decimal.Decimal("12.50")], type=pa.decimal128(6, 2))),
        ("balance", pa.array(["0", "1e3"])),
        ("label", pa.array([1, 2], type=pa.int64())),
        ("label", pa.array(["a", None]).dictionary_encode()),
    ],
)
def test_a_typed_columns_values_are_validated_as_the_api_validates_the_same_json(
    column: str, values: pa.Array
) -> None:
    spec = dataclasses.replace(TOY, request=Counts)
    row = {"age": 42, "flag": 1, "balance": 0.5, "label": "a"}
    table = pa.table(
        {**{name: [value] * len(values) for name, value in row.items() if name != column}, column: values}
    )
    positions, records, problems = run.validate_rows(spec, table.to_pandas())
    # The API: each row as the JSON a client sends (a decimal a number with its digits).
    api = TypeAdapter(Counts)
    for position, sent in enumerate(table.to_pylist()):
        expected, refused = api_answer(api, json.dumps(sent, default=lambda value: json.loads(str(value))))
        if refused is None:
            assert records[positions.index(position)] == expected
        else:
            assert problems[position] == refused
            assert refused.startswith(f"{column}: ")
    # NumPy's scalars, as a frame built in Python holds them, are the values they are.
    frame = pd.DataFrame({**row, column: pd.Series([np.int64(42), np.bool_(True)], dtype=object)})
    _, _, numpy_problems = run.validate_rows(spec, frame)
    assert sorted(numpy_problems) == ([0, 1] if column == "label" else [1])


def test_the_scores_are_written_as_the_outputs_name_says_whatever_the_input(
    model: ToyModel, tmp_path: Path
) -> None:
    source = parquet(tmp_path / "in.parquet")
    csv = tmp_path / "in.csv"
    TABLE.to_pandas().to_csv(csv, index=False)
    for name in ("pq-pq.parquet", "csv-csv.csv"):
        score_file(TOY, model, source if name.startswith("pq") else csv, tmp_path / name)

    # Parquet to CSV: each value as the CSV file holds it, so the two outputs are the same bytes.
    score_file(TOY, model, source, tmp_path / "pq-csv.csv")
    assert (tmp_path / "pq-csv.csv").read_bytes() == (tmp_path / "csv-csv.csv").read_bytes()

    # CSV to Parquet: the cells as text (the id's zeros kept), an empty cell null, the scores typed.
    score_file(TOY, model, csv, tmp_path / "csv-pq.pq")
    crossed, same = pq.read_table(tmp_path / "csv-pq.pq"), pq.read_table(tmp_path / "pq-pq.parquet")
    copied = crossed.select(TABLE.column_names)
    assert copied.schema == pa.schema([(name, pa.string()) for name in TABLE.column_names])
    assert copied.column("id").to_pylist() == ["007", "008", "009", "010", "011", "012"]
    assert copied.column("x").to_pylist() == ["3.0", "2.5", "11.0", "4.0", None, "9.75"]
    added = same.column_names[TABLE.num_columns :]
    assert crossed.column_names[TABLE.num_columns :] == added
    assert crossed.select(added).equals(same.select(added))

    # A name that says neither: the input's format.
    score_file(TOY, model, source, tmp_path / "pq-scores")
    assert pq.read_table(tmp_path / "pq-scores").equals(same)
    score_file(TOY, model, csv, tmp_path / "csv-scores.txt")
    assert (tmp_path / "csv-scores.txt").read_bytes() == (tmp_path / "csv-csv.csv").read_bytes()


def test_gzip_compressed_csv_is_read_and_written_and_foreseen_from_its_text(
    model: ToyModel, tmp_path: Path
) -> None:
    """BigQuery's EXPORT DATA with compression = 'GZIP' writes 000000000000.csv.gz, ..."""
    text = TABLE.to_pandas().to_csv(index=False).encode()
    export = tmp_path / "export"
    export.mkdir()
    for part in range(2):
        (export / f"00000000000{part}.csv.gz").write_bytes(gzip.compress(text))
    (tmp_path / "plain.csv").write_bytes(text + text.split(b"\n", 1)[1])
    score_file(TOY, model, tmp_path / "plain.csv", tmp_path / "plain-scores.csv")
    plain = (tmp_path / "plain-scores.csv").read_bytes()

    score_file(TOY, model, export, tmp_path / "scores.csv")
    assert (tmp_path / "scores.csv").read_bytes() == plain
    # Named .gz, the scores are compressed; reproducibly, with no name or time in the header.
    score_file(TOY, model, export, tmp_path / "scores.csv.gz")
    packed = (tmp_path / "scores.csv.gz").read_bytes()
    assert gzip.decompress(packed) == plain
    score_file(TOY, model, export, tmp_path / "again.csv.gz")
    assert (tmp_path / "again.csv.gz").read_bytes() == packed

    # The share of the file left, from the text's size (the gzip trailer's), not the packed size.
    packed_parts = CsvFile(tuple(sorted(export.iterdir())))
    first = next(packed_parts.chunks(2, ["x"]))
    (tmp_path / "plain-parts").mkdir()
    for part in range(2):
        (tmp_path / "plain-parts" / f"{part}.csv").write_bytes(text)
    plain_parts = CsvFile(tuple(sorted((tmp_path / "plain-parts").iterdir())))
    assert packed_parts.chunks_left(first) == plain_parts.chunks_left(next(plain_parts.chunks(2, ["x"])))


def test_a_gzip_csv_cut_short_or_not_gzip_is_one_clear_error_and_no_output(
    model: ToyModel, tmp_path: Path
) -> None:
    packed = gzip.compress(TABLE.to_pandas().to_csv(index=False).encode() * 50)
    (tmp_path / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])  # a copy that stopped
    (tmp_path / "plain.csv.gz").write_bytes(b"x,color\n3,red\n")  # named .gz, never compressed
    for name, problem in (
        ("cut.csv.gz", "not gzip as read: Compressed file ended before the end-of-stream marker"),
        ("plain.csv.gz", "not gzip as read: Not a gzipped file"),
    ):
        with pytest.raises(ScoringError, match=problem):
            score_file(TOY, model, tmp_path / name, tmp_path / "out.csv", chunk_rows=2)
    assert not (tmp_path / "out.csv").exists()


def test_the_columns_kept_keep_their_types_and_a_column_left_out_need_not_fit_the_output(
    model: ToyModel, tmp_path: Path
) -> None:
    tags = pa.array([["a"], [], ["b", "c"], None, ["d"], ["e"]])
    source = parquet(tmp_path / "in.parquet", TABLE.append_column("tags", tags))
    score_file(TOY, model, source, tmp_path / "whole.parquet")
    score_file(TOY, model, source, tmp_path / "kept.parquet", keep=["visits", "id"])
    kept, whole = pq.read_table(tmp_path / "kept.parquet"), pq.read_table(tmp_path / "whole.parquet")
    added = whole.column_names[TABLE.num_columns + 1 :]
    assert kept.column_names == ["visits", "id", *added]
    assert kept.select(["visits", "id"]).equals(whole.select(["visits", "id"]))
    assert kept.select(added).equals(whole.select(added))
    # The list column left out, the scores may be CSV.
    score_file(TOY, model, source, tmp_path / "kept.csv", keep=["id"])
    assert list(pd.read_csv(tmp_path / "kept.csv", dtype=str).columns) == ["id", *added]
    # A CSV file's kept cells are Parquet text.
    TABLE.to_pandas().to_csv(tmp_path / "in.csv", index=False)
    score_file(TOY, model, tmp_path / "in.csv", tmp_path / "from-csv.parquet", keep=["id"])
    from_csv = pq.read_table(tmp_path / "from-csv.parquet")
    assert from_csv.schema.field("id").type == pa.string()
    assert from_csv.column_names == ["id", *added]


def test_a_parquet_column_a_csv_cell_cannot_hold_is_refused_before_anything_is_written(
    model: ToyModel, tmp_path: Path
) -> None:
    for name, column in (
        ("tags", pa.array([["a"], [], ["b", "c"], None, ["d"], ["e"]])),
        ("photo", pa.array([b"\x89PNG"] * 6, type=pa.binary())),
    ):
        source = parquet(tmp_path / f"with-{name}.parquet", TABLE.append_column(name, column))
        with pytest.raises(
            ScoringError, match=rf"column '{name}' is .*, which a CSV cell cannot hold; .*Parquet"
        ):
            score_file(TOY, model, source, tmp_path / "scores.csv")
        assert not (tmp_path / "scores.csv").exists()
        # As Parquet it is copied as it is.
        score_file(TOY, model, source, tmp_path / f"{name}-scores.parquet")
        assert (
            pq.read_table(tmp_path / f"{name}-scores.parquet").column(name).to_pylist() == column.to_pylist()
        )


def test_a_file_that_is_not_parquet_or_has_no_rows_is_refused_and_leaves_no_output(
    model: ToyModel, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("x,color\n3,red\n")
    with pytest.raises(ScoringError, match=r"not Parquet as read: .*magic bytes not found"):
        score_file(TOY, model, garbage, tmp_path / "out.parquet")
    empty = parquet(tmp_path / "empty.parquet", TABLE.slice(0, 0))
    with pytest.raises(ScoringError, match="has no rows to score"):
        score_file(TOY, model, empty, tmp_path / "out.parquet")
    no_x = parquet(tmp_path / "no_x.parquet", TABLE.drop_columns(["x"]))
    with pytest.raises(ScoringError, match="no column 'x': toy needs x, color, note"):
        score_file(TOY, model, no_x, tmp_path / "out.parquet")
    # Arrow keeps both columns of one name: which one a field would be read from is a guess.
    twice = parquet(tmp_path / "twice.parquet", TABLE.append_column("x", pa.array([7] * TABLE.num_rows)))
    with pytest.raises(ScoringError, match=r"names the column 'x' twice \(columns 2 and 7\)"):
        score_file(TOY, model, twice, tmp_path / "out.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "empty.parquet",
        "garbage.parquet",
        "no_x.parquet",
        "twice.parquet",
    ]


def test_a_parquet_file_counts_its_rows_and_a_csv_file_is_foreseen_from_its_size(tmp_path: Path) -> None:
    source = ParquetInput((parquet(tmp_path / "in.parquet", row_group_size=2),))
    first = next(source.chunks(4, ["x"]))
    assert list(first[0].columns) == ["x"]  # the typed read: the request's fields alone
    assert source.chunks_left(first) == 0.5  # 6 rows: 2 past the first 4
    # Chunks of the rows asked for, not of the file's row groups of 2.
    assert [len(typed) for typed, _ in source.chunks(4, ["x"])] == [4, 2]
    assert source.names() == TABLE.schema.names
    # 8 bytes a row, commas and line ends counted: the first 3 rows are 24 of the file's 101.
    csv = tmp_path / "in.csv"
    csv.write_text("x,id\n" + "1.5,007\n" * 12)
    first = next(CsvFile((csv,)).chunks(3, ["x"]))
    assert CsvFile((csv,)).chunks_left(first) == (101 - 24) / 24
    # Bytes, not characters: "€" is three of the file's bytes.
    csv.write_text("x,id\n" + "1.5,€07\n" * 12, encoding="utf-8")
    first = next(CsvFile((csv,)).chunks(3, ["x"]))
    assert CsvFile((csv,)).chunks_left(first) == (125 - 30) / 30


class Band(BaseModel):
    low: float
    high: float | None = None


class Answer(BaseModel):
    label: Literal["churn", "stay"]
    code: Literal[0, 1]
    count: int | None
    band: Band
    flagged: bool


def test_added_columns_are_typed_by_the_response_model_then_by_the_example() -> None:
    example = {
        "label": "stay",
        "code": 1,
        "count": None,  # typed by the model, not by a missing value
        "band.low": 1.0,
        "band.high": None,
        "flagged": False,
        "explanation": '{"base_value": 0.1}',  # not a field of the model: text, as written
        "extra": 2.5,  # not a field of the model either: typed by its value
        "model_version": "3",
        "error": None,
    }
    assert added_schema(Answer, example, "p_") == [
        ("p_label", pa.string()),
        ("p_code", pa.int64()),
        ("p_count", pa.int64()),
        ("p_band.low", pa.float64()),
        ("p_band.high", pa.float64()),
        ("p_flagged", pa.bool_()),
        ("p_explanation", pa.string()),
        ("p_extra", pa.float64()),
        ("p_model_version", pa.string()),
        ("p_error", pa.string()),
    ]


def test_a_directory_of_parquet_parts_is_scored_as_one_table_in_the_order_of_their_names(
    model: ToyModel, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    frame = TABLE.to_pandas()
    # As Spark writes a table: parts, a marker and checksums; pandas' metadata differs per part.
    frame.iloc[3:].to_parquet(export / "part-00001.parquet")
    frame.iloc[:3].to_parquet(export / "part-00000.parquet")
    (export / "_SUCCESS").write_text("")
    (export / ".part-00000.parquet.crc").write_bytes(b"\x00")
    whole = parquet(tmp_path / "whole.parquet", pa.Table.from_pandas(frame))
    summary = score_file(TOY, model, export, tmp_path / "parts.parquet", chunk_rows=4)
    score_file(TOY, model, whole, tmp_path / "whole-out.parquet", chunk_rows=4)
    assert pq.read_table(tmp_path / "parts.parquet").equals(pq.read_table(tmp_path / "whole-out.parquet"))
    # Chunks of 4 across the parts of 3, and rows numbered as the output holds them.
    assert pq.ParquetFile(tmp_path / "parts.parquet").metadata.num_row_groups == 2
    assert summary.rejections[-1] == "row 5: x: Input should be a valid number"


def test_parts_in_subdirectories_are_read_in_the_order_of_their_paths_with_their_partitions(
    model: ToyModel, tmp_path: Path
) -> None:
    """A Hive-style export (Athena's UNLOAD ... partitioned_by, Spark's partitionBy): no part left
    out, and each directory's key=value a column after the files' own, as Arrow reads it."""
    export = tmp_path / "export"
    frame = TABLE.to_pandas()
    for day, rows in (("dt=2026-11-02", frame.iloc[4:]), ("dt=2026-11-01", frame.iloc[:2])):
        (export / day).mkdir(parents=True)
        rows.to_parquet(export / day / "part-0.parquet")
    frame.iloc[2:4].to_parquet(export / "dt=2026-11-01" / "part-1.parquet")
    # What is not a part, at any depth: a marker, a directory still being written.
    (export / "dt=2026-11-01" / "_SUCCESS").write_text("")
    (export / "_temporary" / "0").mkdir(parents=True)
    frame.to_parquet(export / "_temporary" / "0" / "part-9.parquet")
    summary = score_file(TOY, model, export, tmp_path / "parts.parquet")
    whole = parquet(tmp_path / "whole.parquet", pa.Table.from_pandas(frame))
    score_file(TOY, model, whole, tmp_path / "whole-out.parquet")
    parts, alone = pq.read_table(tmp_path / "parts.parquet"), pq.read_table(tmp_path / "whole-out.parquet")
    assert parts.column_names == [*TABLE.column_names, "dt", *alone.column_names[TABLE.num_columns :]]
    assert parts.schema.field("dt").type == pa.string()
    assert parts.column("dt").to_pylist() == ["2026-11-01"] * 4 + ["2026-11-02"] * 2
    assert parts.drop_columns(["dt"]).equals(alone)
    assert summary.rows == 6
    # An error names the part by its path in the directory.
    frame.iloc[:1].drop(columns=["visits"]).to_parquet(export / "dt=2026-11-02" / "part-1.parquet")
    with pytest.raises(
        ScoringError,
        match=r"dt=2026-11-02/part-1\.parquet has another schema than dt=2026-11-01/part-0\.parquet",
    ):
        score_file(TOY, model, export, tmp_path / "again.parquet")


def write_part(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as a part in the format its name says."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_partition_key_is_a_column_in_every_format_and_may_be_a_request_field(
    model: ToyModel, tmp_path: Path, suffix: str
) -> None:
    """The files leave ``color`` to their directories; a value Hive wrote as null, or one escaped
    in the path, is read as Hive writes it."""
    export = tmp_path / "export"
    rows = TABLE.to_pandas()[["id", "x"]]
    write_part(rows.iloc[:2], export / "color=red" / f"part-0{suffix}")
    write_part(rows.iloc[2:3], export / "color=__HIVE_DEFAULT_PARTITION__" / f"part-0{suffix}")
    write_part(rows.iloc[3:4], export / "color=bl%75e" / "region=EU" / f"part-0{suffix}")
    summary = score_file(TOY, model, export, tmp_path / "scores.jsonl")
    scored = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    # In the order of the paths: color=__HIVE..., color=bl%75e, color=red; a part outside a
    # key's directories has null there.
    assert [(row["color"], row["region"]) for row in scored] == [
        (None, None),
        ("blue", "EU"),
        ("red", None),
        ("red", None),
    ]
    assert list(scored[0])[:4] == ["id", "x", "color", "region"]
    # The key is validated as the request field it is: a null colour is refused by name.
    assert (
        scored[0]["error"]
        == "x: Input should be less than or equal to 10; color: Input should be 'red' or 'blue'"
    )
    assert [row["error"] for row in scored[1:]] == [None] * 3
    assert (summary.rows, summary.scored) == (4, 3)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_a_partition_key_where_the_api_wants_a_number_is_read_as_a_csv_cell_is(
    model: ToyModel, tmp_path: Path, suffix: str
) -> None:
    """Its value is text in every format, from the path: read strictly in a typed file, as the
    file's own values are, ``x=3/`` refused every row of Parquet and JSON Lines parts."""
    export = tmp_path / "export"
    rows = TABLE.to_pandas()[["id", "color"]]
    write_part(rows.iloc[:2], export / "x=3" / f"part-0{suffix}")
    write_part(rows.iloc[2:3], export / "x=three" / f"part-0{suffix}")
    summary = score_file(TOY, model, export, tmp_path / "scores.jsonl")
    scored = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [row["error"] for row in scored[:2]] == [None, None]
    assert scored[2]["error"].startswith("x: Input should be a valid number")
    assert (summary.rows, summary.scored) == (3, 2)


def test_a_partition_key_that_is_also_a_column_is_refused(model: ToyModel, tmp_path: Path) -> None:
    export = tmp_path / "export" / "color=red"
    export.mkdir(parents=True)
    TABLE.to_pandas().to_csv(export / "part-0.csv", index=False)
    with pytest.raises(ScoringError, match="'color' is both a column of the files and a partition directory"):
        score_file(TOY, model, tmp_path / "export", tmp_path / "scores.csv")
    assert not (tmp_path / "scores.csv").exists()


def test_a_link_that_would_read_files_twice_is_refused_and_one_elsewhere_is_followed(
    model: ToyModel, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    (export / "a").mkdir(parents=True)
    TABLE.to_pandas().to_csv(export / "a" / "part-0.csv", index=False)
    (export / "a" / "up").symlink_to("..")  # a loop: read once per turn, forty times over
    with pytest.raises(ScoringError, match=r"export/a/up links to a directory already read .*read twice"):
        score_file(TOY, model, export, tmp_path / "scores.csv")
    (export / "a" / "up").unlink()
    (export / "a" / "part-1.csv").symlink_to("part-0.csv")  # one file by two names
    with pytest.raises(ScoringError, match=r"^part-1.csv and part-0.csv are one file"):
        score_file(TOY, model, export, tmp_path / "scores.csv")
    assert not (tmp_path / "scores.csv").exists()
    (export / "a" / "part-1.csv").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    TABLE.to_pandas().to_csv(elsewhere / "part-9.csv", index=False)
    (export / "b").symlink_to(elsewhere)  # a mounted volume's link: its files are parts
    assert score_file(TOY, model, export, tmp_path / "scores.csv").rows == 2 * TABLE.num_rows


def test_a_partition_key_twice_in_one_path_is_refused(model: ToyModel, tmp_path: Path) -> None:
    export = tmp_path / "export" / "dt=2026-11-01" / "dt=2026-11-02"
    export.mkdir(parents=True)
    TABLE.to_pandas().to_csv(export / "part-0.csv", index=False)
    with pytest.raises(
        ScoringError, match=r"^dt=2026-11-01/dt=2026-11-02/part-0.csv names the partition 'dt' twice"
    ):
        score_file(TOY, model, tmp_path / "export", tmp_path / "scores.csv")
    assert not (tmp_path / "scores.csv").exists()


def test_parquet_parts_named_with_no_suffix_are_known_by_their_first_bytes(
    model: ToyModel, tmp_path: Path
) -> None:
    """Athena's UNLOAD names its Parquet files with no suffix; a CSV file so named stays CSV."""
    export = tmp_path / "unload"
    export.mkdir()
    parquet(export / "20261201_050012_00005_x9b2k_0d8e", TABLE.slice(0, 3))
    parquet(export / "20261201_050012_00005_x9b2k_7c1f", TABLE.slice(3))
    summary = score_file(TOY, model, export, tmp_path / "scores.parquet")
    whole = score_file(TOY, model, parquet(tmp_path / "whole.parquet"), tmp_path / "whole-out.parquet")
    assert pq.read_table(tmp_path / "scores.parquet").equals(pq.read_table(tmp_path / "whole-out.parquet"))
    assert (summary.rows, summary.scored) == (whole.rows, whole.scored)
    # Read as Parquet whatever the output: as CSV, the first part's 3 rows.
    assert (
        score_file(TOY, model, export / "20261201_050012_00005_x9b2k_0d8e", tmp_path / "part.csv").rows == 3
    )
    assert len(pd.read_csv(tmp_path / "part.csv")) == 3

    text = tmp_path / "export-0001"
    TABLE.to_pandas().to_csv(text, index=False)
    assert (score_file(TOY, model, text, tmp_path / "text-scores.csv").rows) == 6
    # Named .csv, a file is read as CSV whatever its first bytes: a header may begin with PAR1.
    named = tmp_path / "named.csv"
    named.write_text("PAR1,x,color\n1,3,red\n")
    assert score_file(TOY, model, named, tmp_path / "named-scores.csv").scored == 1


def test_a_directory_of_csv_parts_is_scored_as_one_file_with_one_header(
    model: ToyModel, tmp_path: Path
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    frame = TABLE.to_pandas()
    frame.iloc[:2].to_csv(export / "part-0.csv", index=False)
    frame.iloc[2:].to_csv(export / "part-1.csv", index=False)
    frame.to_csv(tmp_path / "whole.csv", index=False)
    summary = score_file(TOY, model, export, tmp_path / "parts.csv")
    score_file(TOY, model, tmp_path / "whole.csv", tmp_path / "whole-out.csv")
    assert (tmp_path / "parts.csv").read_bytes() == (tmp_path / "whole-out.csv").read_bytes()
    assert (summary.rows, summary.scored) == (6, 3)


def test_a_directory_whose_parts_differ_or_that_holds_the_output_is_refused_before_writing(
    model: ToyModel, tmp_path: Path
) -> None:
    frame = TABLE.to_pandas()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "_SUCCESS").write_text("")
    with pytest.raises(ScoringError, match="is a directory with no file to score"):
        score_file(TOY, model, empty, tmp_path / "out.csv")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    frame.to_csv(mixed / "a.csv", index=False)
    frame.to_parquet(mixed / "b.parquet")
    with pytest.raises(
        ScoringError, match=r"holds files of more than one format \(csv, parquet\).*\(a\.csv, b\.parquet\)"
    ):
        score_file(TOY, model, mixed, tmp_path / "out.csv")
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    frame.to_parquet(schemas / "part-0.parquet")
    frame.astype({"visits": "int64"}).to_parquet(schemas / "part-1.parquet")
    with pytest.raises(
        ScoringError, match=r"part-1\.parquet has another schema than part-0\.parquet: .*visits int64"
    ):
        score_file(TOY, model, schemas, tmp_path / "out.parquet")
    headers = tmp_path / "headers"
    headers.mkdir()
    frame.to_csv(headers / "part-0.csv", index=False)
    frame.drop(columns=["note"]).to_csv(headers / "part-1.csv", index=False)
    with pytest.raises(ScoringError, match=r"part-1\.csv has the columns \[.*\], not those of part-0\.csv"):
        score_file(TOY, model, headers, tmp_path / "out.csv")
    with pytest.raises(ScoringError, match="is inside the input directory"):
        score_file(TOY, model, headers, headers / "scores.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "headers", "mixed", "schemas"]
    assert sorted(p.name for p in headers.iterdir()) == ["part-0.csv", "part-1.csv"]


def test_a_part_that_cannot_be_read_is_named(model: ToyModel, tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    TABLE.to_pandas().to_parquet(export / "part-0.parquet")
    (export / "part-1.parquet").write_text("x,color\n3,red\n")
    with pytest.raises(ScoringError, match=r"part-1\.parquet: not Parquet as read: .*magic bytes"):
        score_file(TOY, model, export, tmp_path / "out.parquet")
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


class Balances(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    balance: float
    bonus: float | None = None


def test_a_parquet_float_s_nan_is_a_missing_value_as_in_an_open_inference_tensor() -> None:
    """JSON has no NaN; Spark writes a float's gap as one. Read as null: refused where the field
    is required, as the API refuses a null, and missing where it is optional."""
    spec = dataclasses.replace(TOY, request=Balances)
    nan = float("nan")
    table = pa.table({"balance": [nan, 1.0, None], "bonus": [1.0, nan, None]})
    positions, records, problems = run.validate_rows(spec, table.to_pandas())
    assert (positions, records) == ([1], [{"balance": 1.0, "bonus": None}])
    _, refused = api_answer(TypeAdapter(Balances), '{"balance": null}')
    assert problems == {0: refused, 2: refused}
    assert refused == "balance: Input should be a valid number"
