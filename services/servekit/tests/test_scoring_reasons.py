"""``mlp score --reasons N``: each row's strongest inputs as columns, from its exact explanation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from toy import TOY, ToyModel

from servekit.model import ModelArtifact
from servekit.reasons import principal_reasons
from servekit.scoring import pool, score_file
from servekit.scoring.reasons import reason_cells
from servekit.training.splitting import Split

ROWS = [
    ["id", "x", "color", "note"],
    ["007", "3", "red", ""],
    ["008", "2.5", "blue", "hello"],
    ["009", "11", "red", ""],  # rejected: x out of range
    ["010", "9.75", "green", ""],  # rejected: unknown category
    ["011", "6", "blue", ""],
]


@pytest.fixture
def model(toy_trained: tuple[ModelArtifact, Split]) -> ToyModel:
    return ToyModel(toy_trained[0])


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_as_columns_each_rank_is_a_field_its_value_as_text_and_a_contribution() -> None:
    reasons = principal_reasons({"Age": 0.4, "Balance": -0.9}, {"Age": 42, "Balance": 83807.86}, 2)
    assert reason_cells(reasons, 2) == {
        "reason_1_field": "Balance",
        "reason_1_value": "83807.86",
        "reason_1_contribution": -0.9,
        "reason_2_field": "Age",
        "reason_2_value": "42",
        "reason_2_contribution": 0.4,
    }
    # Past the reasons given the ranks are empty; a missing value is empty, not "None".
    cells = reason_cells([{"field": "text", "value": None, "contribution": 1.5}], 2)
    assert cells == {
        "reason_1_field": "text",
        "reason_1_value": None,
        "reason_1_contribution": 1.5,
        "reason_2_field": None,
        "reason_2_value": None,
        "reason_2_contribution": None,
    }


def test_each_scored_row_gets_its_explanations_strongest_inputs_and_a_rejected_row_none(
    model: ToyModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows(ROWS)
    score_file(TOY, model, source, tmp_path / "explained.csv", explain=True)
    score_file(TOY, model, source, tmp_path / "reasons.csv", reasons=2)
    explained, reasons = read(tmp_path / "explained.csv"), read(tmp_path / "reasons.csv")
    assert "explanation" not in reasons[0]  # the whole explanation only with --explain
    assert list(reasons[0])[-8:] == [
        "reason_1_field",
        "reason_1_value",
        "reason_1_contribution",
        "reason_2_field",
        "reason_2_value",
        "reason_2_contribution",
        "model_version",
        "error",
    ]
    for whole, row in zip(explained, reasons, strict=True):
        assert row["value"] == whole["value"]
        if whole["error"]:
            assert row["reason_1_field"] == row["reason_1_contribution"] == ""
            continue
        contributions = json.loads(whole["explanation"])["contributions"]
        strongest = sorted(contributions, key=lambda field: -abs(contributions[field]))[:2]
        assert [row["reason_1_field"], row["reason_2_field"]] == strongest
        assert float(row["reason_1_contribution"]) == contributions[strongest[0]]
        # Each value as the row validated it: x a float, an empty note none.
        values = {"x": str(float(whole["x"])), "color": whole["color"], "note": whole["note"]}
        assert [row["reason_1_value"], row["reason_2_value"]] == [values[field] for field in strongest]
    # With --explain as well, both; in workers, the same bytes.
    both = score_file(TOY, model, source, tmp_path / "both.csv", explain=True, reasons=1)
    assert {"explanation", "reason_1_field"} <= set(read(tmp_path / "both.csv")[0])
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)
    shared = score_file(
        TOY, model, source, tmp_path / "shared.csv", explain=True, reasons=1, chunk_rows=2, workers=2
    )
    assert shared.workers == 2
    assert (tmp_path / "shared.csv").read_bytes() == (tmp_path / "both.csv").read_bytes()
    assert (both.rows, both.scored) == (5, 3)


def test_as_parquet_the_reasons_are_text_and_the_contributions_numbers(
    model: ToyModel, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows(ROWS)
    score_file(TOY, model, source, tmp_path / "reasons.parquet", reasons=2)
    schema = pq.read_schema(tmp_path / "reasons.parquet")
    assert schema.field("reason_1_field").type == pa.string()
    assert schema.field("reason_2_value").type == pa.string()
    assert schema.field("reason_1_contribution").type == pa.float64()
    # Typed by name, not by the example's answer, whose ranks past its inputs are empty.
    score_file(TOY, model, source, tmp_path / "more.parquet", reasons=5)
    schema = pq.read_schema(tmp_path / "more.parquet")
    assert schema.field("reason_5_contribution").type == pa.float64()
    assert schema.field("reason_5_field").type == pa.string()
