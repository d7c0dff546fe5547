"""What ``make bench`` prints and reports beside its figures: sample counts, the reference run in
the same run, the targets' verdicts, and a second model's ratio over alternating rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from servekit.bench import __main__ as bench
from servekit.bench import http_figures, printing, second_model, targets
from servekit.bench.stats import Latency


def row(rps: float, p50: float, p99: float = 0.0, n: int = 10_000) -> dict[str, Any]:
    return {"requests_per_second": rps, "p50_ms": p50, "p99_ms": p99 or 2 * p50, "n": n, "errors": 0}


def test_a_p99_of_few_samples_is_counted_and_of_too_few_not_printed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    printing.print_rows(
        "t",
        {"many": row(100, 1.0, 3.0), "batch": row(100, 4.0, 9.0, n=640), "one": row(1, 5.0, 5.0, n=1)},
        "",
    )
    many, batch, one = capsys.readouterr().out.splitlines()[2:]
    assert "n=" not in many
    assert "p99    3.00 ms" in many
    assert "p50    4.00 ms (n=640)" in batch
    assert "p99    9.00 ms (n=640)" in batch
    assert "5.00 ms   p99" not in one
    assert "p99       -    (n=1, too few)" in one
    printing.print_latencies("kernel", {"KernelExplainer": Latency.of([2.5])})
    kernel = capsys.readouterr().out.splitlines()[-1]
    assert "2500.000 ms" in kernel  # its p50, the one sample
    assert "p99         -    (n=1, too few)" in kernel
    assert kernel.count("2500.000") == 1


def test_the_open_loop_p99_over_all_sent_is_printed_beside_the_answered_one() -> None:
    sent = {"all_latency": {"n": 400, "p99_ms": 1000.0}, "all_p99_is_lower_bound": True}
    assert printing.all_p99(sent) == "all sent: p99 >=1000.0 ms (n=400)"
    assert printing.all_p99({"all_latency": {"n": 5000, "p99_ms": 12.5}}) == "all sent: p99 12.5 ms"
    assert "too few" in printing.all_p99({"all_latency": {"n": 20, "p99_ms": 1.0}})


def test_each_single_request_row_is_set_against_the_reference_at_its_concurrency() -> None:
    http = {
        "predict c=1": row(1000, 1.0),
        "predict c=16": row(1500, 10.0),
        "predict+explain c=1": row(500, 2.0),
        "batch of 64 c=2": row(400, 5.0),
    }
    reference = {"bare uvicorn c=1": row(4000, 0.25), "bare uvicorn c=16": row(5000, 3.0)}
    ratios = http_figures.against_reference(http, reference)
    assert ratios == {
        "predict c=1": {"p50_ratio": 4.0, "requests_per_second_ratio": 0.25},
        "predict c=16": {"p50_ratio": 3.33, "requests_per_second_ratio": 0.3},
        "predict+explain c=1": {"p50_ratio": 8.0, "requests_per_second_ratio": 0.125},
    }


def test_the_reference_is_a_bare_app_measured_with_the_same_client(tmp_path: Path) -> None:
    measured = http_figures.measure_reference(tmp_path, [{"a": 1}, {"b": 2}], [1, 2], seconds=0.3)
    assert set(measured) == {"bare uvicorn c=1", "bare uvicorn c=2"}
    for figures in measured.values():
        assert figures["requests"] > 10
        assert figures["errors"] == 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"]


def test_the_targets_are_judged_on_the_figures_met_missed_or_not_measured(
    capsys: pytest.CaptureFixture[str],
) -> None:
    met = targets.check(
        {"predict c=1": row(1400, 0.7), "predict+explain c=1": row(900, 1.2), "predict c=16": row(1600, 9.0)}
    )
    assert [v.met for v in met] == [True, True, True]
    assert met[1].figure == pytest.approx(0.5)
    missed = targets.check(
        {"predict c=1": row(300, 2.5), "predict+explain c=1": row(90, 8.0), "predict c=16": row(900, 17.0)}
    )
    assert [v.met for v in missed] == [False, False, False]
    assert [v.figure for v in missed] == [2.5, 5.5, 900]
    unmeasured = targets.check({"predict c=1": row(1400, 0.7)})
    assert [v.met for v in unmeasured] == [True, None, None]
    printing.print_targets({"bankchurn": [v.as_dict() for v in missed]})
    lines = capsys.readouterr().out.splitlines()
    assert "  bankchurn    missed       HTTP predict p50 <= 2 ms at concurrency 1: 2.50 ms" in lines
    assert any(line.endswith("at concurrency 16: 900.00 predictions/s") for line in lines)


def test_targets_fail_the_run_only_when_asked() -> None:
    assert not bench.parser().parse_args([]).strict_targets
    assert bench.parser().parse_args(["--strict-targets"]).strict_targets


def test_a_second_model_is_judged_on_the_median_of_alternating_rounds() -> None:
    label = "predict c=16"
    rounds = [
        ({label: row(1000, 1.0)}, {label: row(900, 1.1)}),  # x0.90
        ({label: row(600, 1.0)}, {label: row(660, 1.1)}),  # x1.10: the host slowed both alike
        ({label: row(1000, 1.0)}, {label: row(950, 1.1)}),  # x0.95
    ]
    beside = second_model.beside_row(label, rounds)
    assert beside["ratio_to_alone"] == 0.95
    assert (beside["ratio_low"], beside["ratio_high"]) == (0.9, 1.1)
    assert beside["requests_per_second"] == 900  # the round whose beside rate is the median
    assert [r["ratio"] for r in beside["rounds"]] == [0.9, 1.1, 0.95]


def test_which_replica_goes_first_alternates_by_round(monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager
    from types import SimpleNamespace

    @contextmanager
    def serving(*_: Any, label: str, **__: Any) -> Any:
        yield SimpleNamespace(label=label)

    measured: list[str] = []

    def measure_http(server: Any, loads: Any, seconds: float) -> dict[str, Any]:
        measured.append(server.label)
        return {label: row(100, 1.0) for label in loads}

    monkeypatch.setattr(second_model, "serving", serving)
    monkeypatch.setattr(second_model, "wait_for_variants", lambda *_: None)
    monkeypatch.setattr(second_model, "model_counts", lambda *_: {})
    monkeypatch.setattr(second_model, "measure_http", measure_http)
    spec: Any = SimpleNamespace(name="toy")
    mlflow: Any = SimpleNamespace()
    loads: Any = {"predict c=16": None}
    found = second_model.measure_beside(
        spec, mlflow, Path(), role="shadow", settings={}, seconds=6, loads=loads
    )
    alone, beside = "shadow-alone", "shadow"
    assert measured == [alone, beside, beside, alone, alone, beside]
    assert found["rounds"] == second_model.ROUNDS == 3
