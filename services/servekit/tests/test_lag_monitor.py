"""The event loop's lag: how late a timer fires while something holds the loop.

On the loop's own clock, made to move only when the loop would wait or a call holds it: on a busy
machine a real clock makes a free loop's wake-ups late by however long the process waited for a
core (CI saw more than 50 ms), which is the machine's lag, not the loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import selectors

from servekit.metrics import loop_lag


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


def test_a_blocked_loop_is_observed_late_and_a_free_one_on_time() -> None:
    observed: list[float] = []
    clock = Clock()

    async def main() -> None:
        watcher = asyncio.create_task(loop_lag.watch(observed.append, interval=0.01))
        await asyncio.sleep(0.1)  # a free loop: wake-ups on time
        free = list(observed)
        clock.now += 0.2  # what a request computed on the loop for 0.2 s does to everything else ready
        await asyncio.sleep(0.05)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        assert len(free) >= 9, "the watcher did not wake every interval"
        assert max(free) < 1e-6  # on time to the clock's last digits
        assert max(observed) >= 0.15  # the wake-up that waited behind the blocking call

    with asyncio.Runner(loop_factory=lambda: ClockedLoop(clock)) as runner:
        runner.run(main())
