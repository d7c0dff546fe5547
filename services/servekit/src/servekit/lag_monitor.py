"""How late the event loop runs what is ready: the wait no request-level metric can see, which
admission (``servekit.admission``) sheds on and ``<svc>_event_loop_lag_seconds`` times.

Single records and small batches are answered on the event loop, one after another. Past a
replica's capacity they queue in the socket and in the loop's ready queue *before* the app sees
them, where neither the requests in flight nor their latency shows it. A task that sleeps
``interval`` seconds and notes how late it woke measures the wait at the head of that queue, as
Node's ``toobusy`` and Envoy's adaptive concurrency do. One task for both uses, started by the
app's lifespan.

Noted at wake-up only, the reading would come too late: the monitor waits in the very queue it
measures, so while the loop works through a long turn the last reading is that of the turn
before. The reading is therefore how overdue the next wake-up is already (now minus when it was
due): a request checked 300 ms into a long turn sees about 300 ms, though the monitor has not run
since, and the reading is back to nothing as soon as the monitor has run again (caught up).

The lateness of the last wake-up is recorded (``late``) but not shed on. Holding it until the next
wake-up refused the whole turn after a late one; with BankChurn at 256 closed-loop clients that
turn was all refusals, and a refusal costs about two thirds of an answer there (uvicorn, the
middleware, the error body), so it ran late itself and the shedding fed itself: 74-83 % of the
requests refused and a fifth to a third of the unshed answers per second. Shedding on the
overdue part alone refused 38-47 % and kept 66-91 % of them, with the answers' p99 halved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: How often the monitor wakes: often enough that a queue building shows within a scrape interval,
#: rarely enough to cost next to nothing. The reading admission sheds on does not wait for a wake-up
#: (it is how overdue the next one is), so a shorter interval buys it nothing; at 20 ms an idle
#: process spent 9.5 ms of CPU a second on it, at 50 ms 4.3, and the test suite's dozens of servers
#: on two cores felt the difference.
INTERVAL_SECONDS = 0.05


class LoopLagMonitor:
    """The lag of the loop :meth:`run` runs on: how late it runs what is ready, in seconds.

    0 until :meth:`run` starts and again once it ends, so nothing is refused on a loop unwatched.
    """

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        self.interval = interval
        #: How late the last wake-up was.
        self.late = 0.0
        #: When the next wake-up is due, on the loop's clock; None while not running.
        self.due: float | None = None
        self.clock: Callable[[], float] | None = None

    def lag(self) -> float:
        """How overdue the next wake-up is: how late the loop is running what is ready now."""
        if self.due is None or self.clock is None:
            return 0.0
        return max(0.0, self.clock() - self.due)

    async def run(self, observe: Callable[[float], None] = lambda late: None) -> None:
        """Watch the running loop until cancelled, calling ``observe`` with how late (seconds) each
        wake-up was (the histogram's samples)."""
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        try:
            while True:
                self.due = loop.time() + self.interval
                await asyncio.sleep(self.interval)
                self.late = max(0.0, loop.time() - self.due)
                observe(self.late)
        finally:
            self.due, self.clock, self.late = None, None, 0.0
