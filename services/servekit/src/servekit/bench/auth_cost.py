"""What an API key costs a request: the key check (``servekit.rest.auth``) around an app that does
nothing, against the same app called bare, with a keys file of a hundred clients (half of whose
keys expire, the timed one among them); and counting the request for its client
(``<svc>_client_requests_total``) beside the count every request gets."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servekit import logs
from servekit.auth.api_keys import ApiKeys
from servekit.auth.expiry import expires_in
from servekit.auth.key_lines import key_line, new_key
from servekit.bench.inprocess import time_samples
from servekit.bench.stats import Latency
from servekit.metrics import ServiceMetrics
from servekit.rest.auth import ApiKeyMiddleware

CLIENTS = 100
WARM_UP = 100


class Answered:
    """An ASGI app that answers nothing and counts the requests that reached it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1


async def empty_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Message) -> None:
    pass


def request_scope(key: str) -> Scope:
    """A prediction request as uvicorn hands it over: the key among a client's usual headers."""
    return {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "query_string": b"explain=true",
        "headers": [
            (b"host", b"bankchurn.ml-platform.svc:8080"),
            (b"content-type", b"application/json"),
            (b"content-length", b"170"),
            (b"user-agent", b"python-httpx/0.28.1"),
            (b"x-request-id", b"4bf92f3577b34da6a3ce929d0e0e4736"),
            (b"authorization", f"Bearer {key}".encode()),
        ],
    }


async def time_requests(app: ASGIApp, scope: Scope, seconds: float) -> list[float]:
    """Seconds per request ``scope`` through ``app`` for ``seconds``, after a warm-up."""
    for _ in range(WARM_UP):
        await app(scope, empty_body, discard)
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        await app(scope, empty_body, discard)
        samples.append(time.perf_counter() - start)
    return samples


def key_check(seconds: float, rounds: int = 10) -> dict[str, Latency]:
    """Per request: the bare app, and the app behind the key check of a valid key.

    Raises if a request did not reach the app: a refused request would time the refusal.
    """
    keys = {f"client-{i}": new_key() for i in range(CLIENTS)}
    with tempfile.TemporaryDirectory(prefix="servekit-bench-keys-") as tmp:
        path = Path(tmp) / "keys"
        expires = expires_in(365)
        path.write_text(
            "".join(
                key_line(client, key, expires if i % 2 == 0 else None) + "\n"
                for i, (client, key) in enumerate(keys.items())
            )
        )
        bare = Answered()
        checked = ApiKeyMiddleware(bare, ApiKeys(path, service="bench"))
        scope = request_scope(keys[f"client-{CLIENTS // 2}"])
        without, with_key = alternating(
            lambda slice_seconds: asyncio.run(time_requests(bare, scope, slice_seconds)),
            lambda slice_seconds: asyncio.run(time_requests(checked, scope, slice_seconds)),
            seconds=seconds,
            rounds=rounds,
        )
    if bare.calls != len(without) + len(with_key) + 2 * WARM_UP * rounds:
        raise RuntimeError("the key check refused a valid key: the figures would time refusals")
    return {"bare app": Latency.of(without), "with the key check": Latency.of(with_key)}


def alternating(
    *measures: Callable[[float], list[float]], seconds: float, rounds: int
) -> tuple[list[float], ...]:
    """Each measure's samples, in order, the measures taking turns in ``rounds`` slices of
    ``seconds`` each.

    A difference of a microsecond is smaller than the drift of a shared machine's speed over a
    few seconds; taking turns spreads the drift over all of them.
    """
    samples: tuple[list[float], ...] = tuple([] for _ in measures)
    for _ in range(rounds):
        for measure, taken in zip(measures, samples, strict=True):
            taken.extend(measure(seconds / rounds))
    return samples


def client_count(seconds: float, rounds: int = 10) -> dict[str, Latency]:
    """Per request: the metrics every answered request updates, without a client and with one."""
    metrics = ServiceMetrics("bench")
    who, key = f"client-{CLIENTS // 2}", "3fa9c2d1"

    def count(slice_seconds: float) -> list[float]:
        return time_samples(
            lambda _: metrics.count_request("/predict", "POST", 200, 0.0005), [{}], slice_seconds
        )

    def count_as_client(slice_seconds: float) -> list[float]:
        client_token, key_token = logs.client.set(who), logs.key_id.set(key)
        try:
            return count(slice_seconds)
        finally:
            logs.client.reset(client_token)
            logs.key_id.reset(key_token)

    anonymous, named = alternating(count, count_as_client, seconds=seconds, rounds=rounds)
    counted = metrics.registry.get_sample_value(
        metrics.names.client_requests_total,
        {"client": who, "key_id": key, "endpoint": "/predict", "status": "200"},
    )
    expected = len(named) + rounds  # time_samples warms up with a call per record: one here
    if counted != expected:
        raise RuntimeError(f"the client's requests were counted {counted} times, not {expected}")
    return {"count a request": Latency.of(anonymous), "count it for its client too": Latency.of(named)}
