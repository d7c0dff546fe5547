"""The bound on a request's head, over a real socket to a real uvicorn server as ``mlp serve`` runs it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from toy import TOY

from servekit import logs, tracing
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.head_limit import MAX_HEAD_BYTES, HeadLimitedHttpToolsProtocol
from servekit.settings import load_settings
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
#: The bound of the second server, whose refusals fit in one read of the socket (see ``held``).
SMALL_BOUND = 8192


class Refusals(logging.Handler):
    """Set when the server logs a refusal: what a held request waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("refused a request"):
            self.seen.set()


@pytest.fixture(scope="module")
def refusals() -> Iterator[threading.Event]:
    handler = Refusals()
    logging.getLogger("servekit.rest").addHandler(handler)
    yield handler.seen
    logging.getLogger("servekit.rest").removeHandler(handler)


def held_until(ready: Callable[[], bool], app: ASGIApp) -> ASGIApp:
    """The app, with ``GET /held`` answered only once ``ready`` returns (a refusal is logged).

    A request still being answered when the server refuses the next one on its connection, as a
    slow prediction would be, without a test depending on how slow.
    """

    async def held(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/held":
            await app(scope, receive, send)
            return
        refused = await asyncio.get_running_loop().run_in_executor(None, ready)
        body = json.dumps({"refused_first": refused}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return held


def serve(app: ASGIApp, protocol: type[HeadLimitedHttpToolsProtocol]) -> Iterator[tuple[str, int]]:
    server, thread, address = start(app, protocol)
    yield address
    server.should_exit = True
    thread.join(timeout=30)


def start(
    app: ASGIApp, protocol: type[HeadLimitedHttpToolsProtocol]
) -> tuple[uvicorn.Server, threading.Thread, tuple[str, int]]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, http=protocol)
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
    return server, thread, (host, port)


@pytest.fixture(scope="module")
def address(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[tuple[str, int]]:
    artifact, _ = toy_trained
    yield from serve(
        create_app(TOY, load_settings("toy"), source=lambda: artifact), HeadLimitedHttpToolsProtocol
    )


@pytest.fixture(scope="module")
def small(toy_trained: tuple[ModelArtifact, Split], refusals: threading.Event) -> Iterator[tuple[str, int]]:
    """A server with an 8 KiB bound (as ``mlp serve`` makes its protocol) and ``GET /held``."""
    artifact, _ = toy_trained
    app = held_until(
        lambda: refusals.wait(15), create_app(TOY, load_settings("toy"), source=lambda: artifact)
    )
    yield from serve(app, type("Small", (HeadLimitedHttpToolsProtocol,), {"max_head_bytes": SMALL_BOUND}))


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
    small = request("GET", "/healthz", last=False)
    answer = exchange(address, small, request("GET", "/healthz", headers_of(3 * MAX_HEAD_BYTES)))
    assert statuses(answer) == [200, 431]


def test_a_head_pipelined_in_the_same_read_as_requests_before_it_is_bounded_exactly(
    address: tuple[str, int],
) -> None:
    # In one write, so in one read: each head counted from where the request before it ended
    # (what of it came in the read with their end went uncounted: 70,000 bytes were served).
    predict = json.dumps(ROW).encode()
    before = [request("GET", "/healthz", last=False), request("POST", "/predict", body=predict, last=False)]
    pad = MAX_HEAD_BYTES - len(request("GET", "/healthz", {"X-Pad": ""}))
    within, over = (
        request("GET", "/healthz", {"X-Pad": "p" * pad}),
        request("GET", "/healthz", {"X-Pad": "p" * (pad + 1)}),
    )
    assert len(within) == MAX_HEAD_BYTES
    assert statuses(exchange(address, *before, within)) == [200, 200, 200]
    assert statuses(exchange(address, *before, over)) == [200, 200, 431]


def chunked(path: str, body: bytes, size: int, trailers: bytes = b"", *, last: bool = True) -> bytes:
    """A chunked upload of ``body`` in chunks of ``size`` bytes, ``trailers`` after the last chunk."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += ["Transfer-Encoding: chunked"] + (["Connection: close"] if last else [])
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)
    )
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + chunks + b"0\r\n" + trailers + b"\r\n"


def test_requests_pipelined_before_a_refused_head_are_answered_first(
    small: tuple[str, int], refusals: threading.Event
) -> None:
    # As a client pipelines them, in one write: a request still being answered when the next
    # head is refused (GET /held), two predictions queued behind it, then headers over the bound.
    # Each is answered, in order, before the refusal (not the refusal first, the rest lost).
    refusals.clear()
    predict = request("POST", "/predict", body=json.dumps(ROW).encode(), last=False)
    oversized = request("GET", "/healthz", headers_of(4 * SMALL_BOUND, each=2000))
    answer = exchange(small, request("GET", "/held", last=False), predict, predict, oversized)
    assert statuses(answer) == [200, 200, 200, 431]
    assert b'{"refused_first": true}' in answer  # held until the refusal, as a slow request is
    assert answer.count(b'"value":') == 2  # the two predictions
    assert json.loads(answer.rsplit(b"\r\n\r\n", 1)[1])["error"] == "headers_too_large"


def test_a_chunked_body_s_trailers_are_bounded_as_headers_are(address: tuple[str, int]) -> None:
    # A chunked prediction, then trailers after its last chunk, as many as the client likes: the
    # parser keeps them as it keeps headers, and the body limit never sees them.
    sent = 0
    answer = b""
    with socket.create_connection(address, timeout=30) as connection:
        connection.sendall(chunked("/predict", json.dumps(ROW).encode(), 7)[: -len(b"\r\n")])
        try:
            for i in range(32):
                connection.sendall(f"X-Trailer-{i}: ".encode() + b"t" * 1_000_000 + b"\r\n")
                sent += 1
            connection.sendall(b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    assert sent == 32  # read and dropped
    assert statuses(answer) == [431]  # not the prediction, answered after 32 MB of trailers held
    refusal = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert refusal["error"] == "headers_too_large"
    assert refusal["message"] == (
        f"the request's trailers (or a chunk's size line) are larger than {MAX_HEAD_BYTES} bytes; "
        "send fewer or shorter trailers, and no chunk extensions"
    )


def test_trailers_over_the_bound_behind_a_request_being_answered_wait_for_its_answer(
    small: tuple[str, int], refusals: threading.Event
) -> None:
    # The refused upload is queued behind GET /held: it is never started, and refused once the
    # request before it is answered.
    refusals.clear()
    trailers = b"X-Trailer: " + b"t" * (4 * SMALL_BOUND) + b"\r\n"
    answer = exchange(
        small,
        request("GET", "/held", last=False),
        chunked("/predict", json.dumps(ROW).encode(), 7, trailers),
    )
    assert statuses(answer) == [200, 431]
    assert b'{"refused_first": true}' in answer
    assert json.loads(answer.rsplit(b"\r\n\r\n", 1)[1])["error"] == "headers_too_large"


def test_chunked_uploads_are_served_however_small_their_chunks(address: tuple[str, int]) -> None:
    # A 90 kB body in 1-byte chunks: 450 kB of chunk-size lines, yet each under the bound.
    body = json.dumps({"instances": [ROW] * 8}).encode() + b" " * 90_000
    answer = exchange(
        address,
        chunked("/predict/batch", body, 1, b"X-Checksum: 1\r\nX-Rows: 8\r\n", last=False),
        chunked("/predict/batch", body, 8192),
    )
    assert statuses(answer) == [200, 200]


def series(address: tuple[str, int], status: int) -> float:
    """How many POST /predict the server has counted with ``status``."""
    text = exchange(address, request("GET", "/metrics")).split(b"\r\n\r\n", 1)[1].decode()
    found = re.search(
        rf'toy_requests_total\{{endpoint="/predict",method="POST",status="{status}"\}} (\S+)', text
    )
    return float(found.group(1)) if found else 0.0


def test_trailers_refused_mid_body_are_counted_431_not_as_a_client_gone(address: tuple[str, int]) -> None:
    # The prediction has started, waiting for the rest of its body, when its trailers are refused:
    # its app hears that the client has gone, but the client was answered 431 and it is counted so.
    refused, gone = series(address, 431), series(address, 499)
    trailers = b"X-Trailer: " + b"t" * (4 * MAX_HEAD_BYTES) + b"\r\n"
    answer = exchange(address, chunked("/predict", json.dumps(ROW).encode(), 7, trailers))
    assert statuses(answer) == [431]
    deadline = time.monotonic() + 15  # the app records it after the client has its answer
    while series(address, 431) == refused and time.monotonic() < deadline:
        time.sleep(0.02)
    assert series(address, 431) == refused + 1
    assert series(address, 499) == gone


def pipelined_slowly_read(
    address: tuple[str, int], *requests: bytes, then: Callable[[], None] = lambda: None
) -> bytes:
    """What the server answers to the requests, written while its answers are read by a client
    with a small receive buffer (they wait in the server's send buffer), ``then`` called once
    the writing has begun; ``<reset>`` at the end if the connection was reset."""
    with socket.socket() as connection:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        connection.settimeout(30)
        connection.connect(address)

        def write() -> None:
            with contextlib.suppress(OSError):  # reset, as the answer says
                connection.sendall(b"".join(requests))

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        then()
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except ConnectionResetError:
            received += b"<reset>"
        writer.join(timeout=30)
    return received


#: A head far over the bound, most of it left unread in the sockets while a refusal waits.
ENDLESS_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8_000_000 + b"\r\n\r\n"


def test_a_server_stopping_while_a_refusal_waits_writes_every_answer_and_the_refusal(
    toy_trained: tuple[ModelArtifact, Split], refusals: threading.Event
) -> None:
    # SIGTERM while GET /held is answered and the oversized head after it waits, unread: uvicorn
    # closed the connection after the last request received, over the unread head, and the reset
    # lost the answers the client had not read yet, and the refusal.
    refusals.clear()
    stopping = threading.Event()

    class Protocol(HeadLimitedHttpToolsProtocol):
        max_head_bytes = SMALL_BOUND

        def shutdown(self) -> None:
            super().shutdown()
            stopping.set()

    artifact, _ = toy_trained
    app = create_app(TOY, load_settings("toy"), source=lambda: artifact)
    server, thread, address = start(
        held_until(lambda: refusals.wait(15) and stopping.wait(15), app), Protocol
    )

    def stop() -> None:
        assert refusals.wait(15)
        server.should_exit = True  # as SIGTERM does

    predict = request("POST", "/predict", body=json.dumps(ROW).encode(), last=False)
    answer = pipelined_slowly_read(
        address, request("GET", "/held", last=False), *[predict] * 40, ENDLESS_HEAD, then=stop
    )
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert not answer.endswith(b"<reset>")
    assert statuses(answer) == [200] * 41 + [431]
    assert b'{"refused_first": true}' in answer
    assert json.loads(answer.rsplit(b"\r\n\r\n", 1)[1])["error"] == "headers_too_large"


def test_what_follows_a_request_asking_to_close_is_dropped_and_its_answers_all_read(
    small: tuple[str, int],
) -> None:
    # Predictions, the last asking to close the connection, then an oversized head: not parsed
    # (uvicorn's parser answered it 400 at once, ahead of the answers before it), not refused,
    # and the connection closed without a reset that would lose those answers.
    predict = json.dumps(ROW).encode()
    requests = [request("POST", "/predict", body=predict, last=False)] * 40
    answer = pipelined_slowly_read(small, *requests, request("POST", "/predict", body=predict), ENDLESS_HEAD)
    assert not answer.endswith(b"<reset>")
    assert statuses(answer) == [200] * 41


APP_ORIGIN = "https://risk.example.com"


@pytest.fixture(scope="module")
def cors_server(toy_trained: tuple[ModelArtifact, Split]) -> Iterator[tuple[str, int]]:
    """A server whose app allows a browser app's origin, as ``mlp serve`` runs it."""
    artifact, _ = toy_trained
    app = create_app(TOY, load_settings("toy", cors_allow_origins=APP_ORIGIN), source=lambda: artifact)
    yield from serve(app, HeadLimitedHttpToolsProtocol)


def head_of(answer: bytes) -> dict[str, str]:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {name.lower(): value for name, _, value in (line.partition(": ") for line in head)}


class RequestIds(logging.Handler):
    """The request id and trace each refusal's log line was written under."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.traces: list[tracing.TraceContext | None] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("refused a request"):
            self.ids.append(logs.request_id.get())
            self.traces.append(tracing.current.get())


class Lines(logging.Handler):
    """Every line logged to the logger it is added to."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{SPAN_ID}-01"


@pytest.mark.parametrize("where", ["head", "trailers"])
def test_a_refusal_s_log_line_carries_the_caller_s_trace(cors_server: tuple[str, int], where: str) -> None:
    # A trace view leads to every line of its requests, the refused ones too (Cloud Logging's
    # trace fields are written from tracing.current).
    lines = RequestIds()
    logging.getLogger("servekit.rest").addHandler(lines)
    try:
        if where == "head":
            sent = {"traceparent": TRACEPARENT, **headers_of(2 * MAX_HEAD_BYTES)}
            answer = exchange(cors_server, request("POST", "/predict", sent))
        else:
            trailers = b"X-Trailer: " + b"t" * (4 * MAX_HEAD_BYTES) + b"\r\n"
            upload = chunked("/predict", json.dumps(ROW).encode(), 7, trailers)
            traced = f"Host: 127.0.0.1\r\ntraceparent: {TRACEPARENT}\r\n".encode()
            answer = exchange(cors_server, upload.replace(b"Host: 127.0.0.1\r\n", traced, 1))
    finally:
        logging.getLogger("servekit.rest").removeHandler(lines)
    assert statuses(answer) == [431]
    assert head_of(answer)["x-request-id"] == TRACE_ID
    assert lines.ids == [TRACE_ID]
    assert lines.traces == [tracing.TraceContext(TRACE_ID, SPAN_ID, sampled=True)]
    assert tracing.current.get() is None  # set for the line alone


def test_a_refusal_carries_the_headers_every_answer_does(cors_server: tuple[str, int]) -> None:
    # Written outside the app's middleware, it adds them itself: a browser app reads the 431 (not
    # a CORS failure), and the id in X-Request-ID is the one its log line was written under.
    lines = RequestIds()
    logging.getLogger("servekit.rest").addHandler(lines)
    try:
        sent = {"Origin": APP_ORIGIN, "X-Forwarded-Proto": "https", **headers_of(2 * MAX_HEAD_BYTES)}
        answer = exchange(cors_server, request("POST", "/predict", sent))
    finally:
        logging.getLogger("servekit.rest").removeHandler(lines)
    assert statuses(answer) == [431]
    head = head_of(answer)
    assert head["cache-control"] == "no-store"
    assert head["x-content-type-options"] == "nosniff"
    assert head["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert head["strict-transport-security"] == "max-age=31536000"
    assert head["access-control-allow-origin"] == APP_ORIGIN
    assert "x-request-id" in head["access-control-expose-headers"].lower()
    assert head["vary"] == "Origin"
    assert re.fullmatch(r"[0-9a-f]{32}", head["x-request-id"])
    assert lines.ids == [head["x-request-id"]]
    assert logs.request_id.get() == ""  # set for the line alone


def test_a_refusal_keeps_the_client_s_request_id_and_names_no_other_origin(
    cors_server: tuple[str, int],
) -> None:
    sent = {"Origin": "https://evil.example", "X-Request-ID": "page-7", **headers_of(2 * MAX_HEAD_BYTES)}
    head = head_of(exchange(cors_server, request("GET", "/healthz", sent)))
    assert head["x-request-id"] == "page-7"
    assert "access-control-allow-origin" not in head
    assert "strict-transport-security" not in head  # over plain HTTP
    assert head["cache-control"] == "no-store"


def test_a_long_url_s_refusal_carries_the_security_headers_too(cors_server: tuple[str, int]) -> None:
    answer = exchange(cors_server, request("GET", "/predict?" + "q" * 100_000))
    assert statuses(answer) == [414]
    head = head_of(answer)
    assert head["x-content-type-options"] == "nosniff"
    assert re.fullmatch(r"[0-9a-f]{32}", head["x-request-id"])


def test_trailers_refused_mid_body_carry_the_id_the_app_gave_the_request(
    cors_server: tuple[str, int],
) -> None:
    # The prediction had begun: the refusal names the id its access log line has.
    trailers = b"X-Trailer: " + b"t" * (4 * MAX_HEAD_BYTES) + b"\r\n"
    upload = chunked("/predict", json.dumps(ROW).encode(), 7, trailers)
    upload = upload.replace(b"Host: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nX-Request-ID: upload-1\r\n", 1)
    head = head_of(exchange(cors_server, upload))
    assert head["x-request-id"] == "upload-1"


def test_blank_lines_over_the_bound_after_a_request_are_not_refused_as_that_request(
    cors_server: tuple[str, int],
) -> None:
    # uvicorn keeps a request's headers until the next request line begins; blank lines begin
    # none, so a refusal of them must not carry the request before's id (its log line would be
    # taken for that request's) or answer its origin.
    lines = RequestIds()
    logging.getLogger("servekit.rest").addHandler(lines)
    try:
        sent = {"Origin": APP_ORIGIN, "X-Request-ID": "served-1"}
        answer = exchange(cors_server, request("GET", "/healthz", sent, last=False), b"\r\n" * MAX_HEAD_BYTES)
    finally:
        logging.getLogger("servekit.rest").removeHandler(lines)
    assert statuses(answer) == [200, 431]
    served, refused = head_of(answer), head_of(answer[answer.index(b"HTTP/1.1 431") :])
    assert served["x-request-id"] == "served-1"
    assert served["access-control-allow-origin"] == APP_ORIGIN
    assert re.fullmatch(r"[0-9a-f]{32}", refused["x-request-id"])
    assert "access-control-allow-origin" not in refused
    assert refused["x-content-type-options"] == "nosniff"
    assert lines.ids == [refused["x-request-id"]]


def test_blank_lines_over_the_bound_after_a_long_url_are_not_refused_as_a_long_url(
    cors_server: tuple[str, int],
) -> None:
    near = request("GET", "/healthz?" + "q" * (MAX_HEAD_BYTES // 2 + 10), last=False)
    answer = exchange(cors_server, near, b"\r\n" * MAX_HEAD_BYTES)
    assert statuses(answer) == [200, 431]  # not 414: that URL was the served request's


def test_a_flood_of_blank_lines_goes_to_the_parser_in_a_few_pieces(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    # The parser skips blank lines before a request line, and the bound counts them; handed over
    # one 4-byte "head's end" at a time, a flood of them took 20 times the CPU of a header as long.
    pieces: list[int] = []

    class Protocol(HeadLimitedHttpToolsProtocol):
        def _feed_head(self, data: memoryview) -> memoryview:
            pieces.append(len(data))
            return super()._feed_head(data)

    artifact, _ = toy_trained
    server, thread, address = start(create_app(TOY, load_settings("toy"), source=lambda: artifact), Protocol)
    try:
        pieces.clear()  # start() asked /readyz
        answer = exchange(address, request("GET", "/healthz", last=False), b"\r\n" * MAX_HEAD_BYTES)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    assert statuses(answer) == [200, 431]
    assert len(pieces) < 100  # a few per read of the socket, not 16,000


#: Requests uvicorn's parser (httptools) refuses, each with the reason it gives.
NOT_HTTP = {
    "negative Content-Length": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "Invalid character in Content-Length",
    ),
    "signed Content-Length": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: +171\r\n\r\n",
        "Invalid character in Content-Length",
    ),
    "two Content-Lengths": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef",
        "Duplicate Content-Length",
    ),
    "23-digit Content-Length": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 23 + b"\r\n\r\n",
        "Content-Length overflow",
    ),
    "Content-Length and Transfer-Encoding": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nabcde\r\n0\r\n\r\n",
        "Transfer-Encoding can't be present with Content-Length",
    ),
    "NUL in the path": (b"GET /healthz\x00 HTTP/1.1\r\nHost: x\r\n\r\n", "Invalid char in url path"),
    "space in the path": (b"GET /health z HTTP/1.1\r\nHost: x\r\n\r\n", "Expected HTTP/, RTSP/ or ICE/"),
    "unknown method": (b"FOO /predict HTTP/1.1\r\nHost: x\r\n\r\n", "Invalid method encountered"),
    "HTTP/9.9": (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", "Invalid HTTP version"),
    "space in a header name": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX Pad: 1\r\n\r\n",
        "Invalid header token",
    ),
    "folded header": (
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: 1\r\n 2\r\n\r\n",
        "Unexpected whitespace after header value",
    ),
}


@pytest.mark.parametrize("case", NOT_HTTP)
def test_a_request_the_parser_refuses_is_a_400_in_servekit_s_error_body_and_headers(
    address: tuple[str, int], case: str
) -> None:
    # uvicorn answered these in plain text ("Invalid HTTP request received."), with none of the
    # headers every other answer carries.
    sent, reason = NOT_HTTP[case]
    lines, uvicorn_lines = RequestIds(), Lines()
    logging.getLogger("servekit.rest").addHandler(lines)
    logging.getLogger("uvicorn.error").addHandler(uvicorn_lines)
    try:
        answer = exchange(address, sent)
    finally:
        logging.getLogger("servekit.rest").removeHandler(lines)
        logging.getLogger("uvicorn.error").removeHandler(uvicorn_lines)
    assert statuses(answer) == [400]
    body = answer.split(b"\r\n\r\n", 1)[1]
    headers = head_of(answer)
    assert json.loads(body) == {
        "error": "invalid_http",
        "message": f"the request is not valid HTTP/1.1 ({reason}); the connection is closed",
        "fields": [],
    }
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    assert headers["connection"] == "close"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "strict-transport-security" not in headers  # over plain HTTP
    assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
    assert lines.ids == [headers["x-request-id"]]  # the id its log line was written under
    # uvicorn's own line, without a request id, a line before servekit's: one line a refusal.
    assert "Invalid HTTP request received." not in uvicorn_lines.messages


def test_the_parser_s_400_is_not_counted_and_waits_for_the_answers_before_it(
    address: tuple[str, int],
) -> None:
    # Never reaching the app, it is in no metric; pipelined after a prediction, it is written
    # after its answer (uvicorn wrote it at once, ahead of it, and closed the connection).
    counted = series(address, 400)
    predict = request("POST", "/predict", body=json.dumps(ROW).encode(), last=False)
    answer = exchange(address, predict, NOT_HTTP["negative Content-Length"][0])
    assert statuses(answer) == [200, 400]
    assert b'"value":' in answer
    assert json.loads(answer.rsplit(b"\r\n\r\n", 1)[1])["error"] == "invalid_http"
    assert series(address, 400) == counted


def test_the_parser_s_400_keeps_an_allowed_origin_and_the_client_s_request_id(
    cors_server: tuple[str, int],
) -> None:
    # The headers received before the one refused are the request's, as for a 431.
    sent = (
        f"POST /predict HTTP/1.1\r\nHost: x\r\nOrigin: {APP_ORIGIN}\r\nX-Forwarded-Proto: https\r\n"
        "X-Request-ID: page-8\r\nContent-Length: -1\r\n\r\n"
    ).encode()
    answer = exchange(cors_server, sent)
    assert statuses(answer) == [400]
    head = head_of(answer)
    assert head["x-request-id"] == "page-8"
    assert head["access-control-allow-origin"] == APP_ORIGIN
    assert head["strict-transport-security"] == "max-age=31536000"


def test_a_malformed_chunk_is_a_400_recorded_by_the_request_it_cut_short(address: tuple[str, int]) -> None:
    # Refused within its body, once the app has begun the request: recorded as its answer, 400,
    # not as a client that left (499).
    refused, gone = series(address, 400), series(address, 499)
    upload = chunked("/predict", json.dumps(ROW).encode(), 7)
    answer = exchange(address, upload.replace(b"\r\n0\r\n", b"\r\nzz\r\n", 1))
    assert statuses(answer) == [400]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"] == (
        "the request is not valid HTTP/1.1 (Invalid character in chunk size); the connection is closed"
    )
    deadline = time.monotonic() + 15  # the app records it after the client has its answer
    while series(address, 400) == refused and time.monotonic() < deadline:
        time.sleep(0.02)
    assert series(address, 400) == refused + 1
    assert series(address, 499) == gone
