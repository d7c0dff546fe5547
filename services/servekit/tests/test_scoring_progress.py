"""A long ``mlp score`` says how far it has come; a short one says nothing."""

from __future__ import annotations

import pytest

from servekit.scoring.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_line_at_most_every_interval_with_the_rate_the_share_and_the_time_left() -> None:
    clock, lines = Clock(), []
    progress = Progress(lines.append, every=15, clock=clock)
    clock.now += 10
    progress.update(10_000, 100_000)
    assert lines == []  # sooner than the interval: a short run prints nothing
    clock.now += 10
    progress.update(20_000, 100_000)
    assert lines == ["20,000 rows in 20 s (1,000 rows/s), about 20% of the file; about 80 s left"]
    clock.now += 5
    progress.update(25_000, 100_000)
    assert len(lines) == 1
    clock.now += 180
    progress.update(50_000, 400_000)  # the time left in minutes, then in hours
    clock.now += 15
    progress.update(55_000, 10_000_000)
    assert lines[1:] == [
        "50,000 rows in 205 s (244 rows/s), about 12% of the file; about 24 min left",
        "55,000 rows in 220 s (250 rows/s), about 1% of the file; about 11.1 h left",
    ]


@pytest.mark.parametrize("estimated", [0.0, 30_000.0, 29_999.0])
def test_no_share_is_claimed_where_the_estimate_is_no_more_than_the_rows_read(estimated: float) -> None:
    clock, lines = Clock(), []
    progress = Progress(lines.append, every=15, clock=clock)
    clock.now += 30
    progress.update(30_000, estimated)
    assert lines == ["30,000 rows in 30 s (1,000 rows/s)"]
