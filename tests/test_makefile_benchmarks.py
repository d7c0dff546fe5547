"""``make bench``, ``make cost`` and ``make soak`` pass their variables on: what each runs (make -n)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def runs(target: str, *variables: str) -> list[list[str]]:
    """The commands ``make`` would run for ``target`` that start a Python program of the venv's."""
    dry = subprocess.run(
        ["make", "-n", "-s", target, *variables], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [shlex.split(line) for line in dry.stdout.splitlines() if line.startswith(".venv/bin/python ")]


def test_make_bench_passes_bench_args() -> None:
    [bench] = runs("bench", "BENCH_ARGS=--services bankchurn --seconds 1")
    assert bench[1:] == ["-m", "servekit.bench", "--services", "bankchurn", "--seconds", "1"]


def test_make_cost_passes_the_measurements_arguments_and_costs_apart() -> None:
    measure, price = runs("cost", "COST_CPU_ARGS=--services bankchurn --repeats 1", "COST_ARGS=--overlay gke")
    measured = ["--services", "bankchurn", "--repeats", "1"]
    assert measure[1:] == ["-m", "servekit.bench.cpu", "--output", "reports/cpu.json", *measured]
    assert price[1:] == ["k8s/cost.py", "--cpu", "reports/cpu.json", "--overlay", "gke"]


@pytest.mark.parametrize(
    ("variables", "arguments"),
    [
        ((), ["--seconds", "600"]),  # the warm-up: soak's default, a fifth of it
        (("SOAK_SECONDS=10",), ["--seconds", "10"]),
        (("SOAK_SECONDS=10", "SOAK_WARMUP=3"), ["--seconds", "10", "--warmup", "3"]),
    ],
)
def test_make_soak_warms_up_for_soak_warmup_or_a_share_of_its_seconds(
    variables: tuple[str, ...], arguments: list[str]
) -> None:
    [soak] = runs("soak", *variables)
    assert soak[1:] == ["-m", "servekit.bench.soak", *arguments]


def test_make_help_names_the_variables() -> None:
    shown = subprocess.run(
        ["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "BENCH_ARGS" in shown
    assert "COST_CPU_ARGS" in shown
    assert "SOAK_WARMUP" in shown


def test_make_loadtest_names_its_reports_and_fails_when_the_run_fails(tmp_path: Path) -> None:
    """The reports say why a run failed, so their path is printed either way (make's shell stops at
    a failing command: its status is kept, not the shell's exit)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    locust = bin_dir / "locust"
    locust.write_text("#!/bin/sh\necho 'loadtest: FAILED'\nexit 3\n")
    locust.chmod(0o755)
    reports = tmp_path / "reports"
    ran = subprocess.run(
        ["make", "-s", "-o", "sync", "loadtest", f"BIN={bin_dir}", f"LOAD_REPORTS={reports}"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert ran.returncode != 0
    assert ran.stdout.splitlines()[-2:] == ["loadtest: FAILED", f"reports: {reports}/"]
