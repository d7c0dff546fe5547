"""The open-loop load generator, against a server whose answers are known: what it counts as what.

Deadlines are seconds longer than any answer meant to be on time takes, and a late answer is one
the server never gives: on a busy machine a prompt answer took more than 0.5 s, and was counted late.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Iterator

import pytest

from servekit.bench import load

#: What the scripted server does with each request body.
ANSWERS = {
    b'"ok"': (200, 0.0),
    b'"busy"': (503, 0.0),
    b'"slow"': (200, 0.5),
    b'"held"': (200, math.inf),  # answered never: held until the client gives up and hangs up
    b'"bug"': (500, 0.0),
    b'"once"': (200, -1.0),
}


#: Each connection the scripted server accepted, as a number, in the test that is running.
CONNECTIONS: list[int] = []


async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    CONNECTIONS.append(len(CONNECTIONS))
    try:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            status, delay = ANSWERS[await reader.readexactly(length)]
            if delay == math.inf:
                await reader.read()  # until the client hangs up
                writer.close()
                return
            await asyncio.sleep(max(delay, 0.0))
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n\r\n{{}}".encode())
            await writer.drain()
            if delay < 0:  # as at a keep-alive timeout: the connection closed once idle
                writer.close()
                return
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()


@pytest.fixture
def scripted_port() -> Iterator[int]:
    CONNECTIONS.clear()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield server.sockets[0].getsockname()[1]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_answers_refusals_and_late_answers_are_told_apart(scripted_port: int) -> None:
    requests = load.post_requests("127.0.0.1", scripted_port, "/", ["ok", "busy", "held"])
    result = load.run_open_loop(
        "127.0.0.1", scripted_port, requests, rate=200, seconds=0.5, deadline=5.0, warmup=0.0
    )
    # Requests 0, 3, 6, ... are answered, 1, 4, ... refused, 2, 5, ... not answered by the deadline.
    assert (result.sent, result.answered, result.shed, result.late, result.failed) == (100, 34, 33, 33, 0)
    assert result.goodput == pytest.approx(34 / 0.5)
    assert result.latency.n == 34
    assert result.latency.p99_ms < 5000  # every answer counted came within the deadline
    assert result.as_dict()["goodput_per_second"] == 68.0
    # Over all 100 sent, the 33 late ones count at the deadline, where their clients gave up: a p99
    # that is a lower bound, and says so, where the answered-in-time one is capped by construction.
    assert result.all_latency.n == 100
    assert result.all_latency.p99_ms == pytest.approx(5000, rel=0.01)
    assert result.all_p99_is_lower_bound
    assert result.as_dict()["all_latency"]["n"] == 100


def test_latency_runs_from_when_a_request_was_due(scripted_port: int) -> None:
    """One connection's worth of slow answers: later requests open new connections, not wait in line."""
    requests = load.post_requests("127.0.0.1", scripted_port, "/", ["slow"])
    result = load.run_open_loop(
        "127.0.0.1", scripted_port, requests, rate=50, seconds=0.2, deadline=10.0, warmup=0.0
    )
    assert (result.sent, result.answered, result.late) == (10, 10, 0)
    assert result.latency.p50_ms >= 500
    # All 10 due within 0.2 s, each answered 0.5 s later: in flight together, none waited in line
    # behind another on its connection (one connection in turn: a p50 of 2.5 s).
    assert len(CONNECTIONS) == 10


def test_failures_are_named_by_what_came_back(scripted_port: int) -> None:
    requests = load.post_requests("127.0.0.1", scripted_port, "/", ["ok", "bug"])
    result = load.run_open_loop(
        "127.0.0.1", scripted_port, requests, rate=100, seconds=0.2, deadline=10.0, warmup=0.0
    )
    assert (result.answered, result.failed) == (10, 10)
    assert result.failures == {"HTTP 500": 10}


def test_a_pooled_connection_the_server_closed_is_not_a_failure(scripted_port: int) -> None:
    """Each answer closes its connection: the next request finds it closed and goes on a new one."""
    requests = load.post_requests("127.0.0.1", scripted_port, "/", ["once"])
    result = load.run_open_loop(
        "127.0.0.1", scripted_port, requests, rate=20, seconds=0.3, deadline=10.0, warmup=0.0
    )
    assert (result.sent, result.answered, result.failed) == (6, 6, 0)


def test_requests_sent_during_the_warm_up_are_neither_sent_nor_answered(scripted_port: int) -> None:
    # 32 requests due 0 to 310 ms apart; the 19 due from 125 ms on are measured.
    requests = load.post_requests("127.0.0.1", scripted_port, "/", ["ok"])
    result = load.run_open_loop(
        "127.0.0.1", scripted_port, requests, rate=100, seconds=0.2, deadline=10.0, warmup=0.125
    )
    assert (result.sent, result.answered, result.failed) == (19, 19, 0)


def test_closed_loop_counts_answers_against_their_expected_status(scripted_port: int) -> None:
    requests = load.post_requests("127.0.0.1", scripted_port, "/", ["ok", "busy"])
    expected = load.run(
        "127.0.0.1", scripted_port, requests, concurrency=1, seconds=0.3, warmup=0.0, statuses=[200, 503]
    )
    assert expected.requests > 10
    assert expected.errors == 0
    # By default only a 200 is an answer: every refusal counts.
    default = load.run("127.0.0.1", scripted_port, requests, concurrency=1, seconds=0.3, warmup=0.0)
    assert default.errors == pytest.approx(default.requests / 2, abs=1)
    with pytest.raises(ValueError, match="1 expected statuses for 2 requests"):
        load.run("127.0.0.1", scripted_port, requests, concurrency=1, seconds=0.1, statuses=[200])


def test_raw_requests_carry_their_headers_and_length() -> None:
    request = load.raw_request("127.0.0.1", 80, "GET", "/metrics", headers={"X-Request-ID": "a-1"})
    assert (
        request
        == b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:80\r\nX-Request-ID: a-1\r\nContent-Length: 0\r\n\r\n"
    )
    posted = load.post_requests("h", 1, "/p", [{"a": 1}])[0]
    assert posted.endswith(b'Content-Type: application/json\r\nContent-Length: 8\r\n\r\n{"a": 1}')
