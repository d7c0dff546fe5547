"""A small closed-loop load generator: HTTP/1.1 on keep-alive connections, or gRPC.

Written on raw asyncio streams (on uvloop) rather than an HTTP client library:
on a 2-core machine the load generator shares the CPU with the server, and a
full client costs more per request than the service being measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from servekit.bench.stats import Latency


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


def post_requests(host: str, port: int, path: str, bodies: Sequence[Any]) -> list[bytes]:
    """Raw ``POST`` requests, one per JSON body."""
    out = []
    for body in bodies:
        payload = json.dumps(body).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode()
        out.append(head + payload)
    return out


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bool:
    writer.write(request)
    status = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status.startswith(b"HTTP/1.1 200")


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
    host: str, port: int, requests: Sequence[bytes], *, concurrency: int, seconds: float, warmup: float
) -> LoadResult:
    connections = [await asyncio.open_connection(host, port) for _ in range(concurrency)]

    def exchange_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Exchange:
        return lambda i: _exchange(reader, writer, requests[i % len(requests)])

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
    requests: Sequence[bytes],
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
) -> LoadResult:
    """``concurrency`` connections, each sending its next request as soon as the last answered."""
    import uvloop

    return uvloop.run(_run(host, port, requests, concurrency=concurrency, seconds=seconds, warmup=warmup))
