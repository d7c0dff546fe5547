"""``mlp score`` on the real files against the real registry: the API's answers, row for row."""

from __future__ import annotations

import csv
import gzip
import json
import signal
import subprocess
import time
from collections.abc import Callable
from functools import partial
from hashlib import sha256
from pathlib import Path

import orjson
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from processes import BIN, Server
from servekit import registry
from servekit.datasets import shared_file
from servekit.loading import load_artifact
from servekit.scoring import flatten, pool, score_file
from servekit.training.splitting import to_records
from servekit.training.trainer import TrainResult

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
    # Every rejection allowed: this test reads the report, the exit status has its own.
    report = mlp(*args, "--model-uri", f"models:/{name}/{version}", "--max-rejected", "100%")

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
    assert (f"{len(rejected):,} rejected rows are within --max-rejected 100%" in report) == bool(rejected)

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


def test_a_real_file_scored_into_parquet_with_its_key_and_each_rows_principal_reasons(
    registered: dict[str, TrainResult], tmp_path: Path, mlp: Callable[..., str]
) -> None:
    version = registered["bankchurn"].version
    out = tmp_path / "reasons.parquet"
    source = shared_file(*FILES["bankchurn"])
    mlp("score", "bankchurn", str(source), "--output", str(out), "--keep", "CustomerId", "--reasons", "2",
        "--model-uri", f"models:/bankchurn/{version}")  # fmt: skip
    scores = pq.read_table(out)
    assert scores.num_rows == len(pd.read_csv(source))
    assert scores.column_names[0] == "CustomerId"
    assert scores.schema.field("CustomerId").type == pa.string()  # CSV cells are text in Parquet
    assert "explanation" not in scores.column_names
    fields = set(registry.get_service("bankchurn").request.model_fields)
    first, second = scores.column("reason_1_field").to_pylist(), scores.column("reason_2_field").to_pylist()
    assert {field for field in first + second if field is not None} <= fields
    # Each row's reasons argued for its label, strongest first: a churn's raised the log-odds, a
    # stay's lowered them; a row with one input that did so has one reason, its second rank empty.
    toward = [1 if label == "churn" else -1 for label in scores.column("label").to_pylist()]
    strongest = scores.column("reason_1_contribution").to_pylist()
    next_ = scores.column("reason_2_contribution").to_pylist()
    for sign, one, two in zip(toward, strongest, next_, strict=True):
        assert one is not None or two is None
        assert one is None or one * sign > 0
        assert two is None or (two * sign > 0 and abs(one) >= abs(two))
    assert sum(one is not None for one in strongest) > 0.99 * len(strongest)


@pytest.mark.parametrize("name", registry.available())
def test_worker_processes_score_a_real_file_as_one_process_does(
    name: str,
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The real files take a second in one process, too short for workers to pay: made to start,
    # they show that each service's registered model and validation run the same in a worker.
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)
    spec = registry.get_service(name)
    model = spec.model(load_artifact(name, f"models:/{name}/{registered[name].version}", mlflow_server.url))
    source = shared_file(*FILES[name])
    score = partial(score_file, spec, model, source, prefix="predicted_", chunk_rows=2_500)
    alone, shared = score(tmp_path / "alone.csv"), score(tmp_path / "shared.csv", workers=2)
    assert (shared.workers, alone.workers) == (2, 0)
    assert (tmp_path / "shared.csv").read_bytes() == (tmp_path / "alone.csv").read_bytes()
    assert (shared.rows, shared.scored, shared.rejections) == (alone.rows, alone.scored, alone.rejections)
    assert (shared.outside, shared.outside_by_field) == (alone.outside, alone.outside_by_field)


@pytest.mark.parametrize("name", registry.available())
def test_a_real_file_exported_as_parquet_parts_is_scored_as_its_csv_is(
    name: str,
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    """A warehouse's export: the same rows as a directory of Parquet parts, typed, in row groups
    smaller than a chunk."""
    spec = registry.get_service(name)
    uri = f"models:/{name}/{registered[name].version}"
    source = shared_file(*FILES[name])
    table = pa.Table.from_pandas(pd.read_csv(source), preserve_index=False)
    export = tmp_path / "export"
    export.mkdir()
    third = -(-table.num_rows // 3)
    for part in range(3):
        rows = table.slice(part * third, third)
        pq.write_table(rows, export / f"part-{part:05}.parquet", row_group_size=1_000)
    (export / "_SUCCESS").write_text("")
    model = spec.model(load_artifact(name, uri, mlflow_server.url))
    reference = score_file(spec, model, source, tmp_path / "scored.csv", prefix="predicted_")

    out = tmp_path / "scored.parquet"
    args = ("score", name, str(export), "--output", str(out), "--prefix", "predicted_", "--model-uri", uri)
    report = mlp(*args, "--max-rejected", str(reference.rejected))

    assert f"scored {reference.scored:,} of {reference.rows:,} rows" in report
    scored = pq.read_table(out)
    assert scored.select(table.schema.names).equals(table)  # the input's columns, types and all
    as_text = pd.read_csv(tmp_path / "scored.csv", dtype=str, keep_default_na=False)
    added = [column for column in as_text.columns if column.startswith("predicted_")]
    assert scored.schema.names[table.num_columns :] == added
    for column in added:
        kind, values = scored.schema.field(column).type, scored.column(column).to_pylist()
        if pa.types.is_floating(kind):
            # As the model answered them: the CSV's text is each float's shortest exact form.
            assert values == [float(v) if v else None for v in as_text[column]], column
        else:
            assert [v if v is not None else "" for v in map(_text, values)] == list(as_text[column]), column


@pytest.mark.parametrize("name", registry.available())
def test_a_real_file_exported_as_gzip_json_lines_is_scored_as_its_csv_is(
    name: str,
    mlflow_server: Server,
    registered: dict[str, TrainResult],
    tmp_path: Path,
    mlp: Callable[..., str],
) -> None:
    """Vertex AI's batch prediction input, BigQuery's newline-delimited JSON: each row an object
    with its JSON types, a missing value null."""
    spec = registry.get_service(name)
    uri = f"models:/{name}/{registered[name].version}"
    source = shared_file(*FILES[name])
    rows = to_records(pd.read_csv(source))
    export = tmp_path / "rows.jsonl.gz"
    with gzip.open(export, "wb") as packed:
        packed.writelines(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)
    model = spec.model(load_artifact(name, uri, mlflow_server.url))
    reference = score_file(spec, model, source, tmp_path / "from-csv.jsonl", prefix="predicted_")

    out = tmp_path / "scored.jsonl"
    args = ("score", name, str(export), "--output", str(out), "--prefix", "predicted_", "--model-uri", uri)
    report = mlp(*args, "--max-rejected", str(reference.rejected))

    assert f"scored {reference.scored:,} of {reference.rows:,} rows" in report
    scored = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    from_csv = [orjson.loads(line) for line in (tmp_path / "from-csv.jsonl").read_bytes().splitlines()]
    # The same scores and refusals as its CSV's, each float to the last bit.
    added = [key for key in from_csv[0] if key.startswith("predicted_")]
    assert len(scored) == len(from_csv) == len(rows)
    assert [{k: row[k] for k in added} for row in scored] == [{k: row[k] for k in added} for row in from_csv]
    # Each object's values copied as they were, with their JSON types.
    assert [{k: v for k, v in row.items() if k not in added} for row in scored] == rows


def test_rejected_rows_over_the_limit_fail_the_run_with_the_output_written(
    registered: dict[str, TrainResult], tmp_path: Path, mlp: Callable[..., str]
) -> None:
    """ChicagoTaxi's real trips without a distance or a duration are refused by the API: a monthly
    run allows for them with --max-rejected, and fails, with its own exit status, past the limit."""
    source = shared_file(*FILES["chicagotaxi"])
    uri = f"models:/chicagotaxi/{registered['chicagotaxi'].version}"
    out = tmp_path / "fares.csv"
    args = (
        "score",
        "chicagotaxi",
        str(source),
        "--output",
        str(out),
        "--prefix",
        "predicted_",
        "--model-uri",
        uri,
    )
    rows = len(pd.read_csv(source))

    summary = tmp_path / "summary.json"
    refused = mlp(*args, "--summary", str(summary), status=3)  # none allowed, the default
    scored = pd.read_csv(out, dtype=str, keep_default_na=False)
    rejected = int((scored["predicted_error"] != "").sum())
    assert 0 < rejected < rows
    assert refused.strip() == (
        f"mlp: score: chicagotaxi: {rejected:,} of {rows:,} rows rejected, over --max-rejected 0 rows (0); "
        "the output is written, with each row's problem"
    )
    # What the run did, for whoever reads the scores: the registry's version and run, the counts.
    written = json.loads(summary.read_text())
    registered_run = registered["chicagotaxi"]
    assert written["model"]["version"] == registered_run.version
    assert written["model"]["run_id"] == registered_run.run_id
    assert (written["rows"], written["scored"], written["rejected"]) == (rows, rows - rejected, rejected)
    assert written["first_rejections"][0] == "row 1: trip_miles: Input should be greater than 0"
    assert written["max_rejected"] == {"limit": "0 rows", "allowed": 0, "exceeded": True}
    assert written["exit_status"] == 3
    outside = ~scored["predicted_outside_training"].isin(["", "[]"])
    assert written["outside_training"]["rows"] == int(outside.sum()) > 0
    # The exact input and output, by size and digest: an auditor holding both can tie them.
    assert written["input_files"] == [
        {
            "path": source.name,
            "bytes": source.stat().st_size,
            "sha256": sha256(source.read_bytes()).hexdigest(),
        }
    ]
    assert written["output_file"] == {
        "path": out.name,
        "bytes": out.stat().st_size,
        "sha256": sha256(out.read_bytes()).hexdigest(),
    }

    share = 100 * rejected / rows
    below, above = f"{share - 0.1:.1f}", f"{share + 0.1:.1f}"
    over = mlp(*args, "--max-rejected", f"{below}%", status=3)
    assert f"over --max-rejected {below}% of the rows ({int(rows * float(below) / 100):,})" in over
    within = mlp(*args, "--max-rejected", f"{above}%", "--summary", str(summary))
    assert f"{rejected:,} rejected rows are within --max-rejected {above}% of the rows" in within
    allowed = int(rows * float(above) / 100)
    assert json.loads(summary.read_text())["max_rejected"] == {
        "limit": f"{above}% of the rows",
        "allowed": allowed,
        "exceeded": False,
    }
    assert json.loads(summary.read_text())["exit_status"] == 0
    # A summary that would overwrite the scores is refused before anything runs.
    clash = mlp(*args, "--summary", str(out), status=2)
    assert f"--summary {out}: the input or the output; name another file" in clash
    assert mlp(*args, "--max-rejected", str(rejected)).count("within --max-rejected") == 1
    mlp(*args, "--max-rejected", str(rejected - 1), status=3)
    assert pd.read_csv(out, dtype=str, keep_default_na=False).equals(scored)


def _text(value: object) -> str | None:
    """A typed cell as the CSV output writes it."""
    return None if value is None else str(value)


def test_a_terminated_score_exits_143_and_leaves_no_output_and_no_worker_behind(
    mlflow_server: Server, registered: dict[str, TrainResult], tmp_path: Path
) -> None:
    """``kill`` or a Job's pod evicted: SIGTERM to the command alone, not to its workers."""
    source, out = tmp_path / "customers.csv", tmp_path / "scored.csv"
    # Explained, 60,000 rows take a dozen seconds in one process: enough for the workers to start.
    registry.get_service("bankchurn").recipe.generate(60_000, seed=3).to_csv(source, index=False)
    version = registered["bankchurn"].version
    # Chunks of 1,000 rows: the workers end a second after the signal, not ten.
    args = ["score", "bankchurn", str(source), "--output", str(out), "--explain", "--workers", "2"]
    args += ["--chunk-rows", "1000"]
    args += ["--model-uri", f"models:/bankchurn/{version}", "--tracking-uri", mlflow_server.url]
    command = subprocess.Popen([str(BIN / "mlp"), *args], stderr=subprocess.PIPE, text=True)
    workers: list[psutil.Process] = []
    try:
        process = psutil.Process(command.pid)
        deadline = time.monotonic() + 60
        while len(workers := spawned(process)) < 2:
            assert command.poll() is None, command.stderr.read() if command.stderr else ""
            assert time.monotonic() < deadline, "the workers never started"
            time.sleep(0.2)
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=30) == 143
    finally:
        command.kill()
        # The workers finish the chunk they hold, find no more, and end.
        _, alive = psutil.wait_procs(workers, timeout=30)
        for orphan in alive:  # not left to hold a CPU past a failed test
            orphan.kill()
    assert not alive
    assert sorted(path.name for path in tmp_path.iterdir()) == ["customers.csv"]


def spawned(process: psutil.Process) -> list[psutil.Process]:
    """The worker processes of ``mlp score`` (multiprocessing's resource tracker is not one)."""
    return [child for child in process.children() if "spawn_main" in " ".join(child.cmdline())]


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
        status=2,  # the registry holds no such alias: no retry brings it (1 is worth retrying)
    )
    assert error.startswith("mlp: score: models:/bankchurn@nope: ")
    assert "nope" in error.splitlines()[0]
    assert not out.exists()
