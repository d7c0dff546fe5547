"""``mlp score``: a CSV scored offline, every row kept in order, its cells as written, rejects named."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from toy import TOY, ToyModel

from servekit import csv_shape
from servekit.model import ModelArtifact
from servekit.scoring import (
    ScoringError,
    file_fingerprints,
    pool,
    progress,
    run,
    score_file,
    write_summary,
)
from servekit.scoring.formats import open_input
from servekit.training.splitting import Split

ROWS = [
    # id (leading zeros must survive), then the request fields, then a column the model ignores
    ["id", "x", "color", "note", "segment"],
    ["007", "3", "red", "", "a"],
    ["008", "2.5", "blue", "hello", "b"],
    ["009", "11", "red", "", "c"],  # x out of range
    ["010", "4", "green", "", "d"],  # unknown category
    ["011", "", "blue", "", "e"],  # x missing
    ["012", "9.75", "red", "", "f"],
]


def write(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def model(toy_trained: tuple[ModelArtifact, Split]) -> ToyModel:
    return ToyModel(toy_trained[0])


def test_every_row_is_kept_in_order_as_written_with_its_score_or_its_problem(
    model: ToyModel, tmp_path: Path
) -> None:
    source = write(tmp_path / "in.csv", ROWS)
    summary = score_file(TOY, model, source, tmp_path / "out.csv")
    out = read(tmp_path / "out.csv")
    assert [row["id"] for row in out] == ["007", "008", "009", "010", "011", "012"]
    # The input's cells as written, then the answer's fields, the version and the error.
    header = next(csv.reader((tmp_path / "out.csv").open()))
    assert header == [*ROWS[0], "value", "outside_training", "model_version", "error"]
    for row, written in zip(out, ROWS[1:], strict=True):
        assert [row[c] for c in ROWS[0]] == written
    valid = [{"x": 3.0, "color": "red", "note": None}, {"x": 2.5, "color": "blue", "note": "hello"}]
    valid.append({"x": 9.75, "color": "red", "note": None})
    expected = [p["value"] for p in model.predict(valid)]
    scored = [out[0], out[1], out[5]]
    assert [float(row["value"]) for row in scored] == pytest.approx(expected, rel=1e-12)
    # Inside the training rows' x (about 0 to 10): an empty list, as the API answers.
    assert [row["outside_training"] for row in scored] == ["[]"] * 3
    assert {row["model_version"] for row in scored} == {"test"}
    assert all(row["error"] == "" for row in scored)
    assert out[2]["error"] == "x: Input should be less than or equal to 10"
    assert out[3]["error"] == "color: Input should be 'red' or 'blue'"
    assert out[4]["error"] == "x: Input should be a valid number"
    assert all(out[i]["value"] == "" and out[i]["model_version"] == "" for i in (2, 3, 4))
    assert (summary.rows, summary.scored, summary.rejected) == (6, 3, 3)
    assert summary.rejections == [
        "row 3: x: Input should be less than or equal to 10",
        "row 4: color: Input should be 'red' or 'blue'",
        "row 5: x: Input should be a valid number",
    ]
    text = summary.render(model, tmp_path / "out.csv")
    assert text.startswith("toy vtest: scored 3 of 6 rows in ")
    assert "3 rows rejected, each with its problem in the error column:" in text
    assert summary.outside == 0
    assert "outside the range" not in text


def test_rows_outside_the_training_range_are_scored_listed_and_counted(
    model: ToyModel, tmp_path: Path
) -> None:
    # x = 0 and x = 10 are valid requests, but the training rows' x lies strictly between.
    rows = [["x", "color"], ["0", "red"], ["5", "red"], ["10", "blue"]]
    summary = score_file(TOY, model, write(tmp_path / "in.csv", rows), tmp_path / "out.csv", prefix="p_")
    listed = [json.loads(row["p_outside_training"]) for row in read(tmp_path / "out.csv")]
    # x and x_squared, the column derived from it, are both outside; each row is counted once.
    assert [[item["value"] for item in found] for found in listed] == [[0.0, 0.0], [], [10.0, 100.0]]
    assert (summary.outside, dict(summary.outside_by_field)) == (2, {"x": 2})
    text = summary.render(model, tmp_path / "out.csv")
    assert "2 scored rows had an input outside the range of the version's training rows (x 2)" in text
    assert "the p_outside_training column lists them" in text


def test_a_runs_summary_names_the_version_the_rows_and_the_first_rejections(
    model: ToyModel, tmp_path: Path
) -> None:
    rows = [*ROWS, ["013", "0", "blue", "", "g"]]  # x = 0: valid, outside the training rows' x
    source, output = write(tmp_path / "in.csv", rows), tmp_path / "out.csv"
    summary = score_file(TOY, model, source, output, chunk_rows=3)
    written = summary.as_json(model, source, output)
    assert written["model"] == {"name": "toy", "version": "test", "run_id": "in-memory", "uri": "memory://"}
    assert (written["service"], written["input"], written["output"]) == ("toy", str(source), str(output))
    assert written["output_format"] == "csv"
    assert (written["rows"], written["scored"], written["rejected"]) == (7, 4, 3)
    assert written["first_rejections"] == summary.rejections
    assert written["outside_training"] == {"rows": 1, "by_field": {"x": 1}}
    assert written["rows_per_second"] == round(7 / summary.seconds)
    # Whole or not at all, and plain JSON.
    path = tmp_path / "summary.json"
    write_summary(path, written)
    assert json.loads(path.read_text()) == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv", "summary.json"]
    with pytest.raises(TypeError):
        write_summary(path, {"unserializable": object()})
    assert json.loads(path.read_text()) == written  # the one before is left as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv", "summary.json"]


def test_chunks_change_nothing_in_the_output(model: ToyModel, tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", ROWS)
    score_file(TOY, model, source, tmp_path / "whole.csv")
    summary = score_file(TOY, model, source, tmp_path / "chunked.csv", chunk_rows=2)
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert summary.rejections[0] == "row 3: x: Input should be less than or equal to 10"


def test_worker_processes_write_what_one_process_writes(
    model: ToyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)  # the toy file is tiny
    source = write(tmp_path / "in.csv", ROWS)
    alone = score_file(TOY, model, source, tmp_path / "alone.csv", chunk_rows=2, explain=True)
    shared = score_file(TOY, model, source, tmp_path / "shared.csv", chunk_rows=2, explain=True, workers=2)
    assert (tmp_path / "shared.csv").read_bytes() == (tmp_path / "alone.csv").read_bytes()
    assert (shared.workers, alone.workers) == (2, 0)
    assert (shared.rows, shared.scored, shared.rejections) == (alone.rows, alone.scored, alone.rejections)
    assert shared.rejections[0] == "row 3: x: Input should be less than or equal to 10"
    assert "rows/s by 2 worker processes) into " in shared.render(model, tmp_path / "shared.csv")
    # The columns kept are chosen in the workers too.
    score_file(TOY, model, source, tmp_path / "kept-alone.csv", chunk_rows=2, keep=["id"])
    score_file(TOY, model, source, tmp_path / "kept-shared.csv", chunk_rows=2, keep=["id"], workers=2)
    assert (tmp_path / "kept-shared.csv").read_bytes() == (tmp_path / "kept-alone.csv").read_bytes()
    assert list(read(tmp_path / "kept-shared.csv")[0])[:2] == ["id", "value"]


def test_a_run_says_how_far_it_has_come_after_each_interval(
    model: ToyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)  # a line after every chunk
    source = write(tmp_path / "in.csv", ROWS)
    lines: list[str] = []
    score_file(TOY, model, source, tmp_path / "out.csv", chunk_rows=2, progress=lines.append)
    assert [line.split(" in ")[0] for line in lines] == ["2 rows", "4 rows", "6 rows"]
    # Foreseen from the first chunk's size: a share of the file and a time left, until its end.
    assert ", about " in lines[0]
    assert lines[0].endswith(" left")


def test_explanations_are_the_apis_as_json(model: ToyModel, tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", ROWS[:3])
    score_file(TOY, model, source, tmp_path / "out.csv", explain=True)
    for row in read(tmp_path / "out.csv"):
        explanation = json.loads(row["explanation"])
        total = explanation["base_value"] + sum(explanation["contributions"].values())
        assert total == pytest.approx(float(row["value"]), rel=1e-6)


def test_a_column_the_prediction_would_overwrite_needs_a_prefix(model: ToyModel, tmp_path: Path) -> None:
    labelled = [[*ROWS[0], "value"], *([*row, "1.0"] for row in ROWS[1:])]
    source = write(tmp_path / "in.csv", labelled)
    with pytest.raises(ScoringError, match=r"column 'value' would be overwritten.*--prefix"):
        score_file(TOY, model, source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    score_file(TOY, model, source, tmp_path / "out.csv", prefix="predicted_")
    header = next(csv.reader((tmp_path / "out.csv").open()))
    assert header[-5:] == [
        "value",
        "predicted_value",
        "predicted_outside_training",
        "predicted_model_version",
        "predicted_error",
    ]


def test_a_clash_with_the_prefix_given_suggests_another_prefix(model: ToyModel, tmp_path: Path) -> None:
    # With --prefix p_ and a column p_value, the message said to try "--prefix predicted_" as if
    # no prefix were given; and it suggested predicted_ to a file that holds predicted_value too.
    labelled = [[*ROWS[0], "p_value", "predicted_value"], *([*row, "1.0", "2.0"] for row in ROWS[1:])]
    source = write(tmp_path / "in.csv", labelled)
    with pytest.raises(ScoringError) as given:
        score_file(TOY, model, source, tmp_path / "out.csv", prefix="p_")
    assert str(given.value) == (
        "column 'p_value' would be overwritten by the prediction's; --prefix p_ names them so too; "
        "choose another prefix (e.g. --prefix scored_)"
    )
    with pytest.raises(
        ScoringError, match=r"--prefix predicted_ names them so too; .*\(e\.g\. --prefix scored_\)"
    ):
        score_file(TOY, model, source, tmp_path / "out.csv", prefix="predicted_")
    labelled = [
        [*ROWS[0], "value", "predicted_value", "scored_value"],
        *([*row, "1", "2", "3"] for row in ROWS[1:]),
    ]
    source = write(tmp_path / "in.csv", labelled)
    with pytest.raises(ScoringError) as none_given:
        score_file(TOY, model, source, tmp_path / "out.csv")
    assert str(none_given.value).endswith(
        "name the prediction's columns apart with --prefix (e.g. --prefix model_)"
    )
    assert not (tmp_path / "out.csv").exists()
    score_file(TOY, model, source, tmp_path / "out.csv", prefix="model_")  # as suggested
    assert next(csv.reader((tmp_path / "out.csv").open()))[-4] == "model_value"


def test_one_row_is_one_row_not_one_rows(model: ToyModel, tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", [ROWS[0], ROWS[1], ROWS[3]])  # one scored, one rejected
    summary = score_file(TOY, model, source, tmp_path / "out.csv")
    text = summary.render(model, tmp_path / "out.csv")
    assert "toy vtest: scored 1 of 2 rows in " in text
    assert "\n1 row rejected, each with its problem in the error column:\n" in text
    one = score_file(TOY, model, write(tmp_path / "one.csv", [ROWS[0], ROWS[3]]), tmp_path / "one-out.csv")
    assert one.render(model, tmp_path / "one-out.csv").startswith("toy vtest: scored 0 of 1 row in ")
    outside = score_file(
        TOY, model, write(tmp_path / "edge.csv", [["x", "color"], ["0", "red"]]), tmp_path / "e.csv"
    )
    assert "\n1 scored row had an input outside the range" in outside.render(model, tmp_path / "e.csv")


def test_only_the_columns_kept_are_copied_in_their_order_and_only_they_can_clash(
    model: ToyModel, tmp_path: Path
) -> None:
    labelled = [[*ROWS[0], "value"], *([*row, "1.0"] for row in ROWS[1:])]
    source = write(tmp_path / "in.csv", labelled)
    whole = score_file(TOY, model, source, tmp_path / "whole.csv", prefix="predicted_")
    # 'value' is not kept, so the prediction's own 'value' needs no prefix.
    kept = score_file(TOY, model, source, tmp_path / "kept.csv", keep=["segment", "id"])
    assert (kept.rows, kept.scored, kept.rejections) == (whole.rows, whole.scored, whole.rejections)
    rows, full = read(tmp_path / "kept.csv"), read(tmp_path / "whole.csv")
    assert list(rows[0]) == ["segment", "id", "value", "outside_training", "model_version", "error"]
    assert [(r["segment"], r["id"], r["value"], r["error"]) for r in rows] == [
        (f["segment"], f["id"], f["predicted_value"], f["predicted_error"]) for f in full
    ]
    with pytest.raises(ScoringError, match=r"column 'value' would be overwritten"):
        score_file(TOY, model, source, tmp_path / "clash.csv", keep=["id", "value"])
    # None kept: the scores alone, a row each in the file's order.
    score_file(TOY, model, source, tmp_path / "bare.csv", keep=[])
    assert [list(row.values()) for row in read(tmp_path / "bare.csv")] == [
        list(row.values())[2:] for row in rows
    ]
    with pytest.raises(
        ScoringError, match=r"no column 'customer', 'Id' to keep; the file's columns are id, x,"
    ):
        score_file(TOY, model, source, tmp_path / "unknown.csv", keep=["customer", "id", "Id"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.csv", "in.csv", "kept.csv", "whole.csv"]


def test_files_that_cannot_be_scored_are_refused_and_leave_no_output(model: ToyModel, tmp_path: Path) -> None:
    no_x = write(tmp_path / "no_x.csv", [row[:1] + row[2:] for row in ROWS])
    with pytest.raises(ScoringError, match=r"no column 'x': toy needs x, color, note"):
        score_file(TOY, model, no_x, tmp_path / "out.csv")
    # A spreadsheet's header with a space after a name read as a missing column, the one beside it
    # unnamed.
    spaced = write(tmp_path / "spaced.csv", [["id", "X ", *ROWS[0][2:]], *ROWS[1:]])
    with pytest.raises(ScoringError, match=r"no column 'x' \(the file has 'X '\): toy needs"):
        score_file(TOY, model, spaced, tmp_path / "out.csv")
    header_only = write(tmp_path / "empty.csv", ROWS[:1])
    with pytest.raises(ScoringError, match="has no rows to score"):
        score_file(TOY, model, header_only, tmp_path / "out.csv")
    source = write(tmp_path / "in.csv", ROWS)
    with pytest.raises(ScoringError, match="is the input file"):
        score_file(TOY, model, source, source)
    # Found missing once the rows were scored, it was a traceback at the end of the run.
    with pytest.raises(ScoringError, match=r"out.csv: no directory .*/missing to write the scores in"):
        score_file(TOY, model, source, tmp_path / "missing" / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.csv", "in.csv", "no_x.csv", "spaced.csv"]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"x,color\n3,red\n4,blue,extra,more\n", "not CSV as read: .*Expected 2 fields in line 3, saw 4"),
        # pandas would fill the missing cells and score the row: the last line of an interrupted
        # copy, its number cut short.
        (b"x,color,note\n3,red,a\n\n   \n4,blue\n", "line 5 has 2 cells, not the header's 3: a row cut"),
        (b"x,color,note\n3,red,a\n41", "line 3 has 1 cells, not the header's 3: a row cut short"),
        # pandas would read the first column as an index and every value one column to the right.
        (b"x,color\n0,3,red\n1,4,blue\n", "line 2 has 3 cells, not the header's 2: a comma too many"),
        # pandas would read the second as color.1 and score the first.
        (b"x,color,note,color\n3,red,a,blue\n", "names the column 'color' twice \\(columns 2 and 4\\)"),
        (
            "x,color\n3,r\xe9d\n".encode("latin-1"),
            r"not UTF-8 text \(line 2, byte 11 of the file: invalid continuation byte\)",
        ),
        (b"", "is empty: not even a header"),
    ],
)
def test_a_file_pandas_cannot_read_is_one_clear_error_and_no_output(
    model: ToyModel, tmp_path: Path, content: bytes, problem: str
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(content)
    # One row per chunk: the first row is written before the bad line is reached.
    with pytest.raises(ScoringError, match=problem):
        score_file(TOY, model, source, tmp_path / "out.csv", chunk_rows=1)
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


@pytest.mark.parametrize("name", ["in.csv", "in.csv.gz"])
def test_a_byte_not_utf8_deep_in_a_file_is_named_by_its_line_and_its_offset_in_the_file(
    tmp_path: Path, name: str
) -> None:
    # pandas reads 3 MiB at a time and its error counts from the buffer: a byte 3,285,709 into a
    # file was said to be at byte 139981, 3 MiB short of its place, and no line was named.
    rows = [b"x,color\n", *(f"{i % 10},red\n".encode() for i in range(1, 700_001))]
    rows[600_001] = b"3,r\xffd\n"
    content = b"".join(rows)
    source = tmp_path / name
    source.write_bytes(gzip.compress(content, compresslevel=1) if name.endswith(".gz") else content)
    at = content.index(b"\xff")
    counted = "decompressed text" if name.endswith(".gz") else "file"
    with pytest.raises(ScoringError) as raised:
        for _ in open_input(source).chunks(100_000, ["x", "color"]):
            pass
    assert str(raised.value) == (
        f"not UTF-8 text (line 600002, byte {at} of the {counted}: invalid start byte); save it as UTF-8 CSV"
    )


def test_a_character_cut_by_the_scans_blocks_is_utf8_and_one_cut_by_the_files_end_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(csv_shape, "SCAN_BYTES", 4)  # the euro sign's 3 bytes fall across blocks
    source = tmp_path / "in.csv"
    source.write_bytes("x,note\n1,€€€\n2,€\n".encode() + b"3,\xe2\x82")
    assert csv_shape.first_non_utf8(source)[:3] == (4, 27, "file")  # "3," ends at byte 27
    source.write_bytes("x,note\n1,€€€\n2,€\n".encode())
    assert csv_shape.first_non_utf8(source) is None


def test_a_spreadsheets_byte_order_mark_is_not_part_of_the_first_column(
    model: ToyModel, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes("x,color\n3,red\n".encode("utf-8-sig"))
    summary = score_file(TOY, model, source, tmp_path / "out.csv")
    assert summary.scored == 1
    assert next(csv.reader((tmp_path / "out.csv").open()))[:2] == ["x", "color"]


def test_each_file_of_a_run_is_fingerprinted_by_its_path_size_and_sha256(tmp_path: Path) -> None:
    export = tmp_path / "export"
    (export / "dt=2026-11-02").mkdir(parents=True)
    (export / "_SUCCESS").write_bytes(b"")
    (export / "part-0.csv").write_bytes(b"x,color\n3,red\n")
    (export / "dt=2026-11-02" / "part-1.csv").write_bytes(b"x,color\n4,blue\n")
    one, two = b"x,color\n3,red\n", b"x,color\n4,blue\n"
    assert file_fingerprints(export) == [
        {"path": "dt=2026-11-02/part-1.csv", "bytes": 15, "sha256": hashlib.sha256(two).hexdigest()},
        {"path": "part-0.csv", "bytes": 14, "sha256": hashlib.sha256(one).hexdigest()},
    ]
    assert file_fingerprints(export / "part-0.csv") == file_fingerprints(export)[1:]


class TouchedAfterFirstChunk:
    """A reader whose input is changed by ``touch`` once its first chunk is read, as a copy still
    being made into the input would change it."""

    def __init__(self, reader: Any, touch: Callable[[], object]) -> None:
        self.reader, self.touch = reader, touch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    def chunks(self, *args: Any) -> Iterator[Any]:
        for number, chunk in enumerate(self.reader.chunks(*args)):
            yield chunk
            if number == 0:
                self.touch()


@pytest.mark.parametrize("change", ["part added", "file rewritten"])
def test_an_input_changed_while_it_is_scored_leaves_no_output(
    model: ToyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    first = write(export / "part-0.csv", ROWS)
    if change == "part added":
        source, touch = export, lambda: write(export / "part-1.csv", ROWS)
    else:
        source, touch = first, lambda: os.utime(first, ns=(0, first.stat().st_mtime_ns + 10**9))
    opened = run.open_input
    monkeypatch.setattr(run, "open_input", lambda path: TouchedAfterFirstChunk(opened(path), touch))
    changed = "part-1.csv" if change == "part added" else "part-0.csv"
    with pytest.raises(ScoringError, match=rf"^{changed} changed while the input was scored"):
        score_file(TOY, model, source, tmp_path / "out.csv", chunk_rows=1)
    assert not (tmp_path / "out.csv").exists()


def test_an_empty_header_cell_is_kept_as_written(model: ToyModel, tmp_path: Path) -> None:
    # A file pandas wrote with its index (",id,x,..."): pandas read the empty name as "Unnamed: 0",
    # which was copied into the output as a column the file never had.
    import pyarrow.parquet as pq

    source = write(tmp_path / "in.csv", [["", *ROWS[0]], *[[str(i), *row] for i, row in enumerate(ROWS[1:])]])
    score_file(TOY, model, source, tmp_path / "out.csv")
    header = next(csv.reader((tmp_path / "out.csv").open()))
    assert header[:3] == ["", "id", "x"]
    assert [row[""] for row in read(tmp_path / "out.csv")] == ["0", "1", "2", "3", "4", "5"]
    score_file(TOY, model, source, tmp_path / "out.parquet")
    assert pq.read_table(tmp_path / "out.parquet").column_names[:2] == ["", "id"]


def test_two_empty_header_cells_are_refused_where_a_column_is_found_by_name(
    model: ToyModel, tmp_path: Path
) -> None:
    rows = [["", *ROWS[0], ""], *[[str(i), *row, ""] for i, row in enumerate(ROWS[1:])]]
    source = write(tmp_path / "in.csv", rows)
    score_file(TOY, model, source, tmp_path / "out.csv")  # CSV has no trouble with them
    assert next(csv.reader((tmp_path / "out.csv").open()))[: len(rows[0])] == rows[0]
    for name, written in (("out.parquet", "Parquet"), ("out.jsonl", "JSON Lines")):
        with pytest.raises(ScoringError, match=f"columns 1 and 7 have no name, and {written} tells"):
            score_file(TOY, model, source, tmp_path / name)
    # Arrow found two columns named "" and could not read the file back.
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize("name", ["scores.json", "scores.xlsx", "scores.parquet.gz", "scores.tsv.gz"])
def test_a_name_that_promises_another_format_is_refused(model: ToyModel, tmp_path: Path, name: str) -> None:
    # Each got the input's CSV (gzip-compressed for .gz) under a name that said otherwise.
    source = write(tmp_path / "in.csv", ROWS)
    with pytest.raises(ScoringError, match=f"{name}: "):
        score_file(TOY, model, source, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_a_name_that_says_no_format_gets_the_inputs(model: ToyModel, tmp_path: Path) -> None:
    source = write(tmp_path / "in.csv", ROWS)
    summary = score_file(TOY, model, source, tmp_path / "scores.out")
    assert summary.output_format == "csv"
    assert read(tmp_path / "scores.out")[0]["id"] == "007"
