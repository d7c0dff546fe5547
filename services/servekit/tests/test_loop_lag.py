"""The event loop's lag: how late a timer fires while something holds the loop."""

from __future__ import annotations

import asyncio
import contextlib
import time

from servekit.metrics import loop_lag


def test_a_blocked_loop_is_observed_late_and_a_free_one_on_time() -> None:
    observed: list[float] = []

    async def main() -> None:
        watcher = asyncio.create_task(loop_lag.watch(observed.append, interval=0.01))
        await asyncio.sleep(0.1)  # a free loop: wake-ups on time
        free = list(observed)
        time.sleep(0.2)  # what a request computed on the loop does to everything else ready
        await asyncio.sleep(0.05)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        assert free, "the watcher never woke"
        assert max(free) < 0.05
        assert max(observed) >= 0.15  # the wake-up that waited behind the blocking call

    asyncio.run(main())
