"""``servekit.bench.cpu``: repeated runs of one kind of request summed up as one figure."""

from __future__ import annotations

from typing import Any

import pytest

from servekit.bench import cpu


def run(ms: float, cores: float) -> dict[str, Any]:
    return {"cpu_ms_per_prediction": ms, "cores": cores, "predictions": 1000}


@pytest.mark.parametrize(
    ("figures", "median"),
    [
        ([1.7, 0.9, 1.2], 1.2),
        ([0.9], 0.9),
        ([2.0, 1.0], 1.0),  # an even count takes the lower middle run, a run that happened
    ],
)
def test_the_figure_is_the_median_run_with_the_range_of_all(figures: list[float], median: float) -> None:
    runs = [run(ms, cores=ms / 10) for ms in figures]
    summary = cpu.summary(runs)
    assert summary["cpu_ms_per_prediction"] == median
    # The median run's other figures come with it, not a mix of runs.
    assert summary["cores"] == median / 10
    assert summary["runs"] == len(figures)
    assert summary["cpu_ms_range"] == [min(figures), max(figures)]
