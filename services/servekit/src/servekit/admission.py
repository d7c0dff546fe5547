"""Admission: a replica answers at most so many prediction requests at once and refuses the rest at once.

Past its capacity a server that accepts everything queues: every request waits behind all the
others, latency grows for as long as the overload lasts, and soon every answer arrives after its
client has given up, so the replica works flat out and serves no one. Refusing the excess at
once, with 503 and ``Retry-After``, keeps the answers it does give on time and tells the client
(or a load balancer's retry policy) to try another replica. uvicorn's ``--limit-concurrency``
would refuse probes and scrapes too, and a replica refusing its liveness probe is restarted at
the worst moment; here only prediction requests count, on every transport (HTTP and gRPC).

Two limits, because requests differ in size. The count of requests is checked before a body is
read, so refusing a full replica costs microseconds; but a request takes its place only once its
body has arrived. A place bounds model work, not uploads: sixteen clients trickling a byte of
body each (slowly, or on purpose) would otherwise hold every place of an idle replica and have
it refuse everyone else. An upload is bounded by its own deadline instead (``servekit.rest.body``).
A batch of 256 explained rows is 256 times the work of one row, so 16 such batches wait four
times as long as 16 batches of 64. The count of instances in batches answered off the event loop
bounds that work itself; it is checked once the body is decoded, when the number of rows is
known. Single records and small batches are answered on the loop, one after the other, and are
not counted: they hold a place only for the instant their answer takes, so the count of requests
never sees them queue. They do queue, in the socket and in the loop's ready queue, before the app
sees them: BankChurn's single records at 256 clients waited 612 ms (p50) with no request refused,
and ``/healthz``, answered on the same loop, took over 3 s at 512, past the liveness probe's
timeout. So a third limit sheds on the loop's own lag (``servekit.lag_monitor``), as Node's
``toobusy`` and Envoy's adaptive concurrency do: a prediction request that arrives while the loop
runs ready work more than ``max_loop_lag`` seconds late is refused at once, before its body is
read. A refusal costs a fraction of an answer, so the loop catches up and the probes stay answered.

Work handed to a worker thread holds its request's place and its instances until the thread is
done, not until its caller stops waiting: a caller cancelled (a gRPC deadline, a server shutting
down) cannot stop the thread, and places freed while the model still computes would let the
limits admit new work on top of work they no longer count.

With API keys (``servekit.auth``), a third limit keeps one client from taking a whole replica:
a client already answered ``client_limit`` requests at once on it is refused with 429, so a
runaway loop in one client's code leaves places for the others. A 429 is no shed: with other
clients served it is that client's excess, but a service's only caller meets its share before the
replica's limit, so there it is the replica's overload too (the ClientRefusedAtItsShare alert).
It is a cap per replica, so it scales with the replicas like the request limit.

Every transport runs on the app's one event loop, so the counts need no lock.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from servekit.errors import ServekitError
from servekit.lag_monitor import LoopLagMonitor

#: Seconds a refused client is told to wait: the excess of a burst is usually gone by then.
RETRY_AFTER_SECONDS = 1


#: Which limit refused a request: the ``limit`` label of ``<svc>_prediction_requests_shed_total``.
REQUESTS = "requests"
INSTANCES = "instances"
LOOP_LAG = "loop_lag"
LIMITS = (REQUESTS, INSTANCES, LOOP_LAG)

T = TypeVar("T")


class AdmissionLimit:
    """Counts prediction requests and off-loop instances in flight; refuses what would exceed a limit.

    ``limit`` bounds requests and ``instance_limit`` the instances of the batches in worker
    threads (0: no limit, for either). A batch is always admitted when no other batch is in
    flight, so one larger than ``instance_limit`` is slow, never unanswerable. ``client_limit``
    bounds the requests of one named client (0, or a request with no client: no limit).
    ``max_loop_lag`` bounds the event loop's lag in seconds while ``loop_lag`` runs (the app's
    lifespan runs it; 0: no limit).
    """

    def __init__(
        self,
        service: str,
        limit: int,
        *,
        instance_limit: int = 0,
        client_limit: int = 0,
        max_loop_lag: float = 0.0,
        on_refused: Callable[[str], object] = lambda limit: None,
    ) -> None:
        self.service = service
        self.limit = limit
        self.instance_limit = instance_limit
        self.client_limit = client_limit
        self.in_flight = 0
        self.instances_in_flight = 0
        #: Requests in flight per named client; a client leaves it when its last one is answered.
        self.clients_in_flight: Counter[str] = Counter()
        self.max_loop_lag = max_loop_lag
        #: The lag of the loop every transport answers on; 0 until the lifespan runs it.
        self.loop_lag = LoopLagMonitor()
        self.on_refused = on_refused

    def check(self, client: str = "") -> None:
        """Refuse as :meth:`enter` would, taking nothing: a full replica refuses before reading a body."""
        # The client's share first: a client over it is told so (429), even when the replica is full.
        if client and self.client_limit and self.clients_in_flight[client] >= self.client_limit:
            raise self.client_refusal(client)
        if self.limit and self.in_flight >= self.limit:
            self.on_refused(REQUESTS)
            raise self.refusal()
        if self.max_loop_lag:
            lag = self.loop_lag.lag()
            if lag > self.max_loop_lag:
                self.on_refused(LOOP_LAG)
                raise self.loop_lag_refusal(lag)

    def enter(self, client: str = "") -> None:
        """Take one of the places; a 503 ServekitError if none is free, a 429 if the client has its share."""
        self.check(client)
        self.in_flight += 1
        if client:
            self.clients_in_flight[client] += 1

    def leave(self, client: str = "") -> None:
        self.in_flight -= 1
        if client:
            self.clients_in_flight[client] -= 1
            if not self.clients_in_flight[client]:
                del self.clients_in_flight[client]

    @contextmanager
    def admitted(self, client: str = "") -> Iterator[Place]:
        """Hold one of the places while the body runs (and while a worker thread it started still
        runs, see :meth:`hold`); refused as :meth:`enter` says."""
        place = Place(self, client)
        place.take()
        token = current_place.set(place)
        try:
            yield place
        finally:
            current_place.reset(token)
            place.release()

    def hold(self, count: int) -> Callable[[], None]:
        """Hold ``count`` instances of the budget, and the current request's place, until the function
        returned is called (once, when the worker thread is done); a 503 ServekitError if over the budget.
        """
        busy = self.instances_in_flight
        if self.instance_limit and busy and busy + count > self.instance_limit:
            self.on_refused(INSTANCES)
            raise self.instance_refusal(count)
        self.instances_in_flight += count
        place = current_place.get()
        held = place is not None and place.hold()

        def release() -> None:
            self.instances_in_flight -= count
            if held:
                assert place is not None
                place.release()

        return release

    @contextmanager
    def instances_admitted(self, count: int) -> Iterator[None]:
        """Hold ``count`` instances of the budget while the body runs; a 503 ServekitError if over it."""
        release = self.hold(count)
        try:
            yield
        finally:
            release()

    def refusal(self) -> ServekitError:
        return overloaded(
            f"this replica is answering {self.limit} prediction requests, its limit "
            f"({self.variable('MAX_CONCURRENT_REQUESTS')})"
        )

    def instance_refusal(self, count: int) -> ServekitError:
        return overloaded(
            f"this replica is predicting {self.instances_in_flight} instances in batches; {count} more "
            f"would pass its limit of {self.instance_limit} ({self.variable('MAX_CONCURRENT_INSTANCES')})"
        )

    def loop_lag_refusal(self, lag: float) -> ServekitError:
        return overloaded(
            f"this replica's event loop is running ready work {lag * 1000:.0f} ms late, past its limit of "
            f"{self.max_loop_lag * 1000:g} ms ({self.variable('MAX_LOOP_LAG_SECONDS')}={self.max_loop_lag:g})"
        )

    def client_refusal(self, client: str) -> ServekitError:
        return ServekitError(
            429,
            "too_many_requests",
            f"client {client} has {self.clients_in_flight[client]} prediction requests in flight on this "
            f"replica, its limit ({self.variable('MAX_CONCURRENT_REQUESTS_PER_CLIENT')}), which leaves the "
            f"rest of the replica's places to other clients; retry in {RETRY_AFTER_SECONDS} s",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )

    def variable(self, setting: str) -> str:
        return f"{self.service.upper()}_{setting}"

    def status(self) -> dict[str, float]:
        # How many clients, not which: every client with a key may read GET /model.
        return {
            "limit": self.limit,
            "in_flight": self.in_flight,
            "instance_limit": self.instance_limit,
            "instances_in_flight": self.instances_in_flight,
            "client_limit": self.client_limit,
            "clients_in_flight": len(self.clients_in_flight),
            "max_loop_lag_seconds": self.max_loop_lag,
        }


class Place:
    """One prediction request's place in an :class:`AdmissionLimit`, taken once and freed when its
    last holder lets go: the request itself, and any worker thread computing for it.
    """

    __slots__ = ("client", "holders", "limit")

    def __init__(self, limit: AdmissionLimit, client: str = "") -> None:
        self.limit = limit
        self.client = client
        self.holders = 0

    @property
    def taken(self) -> bool:
        return self.holders > 0

    def take(self) -> None:
        """Take the place, refused as :meth:`AdmissionLimit.enter` says; once taken, nothing more."""
        if not self.holders:
            self.limit.enter(self.client)
            self.holders = 1

    def hold(self) -> bool:
        """One more holder of the place if it is taken (True), else nothing (False)."""
        if not self.holders:
            return False
        self.holders += 1
        return True

    def release(self) -> None:
        """One holder lets go; the last one frees the place. Nothing if it was never taken."""
        if not self.holders:
            return
        self.holders -= 1
        if not self.holders:
            self.limit.leave(self.client)


#: The place of the prediction request the current task answers, if it has one: a worker thread
#: started for the request holds it too (:meth:`AdmissionLimit.hold`).
current_place: ContextVar[Place | None] = ContextVar("servekit_admission_place", default=None)


async def in_worker_thread(work: Callable[[], T], release: Callable[[], None]) -> T:
    """``work``'s result, computed in a worker thread; ``release`` is called once the thread is done.

    Done, not awaited: a caller that stops waiting (cancelled) leaves the thread running, and what
    ``release`` frees stays held until it ends.
    """
    running = asyncio.ensure_future(asyncio.to_thread(work))

    def done(finished: asyncio.Future[T]) -> None:
        release()
        if not finished.cancelled():
            finished.exception()  # read: a caller gone leaves no "exception never retrieved" behind

    running.add_done_callback(done)
    return await asyncio.shield(running)


def overloaded(why: str) -> ServekitError:
    return ServekitError(
        503,
        "overloaded",
        f"{why}; retry in {RETRY_AFTER_SECONDS} s or on another replica",
        retry_after_seconds=RETRY_AFTER_SECONDS,
    )
