from __future__ import annotations

import numpy as np
import pytest

from servekit.bench import family
from servekit.training import uncertainty


def test_a_run_calls_groups_apart_by_the_level_it_is_given() -> None:
    """The same simulated answers at two levels: a group called apart at the wider level is called
    apart at 95 % too, and errors three times the served version's are found at both."""
    for seed in range(5):
        at_95, held = family.one_run(
            np.random.default_rng(seed), 8, 200, 3.0, [uncertainty.LEVEL, uncertainty.each_of(8)], seed=seed
        )
        assert held[0] <= at_95[0]
        assert at_95[1]
        assert held[1]


def test_held_together_alike_versions_are_called_apart_in_fewer_runs() -> None:
    """30 runs of 4 groups (the seeds fixed): at 95 % each some group of two alike versions is
    called apart in several runs (theory: 1 - 0.95^4 = 19 %), held together in at most half as
    many; with errors 1.0 times as large, no group is worse beyond what those runs call apart.
    The full measurement (300 runs) is in the README, *A shadow judged by the truth*."""
    found = family.measure(runs=30, groups=4, rows=60, worse=1.0)
    each, together = found["95% each"], found["95% together"]
    assert each.any_apart >= 0.1
    assert together.any_apart <= each.any_apart / 2
    assert together.power <= together.any_apart
    assert each.power <= each.any_apart


def test_the_command_prints_both_levels(capsys: pytest.CaptureFixture[str]) -> None:
    assert family.main(["--runs", "3", "--groups", "2", "--rows", "50"]) == 0
    out = capsys.readouterr().out
    assert "3 runs of 2 groups of 50 answers" in out
    assert "at 95% each (theory 9.8%)" in out
    assert "held together at 97.5% each (theory: at most 5%)" in out
