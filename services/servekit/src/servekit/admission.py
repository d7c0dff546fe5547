"""Admission: a replica answers at most so many prediction requests at once and refuses the rest at once.

Past its capacity a server that accepts everything queues: every request waits behind all the
others, latency grows for as long as the overload lasts, and soon every answer arrives after its
client has given up, so the replica works flat out and serves no one. Refusing the excess at
once, with 503 and ``Retry-After``, keeps the answers it does give on time and tells the client
(or a load balancer's retry policy) to try another replica. uvicorn's ``--limit-concurrency``
would refuse probes and scrapes too, and a replica refusing its liveness probe is restarted at
the worst moment; here only prediction requests count, on every transport (HTTP and gRPC).

Every transport runs on the app's one event loop, so the count needs no lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from servekit.errors import ServekitError

#: Seconds a refused client is told to wait: the excess of a burst is usually gone by then.
RETRY_AFTER_SECONDS = 1


class AdmissionLimit:
    """Counts the prediction requests in flight; refuses one that would exceed ``limit`` (0: none)."""

    def __init__(
        self,
        service: str,
        limit: int,
        *,
        on_refused: Callable[[], object] = lambda: None,
    ) -> None:
        self.service = service
        self.limit = limit
        self.in_flight = 0
        self.on_refused = on_refused

    def enter(self) -> None:
        """Take one of the places; a 503 ServekitError if none is free."""
        if self.limit and self.in_flight >= self.limit:
            self.on_refused()
            raise self.refusal()
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold one of the places while the body runs; a 503 ServekitError if none is free."""
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def refusal(self) -> ServekitError:
        variable = f"{self.service.upper()}_MAX_CONCURRENT_REQUESTS"
        return ServekitError(
            503,
            "overloaded",
            f"this replica is answering {self.limit} prediction requests, its limit ({variable}); "
            f"retry in {RETRY_AFTER_SECONDS} s or on another replica",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    def status(self) -> dict[str, int]:
        return {"limit": self.limit, "in_flight": self.in_flight}
