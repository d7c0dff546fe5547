"""A line now and then on a long ``mlp score``: the rows so far, the rate, and the time left.

A run over every customer takes minutes; silence for that long looks like a hang, in a terminal
and in a Job's log alike. A run shorter than the interval prints nothing. The share of the file
is foreseen from its size and its first chunk's (``ScoringPool.estimated_rows``): close enough
to say how long is left, not a count to rely on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Seconds between two lines: a few a minute, so a Job's log stays short.
EVERY_SECONDS = 15.0


class Progress:
    """Says how far a run has come, at most once every ``every`` seconds (:data:`EVERY_SECONDS`)."""

    def __init__(
        self,
        say: Callable[[str], None],
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.say = say
        self.every = EVERY_SECONDS if every is None else every
        self.clock = clock
        self.began = self.last = clock()

    def update(self, rows: int, estimated_rows: float) -> None:
        """``rows`` read so far, of about ``estimated_rows`` in the file."""
        now = self.clock()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = now - self.began
        line = f"{rows:,} rows in {elapsed:.0f} s ({rows / elapsed:,.0f} rows/s)"
        if estimated_rows > rows > 0:
            share = rows / estimated_rows
            left = elapsed * (estimated_rows - rows) / rows
            line += f", about {share:.0%} of the file; about {_duration(left)} left"
        self.say(line)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
