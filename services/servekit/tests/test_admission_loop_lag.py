"""Shedding on the event loop's lag: single records queue on the loop, where no count sees them.

The monitor's own tests run on a loop whose clock moves only when the loop would wait or a test
moves it (a blocking call), so they do not depend on how busy the machine is. The behavioural
test runs a real uvicorn with a model that holds the loop, and its margins are wide: the loop is
held 50 ms per request by up to 16 clients, so its turns last up to 800 ms against a 250 ms limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import uvicorn
from clocked_loop import Clock, on_clocked_loop, turns_until
from toy import TOY, ToyModel

from servekit.admission import LOOP_LAG, REQUESTS, AdmissionLimit
from servekit.errors import ServekitError
from servekit.model import INLINE_BATCH_LIMIT, ModelArtifact, Record
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.training.splitting import Split

ROW = {"x": 2.0, "color": "red"}


@contextlib.asynccontextmanager
async def watching(limit: AdmissionLimit) -> AsyncIterator[None]:
    """The limit's loop watched, as the app's lifespan watches it."""
    watcher = asyncio.create_task(limit.loop_lag.run())
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher


def test_a_prediction_arriving_while_the_loop_is_late_is_refused_and_counted() -> None:
    refused: list[str] = []
    limit = AdmissionLimit("toy", 16, max_loop_lag=0.25, on_refused=refused.append)

    async def main(clock: Clock) -> None:
        limit.check()  # not watching yet
        async with watching(limit):
            await asyncio.sleep(0.1)
            with limit.admitted():  # on time: admitted
                assert limit.in_flight == 1
            clock.now += 0.2  # late, but within the limit
            limit.check()
            clock.now += 0.2  # now past it: refused at once, taking no place
            with pytest.raises(ServekitError) as raised:
                limit.enter()
            assert limit.in_flight == 0
            error = raised.value
            assert (error.status_code, error.error, error.retry_after_seconds) == (503, "overloaded", 1)
            assert "event loop is running ready work" in error.message
            assert "limit of 250 ms" in error.message
            assert "TOY_MAX_LOOP_LAG_SECONDS=0.25" in error.message
            await turns_until(lambda: limit.loop_lag.lag() < 1e-6)  # caught up
            limit.enter()
            limit.leave()
        assert refused == [LOOP_LAG]

    on_clocked_loop(main)
    assert limit.status()["max_loop_lag_seconds"] == 0.25


def test_zero_never_refuses_for_the_loop_s_lag() -> None:
    refused: list[str] = []
    limit = AdmissionLimit("toy", 1, on_refused=refused.append)

    async def main(clock: Clock) -> None:
        async with watching(limit):  # the lifespan watches the loop whatever the limit
            await asyncio.sleep(0.1)
            clock.now += 10.0
            assert limit.loop_lag.lag() > 9
            limit.check()
            limit.enter()
            with pytest.raises(ServekitError):
                limit.enter()  # the other limits still hold

    on_clocked_loop(main)
    assert refused == [REQUESTS]


class LoopHoldingToy(ToyModel):
    """Quick work that is not quick: 50 ms on the event loop per single record."""

    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if len(records) <= INLINE_BATCH_LIMIT:
            time.sleep(0.05)
        return super().predict(records)


def free_port() -> int:
    for port in range(9700, 9800):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 9700-9799")


@contextlib.contextmanager
def served(artifact: ModelArtifact, **settings: Any) -> Iterator[str]:
    """A real uvicorn (one worker, its own event loop) serving the loop-holding toy; its URL."""
    spec = dataclasses.replace(TOY, model=LoopHoldingToy)
    app = create_app(spec, load_settings("toy", **settings), source=lambda: artifact)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the server never became ready"
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def shed(url: str, limit: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith(f'toy_prediction_requests_shed_total{{limit="{limit}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no shed series for {limit}")


def overload(url: str, clients: int = 16, each: int = 4) -> tuple[list[httpx.Response], list[int]]:
    """``clients`` threads sending ``each`` single records one after another, all at once, while a
    probe asks /healthz every 100 ms: the prediction answers and the probe's statuses."""
    start = threading.Barrier(clients + 1)
    done = threading.Event()
    probes: list[int] = []

    def probe() -> None:
        with httpx.Client(timeout=30) as client:
            start.wait(30)
            while not done.is_set():
                probes.append(client.get(f"{url}/healthz").status_code)
                time.sleep(0.1)

    def send(_: int) -> list[httpx.Response]:
        with httpx.Client(timeout=60) as client:
            start.wait(30)
            return [client.post(f"{url}/predict", json=ROW) for _ in range(each)]

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        with ThreadPoolExecutor(clients) as pool:
            answers = [r for rs in pool.map(send, range(clients)) for r in rs]
    finally:
        done.set()
        prober.join(60)
    return answers, probes


def test_single_records_queued_on_a_late_loop_are_shed_and_probes_answered(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    with served(artifact, max_loop_lag_seconds=0.25) as url:
        answers, probes = overload(url)
        by_lag = shed(url, "loop_lag")
        by_requests = shed(url, "requests")

    statuses = [r.status_code for r in answers]
    assert set(statuses) <= {200, 503}, statuses
    refused = [r for r in answers if r.status_code == 503]
    assert refused, "a loop held 50 ms a request by 16 clients shed nothing"
    assert statuses.count(200) > 0
    for response in refused:
        assert response.headers["retry-after"] == "1"
        assert response.json()["error"] == "overloaded"
        assert "TOY_MAX_LOOP_LAG_SECONDS" in response.json()["message"]
    assert by_lag == len(refused)
    assert by_requests == 0  # single records on the loop never fill the places
    assert probes
    assert set(probes) == {200}


def test_with_the_loop_lag_limit_off_nothing_is_shed(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    with served(artifact, max_loop_lag_seconds=0) as url:
        answers, probes = overload(url, clients=8, each=3)
        by_lag = shed(url, "loop_lag")
    assert [r.status_code for r in answers] == [200] * 24
    assert by_lag == 0
    assert probes
    assert set(probes) == {200}
