"""``mlp score`` on the real files against the real registry: the API's answers, row for row."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from processes import Server
from servekit import registry
from servekit.datasets import shared_file
from servekit.loading import load_artifact
from servekit.scoring import flatten
from servekit.training.trainer import TrainResult, to_records

pytestmark = pytest.mark.integration

FILES = {
    "bankchurn": ("bankchurn", "Churn_Modelling.csv"),
    "chicagotaxi": ("chicagotaxi", "data.csv"),
    "nlpinsight": ("nlpinsight", "sent_train.csv"),
}


@pytest.mark.parametrize("name", registry.available())
def test_a_real_file_is_scored_row_for_row_as_the_api_answers_it(
    name: str,
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    spec = registry.get_service(name)
    version = registered[name].version
    source = shared_file(*FILES[name])
    out = tmp_path / "scored.csv"
    typed = pd.read_csv(source)
    fields = [f for f in spec.request.model_fields if f in typed.columns]
    # What the HTTP API would accept of each row, sent as JSON.
    accepted: dict[int, dict[str, object]] = {}
    for position, record in enumerate(to_records(typed[fields])):
        try:
            accepted[position] = spec.request.model_validate_json(json.dumps(record)).model_dump()
        except ValidationError:
            continue

    args = ("score", name, str(source), "--output", str(out), "--prefix", "predicted_")
    every_row_valid = len(accepted) == len(typed)
    report = mlp(*args, "--model-uri", f"models:/{name}/{version}", status=0 if every_row_valid else 1)

    with source.open(newline="") as handle:
        written = list(csv.reader(handle))
    with out.open(newline="") as handle:
        scored = list(csv.reader(handle))
    assert len(scored) == len(written)
    width = len(written[0])
    assert all(row[:width] == original for row, original in zip(scored, written, strict=True))
    header = scored[0]
    error, version_column = header.index("predicted_error"), header.index("predicted_model_version")
    rows = scored[1:]
    rejected = [i for i, row in enumerate(rows) if row[error]]
    assert "rows in " in report
    assert f"scored {len(rows) - len(rejected):,} of {len(rows):,} rows" in report
    # Every row the API accepts is scored (CSV cells are read laxly, never more strictly).
    assert not set(rejected) & set(accepted)
    assert all(rows[i][version_column] == version for i in accepted)

    model = spec.model(load_artifact(name, f"models:/{name}/{version}", mlflow_server.url))
    positions = sorted(accepted)
    answers = [flatten(a) for a in model.predict([accepted[i] for i in positions])]
    for key, value in answers[0].items():
        column = header.index(f"predicted_{key}")
        got = [rows[i][column] for i in positions]
        if isinstance(value, float):
            assert [float(g) for g in got] == pytest.approx([a[key] for a in answers], rel=1e-9), key
        else:
            assert got == [str(a[key]) for a in answers], key


def test_a_version_that_cannot_be_loaded_is_one_line_and_no_output(
    registered: dict[str, TrainResult], tmp_path: Path, mlp: Callable[..., str]
) -> None:
    source = shared_file(*FILES["bankchurn"])
    out = tmp_path / "scored.csv"
    error = mlp(
        "score",
        "bankchurn",
        str(source),
        "--output",
        str(out),
        "--model-uri",
        "models:/bankchurn@nope",
        status=1,
    )
    assert error.startswith("mlp: score: models:/bankchurn@nope: ")
    assert "nope" in error.splitlines()[0]
    assert not out.exists()
