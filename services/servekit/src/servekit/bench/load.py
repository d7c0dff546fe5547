"""A small closed-loop load generator: HTTP/1.1 on keep-alive connections, or gRPC.

Written on raw asyncio streams (on uvloop) rather than an HTTP client library:
on a 2-core machine the load generator shares the CPU with the server, and a
full client costs more per request than the service being measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from servekit.bench.stats import Latency


class Requests(Protocol):
    """What a closed loop sends: request ``i % len`` is read as it goes out, once per send.

    A list of raw requests replays the same bytes; the soak's makes each one anew (its own id).
    """

    def __len__(self) -> int: ...

    def __getitem__(self, i: int, /) -> bytes: ...


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    seconds: float
    requests: int
    errors: int
    latency: Latency

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "requests": self.requests,
            "errors": self.errors,
            "requests_per_second": round(self.requests_per_second, 1),
            **self.latency.as_dict(),
        }


def raw_request(
    host: str,
    port: int,
    method: str,
    path: str,
    payload: bytes = b"",
    *,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """One HTTP/1.1 request as it goes on the wire (keep-alive, with its ``Content-Length``)."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def post_requests(
    host: str, port: int, path: str, bodies: Sequence[Any], *, headers: Mapping[str, str] | None = None
) -> list[bytes]:
    """Raw ``POST`` requests, one per JSON body, with ``headers`` too (an API key, say)."""
    json_body = {"Content-Type": "application/json", **(headers or {})}
    return [
        raw_request(host, port, "POST", path, json.dumps(body).encode(), headers=json_body) for body in bodies
    ]


def batches(records: Sequence[dict[str, Any]], rows: int) -> list[list[dict[str, Any]]]:
    """``records`` in consecutive batches of ``rows``, the incomplete last one left out."""
    found = [list(records[i : i + rows]) for i in range(0, len(records) - rows + 1, rows)]
    if not found:
        raise ValueError(f"{len(records)} valid records make no batch of {rows}")
    return found


class ClosedBeforeAnswerError(ConnectionError):
    """The connection ended before a byte of the answer: closed, idle, at the keep-alive timeout."""


async def _status_of(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Sends ``request`` and reads the whole response; its status code."""
    writer.write(request)
    status = await reader.readline()
    if not status:
        raise ClosedBeforeAnswerError("the server closed the connection before answering")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return int(status.split(b" ", 2)[1])


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, expected: int
) -> bool:
    return await _status_of(reader, writer, request) == expected


#: Sends request ``i`` (modulo the requests there are) and says whether it was answered OK.
Exchange = Callable[[int], Awaitable[bool]]


async def _closed_loop(exchanges: Sequence[Exchange], *, seconds: float, warmup: float) -> LoadResult:
    """Each exchange sends its next request as soon as the last one is answered."""
    samples: list[float] = []
    errors: list[int] = []
    warmup_until = time.perf_counter() + warmup
    deadline = warmup_until + seconds

    async def drive(exchange: Exchange, offset: int) -> None:
        i = offset
        while (began := time.perf_counter()) < deadline:
            ok = await exchange(i)
            if began >= warmup_until:
                samples.append(time.perf_counter() - began)
                if not ok:
                    errors.append(1)
            i += 1

    await asyncio.gather(*(drive(exchange, k * 7) for k, exchange in enumerate(exchanges)))
    measured = time.perf_counter() - warmup_until
    return LoadResult(len(exchanges), measured, len(samples), len(errors), Latency.of(samples))


async def _run(
    host: str,
    port: int,
    requests: Requests,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    statuses: Sequence[int] | None,
) -> LoadResult:
    expected = statuses or [200] * len(requests)
    if len(expected) != len(requests):
        raise ValueError(f"{len(expected)} expected statuses for {len(requests)} requests")
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]

    def exchange_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Exchange:
        return lambda i: _exchange(reader, writer, requests[i % len(requests)], expected[i % len(requests)])

    try:
        return await _closed_loop(
            [exchange_on(reader, writer) for reader, writer in connections], seconds=seconds, warmup=warmup
        )
    finally:
        for _, writer in connections:
            writer.close()


async def _run_grpc(
    host: str,
    port: int,
    method: str,
    messages: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
) -> LoadResult:
    import grpc

    async with grpc.aio.insecure_channel(f"{host}:{port}") as channel:
        # Serialized requests in, bytes out: the client parses nothing, as the HTTP one reads no JSON.
        call = channel.unary_unary(method)

        async def exchange(i: int) -> bool:
            try:
                await call(messages[i % len(messages)])
            except grpc.aio.AioRpcError:
                return False
            return True

        return await _closed_loop([exchange] * concurrency, seconds=seconds, warmup=warmup)


def run_grpc(
    host: str,
    port: int,
    method: str,
    messages: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> LoadResult:
    """``concurrency`` calls in flight on one HTTP/2 channel, as a gRPC client multiplexes them."""
    import uvloop

    return uvloop.run(
        _run_grpc(host, port, method, messages, concurrency=concurrency, seconds=seconds, warmup=warmup)
    )


def run(
    host: str,
    port: int,
    requests: Requests,
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
    statuses: Sequence[int] | None = None,
) -> LoadResult:
    """``concurrency`` connections, each sending its next request as soon as the last answered.

    A request counts as an error unless it gets its status in ``statuses`` (200 for all by default).
    """
    import uvloop

    return uvloop.run(
        _run(host, port, requests, concurrency=concurrency, seconds=seconds, warmup=warmup, statuses=statuses)
    )


@dataclass(frozen=True)
class OpenLoopResult:
    """Requests sent at a fixed rate whatever the answers, as many independent clients send them.

    Each latency runs from the moment the request was due, not from when it went out, so a
    server that falls behind is charged for the wait (no coordinated omission).
    """

    rate: float
    seconds: float
    #: A client gives up on an answer this late, and its request counts as ``late``.
    deadline: float
    sent: int
    answered: int
    shed: int
    late: int
    latency: Latency
    shed_latency: Latency
    #: What the failed requests got instead: ``HTTP 500``, or the exception of the connection.
    failures: Mapping[str, int]
    #: Every measured request's: answered in time or not, shed, failed; a late one at the deadline,
    #: when its client gave up (its real latency is longer: a p99 at the deadline is a lower bound).
    #: ``latency`` leaves late ones out, so its p99 is under the deadline by construction.
    all_latency: Latency

    @property
    def all_p99_is_lower_bound(self) -> bool:
        """Whether the p99 of all requests fell on a late one: at least this, not this."""
        return self.late > 0 and self.all_latency.p99_ms >= self.deadline * 1000

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def goodput(self) -> float:
        """Answers per second that reached their client in time."""
        return self.answered / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered_per_second": round(self.rate, 1),
            "seconds": round(self.seconds, 2),
            "deadline_seconds": self.deadline,
            "sent": self.sent,
            "answered": self.answered,
            "shed": self.shed,
            "late": self.late,
            "failed": self.failed,
            "failures": dict(self.failures),
            "goodput_per_second": round(self.goodput, 1),
            "answered_latency": self.latency.as_dict(),
            "shed_latency": self.shed_latency.as_dict(),
            "all_latency": self.all_latency.as_dict(),
            "all_p99_is_lower_bound": self.all_p99_is_lower_bound,
        }


async def _open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    seconds: float,
    deadline: float,
    warmup: float,
) -> OpenLoopResult:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    answered: list[float] = []
    shed: list[float] = []
    every: list[float] = []
    late = 0
    failures: Counter[str] = Counter()
    start = time.perf_counter()
    measured_from = start + warmup

    async def send(i: int, due: float) -> None:
        nonlocal late
        counted = due >= measured_from
        connection = idle.pop() if idle else None

        async def exchange() -> int:
            nonlocal connection
            request = requests[i % len(requests)]
            if connection is not None:
                try:
                    return await _status_of(*connection, request)
                except ClosedBeforeAnswerError:
                    # Idle in the pool past the server's keep-alive timeout; the request was never
                    # read, so it goes again on a new connection, as HTTP clients' pools do.
                    connection[1].close()
            connection = await asyncio.open_connection(host, port)
            return await _status_of(*connection, request)

        try:
            status = await asyncio.wait_for(exchange(), due + deadline - time.perf_counter())
        except TimeoutError:
            # The client gives up and hangs up; the server may still be working on it.
            if connection is not None:
                connection[1].close()
            late += counted
            if counted:
                every.append(deadline)
            return
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if connection is not None:
                connection[1].close()
            if counted:
                failures[type(exc).__name__] += 1
                every.append(time.perf_counter() - due)
            return
        assert connection is not None
        idle.append(connection)
        if counted:
            elapsed = time.perf_counter() - due
            every.append(elapsed)
            if status == 200:
                answered.append(elapsed)
            elif status == 503:
                shed.append(elapsed)
            else:
                failures[f"HTTP {status}"] += 1

    pending: set[asyncio.Task[None]] = set()
    sent = 0
    for i in range(round(rate * (warmup + seconds))):
        due = start + i / rate
        sent += due >= measured_from
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(send(i, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)
    for _, writer in idle:
        writer.close()
    return OpenLoopResult(
        rate,
        seconds,
        deadline,
        sent,
        len(answered),
        len(shed),
        late,
        Latency.of(answered),
        Latency.of(shed),
        failures,
        Latency.of(every),
    )


def run_open_loop(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    rate: float,
    seconds: float,
    deadline: float = 1.0,
    warmup: float = 1.0,
) -> OpenLoopResult:
    """``rate`` requests a second for ``seconds``, each on an idle connection or a new one."""
    import uvloop

    return uvloop.run(
        _open_loop(host, port, requests, rate=rate, seconds=seconds, deadline=deadline, warmup=warmup)
    )
