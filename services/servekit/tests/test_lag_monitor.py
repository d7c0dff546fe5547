"""The event loop's lag: how late a timer fires while something holds the loop, on the loop's own
clock (``clocked_loop``)."""

from __future__ import annotations

import asyncio
import contextlib

from clocked_loop import Clock, on_clocked_loop, turns_until

from servekit.lag_monitor import LoopLagMonitor


def test_a_blocked_loop_is_observed_late_and_a_free_one_on_time() -> None:
    observed: list[float] = []

    async def main(clock: Clock) -> None:
        watcher = asyncio.create_task(LoopLagMonitor(interval=0.01).run(observed.append))
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

    on_clocked_loop(main)


def test_the_lag_counts_an_overdue_wake_up_and_resets_once_the_monitor_has_caught_up() -> None:
    monitor = LoopLagMonitor(interval=0.02)

    async def main(clock: Clock) -> None:
        assert monitor.lag() == 0.0  # not watching: nothing is late
        watcher = asyncio.create_task(monitor.run())
        await asyncio.sleep(0.1)  # a free loop: every wake-up on time
        assert monitor.lag() < 1e-6
        assert monitor.late < 1e-6

        clock.now += 0.3  # a call holding the loop 300 ms, the monitor's wake-up queued behind it
        assert monitor.late < 1e-6  # the monitor has not run since...
        assert monitor.lag() >= 0.28  # ...but its wake-up is overdue by all but at most an interval

        # The monitor wakes, records how late, and the reading is back to nothing without the
        # clock moving: the loop has caught up.
        at = clock.now
        await turns_until(lambda: monitor.late > 0)
        assert monitor.late >= 0.28
        assert monitor.lag() < 1e-6
        assert clock.now == at

        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        clock.now += 1.0
        assert monitor.lag() == 0.0  # stopped: nothing is late

    on_clocked_loop(main)
