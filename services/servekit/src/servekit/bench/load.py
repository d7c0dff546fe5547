"""A small closed-loop HTTP/1.1 load generator on keep-alive connections.

Written on raw asyncio streams (on uvloop) rather than an HTTP client library:
on a 2-core machine the load generator shares the CPU with the server, and a
full client costs more per request than the service being measured.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
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


async def _worker(
    host: str,
    port: int,
    requests: Sequence[bytes],
    *,
    offset: int,
    start: float,
    warmup_until: float,
    deadline: float,
    samples: list[float],
    errors: list[int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    try:
        while True:
            began = time.perf_counter()
            if began >= deadline:
                return
            ok = await _exchange(reader, writer, requests[i % len(requests)])
            if began >= warmup_until:
                samples.append(time.perf_counter() - began)
                if not ok:
                    errors.append(1)
            i += 1
    finally:
        writer.close()


async def _run(
    host: str, port: int, requests: Sequence[bytes], *, concurrency: int, seconds: float, warmup: float
) -> LoadResult:
    samples: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    warmup_until = start + warmup
    deadline = warmup_until + seconds
    await asyncio.gather(
        *(
            _worker(
                host,
                port,
                requests,
                offset=k * 7,
                start=start,
                warmup_until=warmup_until,
                deadline=deadline,
                samples=samples,
                errors=errors,
            )
            for k in range(concurrency)
        )
    )
    measured = time.perf_counter() - warmup_until
    return LoadResult(concurrency, measured, len(samples), len(errors), Latency.of(samples))


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
