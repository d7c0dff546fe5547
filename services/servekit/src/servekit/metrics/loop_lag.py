"""How late the event loop runs what is ready: the wait no request-level metric can see.

Single records and small batches are answered on the event loop, one after another. Past a
replica's capacity they wait in the socket and in the loop's queue *before* the app sees them,
so neither the requests in flight nor their latency shows it. A timer that should fire every
``interval`` seconds fires late by as long as that queue: its lateness is the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Often enough to see a queue building within a scrape interval, rarely enough to cost nothing.
INTERVAL_SECONDS = 0.05


async def watch(observe: Callable[[float], None], interval: float = INTERVAL_SECONDS) -> None:
    """Observe, every ``interval``, how late the loop woke this task (seconds); until cancelled."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - due))
