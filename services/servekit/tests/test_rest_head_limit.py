"""The bound on a request's head, over a real socket to a real uvicorn server as ``mlp serve`` runs it."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from toy import TOY

from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.head_limit import MAX_HEAD_BYTES, HeadLimitedHttpToolsProtocol
from servekit.settings import load_settings
from servekit.training.trainer import Split

ROW = {"x": 3.0, "color": "red"}


@pytest.fixture(scope="module")
def address(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[tuple[str, int]]:
    artifact, _ = toy_trained
    app = create_app(TOY, load_settings("toy"), source=lambda: artifact)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, access_log=False, http=HeadLimitedHttpToolsProtocol
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    while b" 200 " not in exchange((host, port), request("GET", "/readyz"))[:20]:
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)
    yield host, port
    server.should_exit = True
    thread.join(timeout=30)


def request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b"", *, last: bool = True
) -> bytes:
    """A request; the ``last`` on its connection asks the server to close it once answered."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"] + (["Connection: close"] if last else [])
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def exchange(address: tuple[str, int], *requests: bytes) -> bytes:
    """Everything the server answers to the requests, written at once, until it closes."""
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(b"".join(requests))
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    return received


def statuses(answer: bytes) -> list[int]:
    return [int(status) for status in re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)]


def headers_of(total: int, each: int = 8000) -> dict[str, str]:
    return {f"X-Pad-{i}": "p" * each for i in range(total // each)}


def test_headers_within_the_bound_are_served(address: tuple[str, int]) -> None:
    # Two requests on one connection, each with headers near the bound: it is per request.
    near = headers_of(MAX_HEAD_BYTES - 2000)
    answer = exchange(address, request("GET", "/healthz", near, last=False), request("GET", "/healthz", near))
    assert statuses(answer) == [200, 200]


def test_a_large_body_after_small_headers_is_not_taken_for_headers(address: tuple[str, int]) -> None:
    # One write of headers and a 300 kB body: the headers end within the bound, the rest is body.
    body = json.dumps({"instances": [ROW] * 8}).encode() + b" " * 300_000
    assert statuses(exchange(address, request("POST", "/predict/batch", body=body))) == [200]


def test_headers_over_the_bound_are_refused_with_431_and_the_connection_closed(
    address: tuple[str, int],
) -> None:
    # As the probe sent them: 1 MB headers, many of them, while the server stops reading them.
    sent = 0
    answer = b""
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            for i in range(32):
                connection.sendall(f"X-Big-{i}: ".encode() + b"a" * 1_000_000 + b"\r\n")
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed by the server after the refusal; what it wrote before is still readable
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert sent == 32  # read and dropped, not left to fill the socket
    assert statuses(answer) == [431]
    head, body = answer.split(b"\r\n\r\n", 1)
    assert b"connection: close" in head
    refusal: dict[str, Any] = json.loads(body)
    assert refusal["error"] == "headers_too_large"
    assert refusal["message"] == (
        f"the request's headers are larger than {MAX_HEAD_BYTES} bytes (the request line included); "
        "send fewer or shorter headers"
    )


def test_a_single_endless_header_is_refused_too(address: tuple[str, int]) -> None:
    # One header the parser would keep whole until its end: never handed over past the bound.
    answer = exchange(address, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 500_000)
    assert statuses(answer) == [431]


def test_a_long_url_is_refused_with_414(address: tuple[str, int]) -> None:
    answer = exchange(address, request("GET", "/predict?" + "q" * 100_000))
    assert statuses(answer) == [414]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "url_too_long"


def test_a_refusal_after_served_requests_answers_those_first(address: tuple[str, int]) -> None:
    # Pipelined in one write: what of the second head arrives with the end of the first request
    # is not counted (up to one read more than the bound), the rest is.
    small = request("GET", "/healthz", last=False)
    answer = exchange(address, small, request("GET", "/healthz", headers_of(3 * MAX_HEAD_BYTES)))
    assert statuses(answer) == [200, 431]
