"""An event loop on a clock of its own, for tests of the loop's lag.

The clock moves only when the loop would wait (to its next timer) or when a test moves it (what a
call holding the loop that long does): on a busy machine a real clock makes a free loop's wake-ups
late by however long the process waited for a core (CI saw more than 50 ms), which is the
machine's lag, not the loop's.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from typing import Any


class Clock:
    """The loop's clock: still while the loop runs callbacks, moved by what waits or holds it."""

    def __init__(self) -> None:
        self.now = 0.0


class WaitlessSelector(selectors.SelectSelector):
    """Polls without waiting: where the loop would sleep until its next timer, the clock jumps there."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is not None:
            self.clock.now += timeout
        return ready


class ClockedLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: Clock) -> None:
        super().__init__(WaitlessSelector(clock))
        self.clock = clock

    def time(self) -> float:
        return self.clock.now


def on_clocked_loop(main: Callable[[Clock], Coroutine[Any, Any, None]]) -> Clock:
    """Run ``main(clock)`` on a loop of that clock; the clock, after."""
    clock = Clock()
    with asyncio.Runner(loop_factory=lambda: ClockedLoop(clock)) as runner:
        runner.run(main(clock))
    return clock


async def turns_until(condition: Callable[[], bool], most: int = 10) -> int:
    """Let the loop turn until ``condition()``; how many turns it took."""
    for turn in range(1, most + 1):
        await asyncio.sleep(0)
        if condition():
            return turn
    raise AssertionError("condition never met")
