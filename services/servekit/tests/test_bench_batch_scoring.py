"""``make bench-score``: one process and its workers, on the same file, in one run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from servekit.bench import batch_scoring
from servekit.scoring import pool


def test_the_bench_prints_and_writes_both_rates_and_their_ratio(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(pool, "WORKERS_PAY_AFTER_SECONDS", 0.0)  # a file small enough for a test
    output = tmp_path / "batch_scoring.json"
    args = ["--services", "bankchurn", "--rows", "3000", "--explained-rows", "1000", "--chunk-rows", "500"]
    # Three of the eight files, scored by the same loop: each kind starts its own two workers, which
    # cost the suite 20 CPU-seconds more; the formats' readers and writers have tests of their own.
    files = ("predicted", "explained", "jsonl_to_parquet")
    assert set(files) < set(batch_scoring.parser().parse_args([]).files)  # make bench-score: all
    assert batch_scoring.main([*args, "--workers", "2", "--files", *files, "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    kinds = (("predicted", 3000), ("explained", 1000), ("jsonl_to_parquet", 3000))
    assert set(report["bankchurn"]) == set(files)
    for kind, rows in kinds:
        figures = report["bankchurn"][kind]
        assert figures["rows"] == rows
        assert figures["alone"]["workers_started"] == 0
        assert figures["workers"]["workers_started"] == 2
        rates = figures["workers"]["rows_per_second"] / figures["alone"]["rows_per_second"]
        assert figures["ratio"] == pytest.approx(rates, abs=0.01)
        # With the workers, their memory is counted too: each holds the model and its chunks.
        alone, shared = figures["alone"], figures["workers"]
        assert 0 <= alone["peak_added_mib"] <= alone["peak_resident_mib"]
        assert shared["peak_resident_mib"] > alone["peak_resident_mib"] + 50
    printed = capsys.readouterr().out
    assert "bankchurn, 3,000 rows predicted: one process " in printed
    assert "bankchurn, 1,000 rows explained: one process " in printed
    assert "bankchurn, 3,000 rows jsonl to parquet: one process " in printed
    assert "2 workers asked, 2 started: " in printed
    assert " MiB with the workers, +" in printed


def test_the_bench_fails_when_the_workers_write_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scored = batch_scoring.score_file

    def scored_differently(*args: Any, workers: int, **kwargs: Any) -> Any:
        summary = scored(*args, workers=1, **kwargs)
        if workers > 1:
            output: Path = args[3]
            output.write_text(output.read_text().replace("stay", "churn"))
        return summary

    monkeypatch.setattr(batch_scoring, "score_file", scored_differently)
    with pytest.raises(AssertionError, match="the workers wrote another file than one process did"):
        batch_scoring.main(
            [
                "--services",
                "bankchurn",
                "--rows",
                "500",
                "--explained-rows",
                "100",
                "--output",
                str(tmp_path / "r.json"),
            ]
        )
