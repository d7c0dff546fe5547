"""A bound on the bytes of a request's head (request line and headers), for ``mlp serve``'s uvicorn.

uvicorn's ``httptools`` protocol has none: the parser keeps every header, however long and however
many, until the blank line ends them, and a client without any key can send hundreds of
megabytes of them to a pod (the server answers ``/healthz`` with 200 at the end, having held them
all). ``h11`` has a bound, but parses in pure Python, slower on every request.

:class:`HeadLimitedHttpToolsProtocol` counts the bytes it receives from the start of a request (the
end of the one before it on the connection) to the end of its headers, and never hands the parser
more than the bound: over it, the request is
answered ``431 Request Header Fields Too Large`` (``414 URI Too Long`` when its URL alone takes
over half of it) in servekit's JSON error body, and the connection is closed. What the client
sends after that is read and dropped for a moment, so a connection holds about the bound at most.
The refusal is written here, outside the app and its middleware, so it carries what they would
have added itself: the security headers, an ``X-Request-ID`` (also on its log line), and the CORS
headers when the headers received before the bound name an allowed ``Origin`` (else a browser app
would see a CORS failure, not the 431).

A chunked body ends in trailers, header fields the parser keeps as it keeps headers, so what the
parser receives of a body that is not its data (a chunk's size line and extensions, the trailers
after the last chunk) is bounded the same way and refused 431 too, counted from the read in which
the last chunk began; the data itself is the body limit's (``servekit.rest.body``). The bound is
exact but for a head pipelined right after a chunked body: what of it comes in the read with that
body's end is not counted (where the body ends in it is not known), less than the bound. Requests
pipelined before a refused one are answered first, in order: the refusal waits for them, the
connection read no further meanwhile. A refused request whose answer had begun (its body was being
read) is recorded as its refusal, 431, not as a client that left.

A request the parser refuses (a ``Content-Length`` signed, past 64 bits, given twice or beside a
``Transfer-Encoding``, an unknown method, a space or NUL in the URL, a malformed header line) is
answered ``400 Bad Request`` the same way, in order and with the same headers, in servekit's JSON
error body naming the parser's reason (``invalid_http``), not with uvicorn's plain-text "Invalid
HTTP request received." at once. Refused before its headers end, it never reaches the app and is
in none of its metrics; refused within its body (a malformed chunk), it is recorded as its 400, as
a 431 of its trailers is.

A connection closed over bytes it has not read is reset by the kernel, and the answers its client
has not read yet are lost with them. So it is half-closed first, what the client still sends read
and dropped for a moment, whether after a refusal, after the answer to a request that asked to close
it (``Connection: close``: what follows is dropped, never parsed), or as the server stops
(``SIGTERM``: a refusal waiting its turn is still written, as the last answer).
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import re
import sys
import uuid
from typing import Any, ClassVar, cast

import httptools
from starlette.types import Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from servekit import logs, tracing
from servekit.errors import ServekitError
from servekit.rest.body import REFUSAL
from servekit.rest.cors import headers_outside_the_middleware
from servekit.rest.request_id import HEADER as REQUEST_ID_HEADER
from servekit.rest.request_id import incoming_id, request_id_of
from servekit.rest.security_headers import security_headers

#: Bytes a request's head may take, request line included. A JWT or a few cookies take a few
#: kilobytes; nginx (8 KiB a header line) and Node (16 KiB in all) refuse well below this.
MAX_HEAD_BYTES = 65_536
#: How long a refused connection is kept to read and drop what its client still sends, so that
#: the client, still writing, reads the refusal rather than a reset.
LINGER_SECONDS = 2.0
#: A reason httptools gives for refusing a request, named in the 400: one of llhttp's own short
#: fixed phrases ("Invalid character in Content-Length"), never bytes of the request.
_PARSER_REASON = re.compile(r"[ -~]{1,100}")

logger = logging.getLogger("servekit.rest")


def _not_uvicorn_s_parser_line(record: logging.LogRecord) -> bool:
    # uvicorn logs "Invalid HTTP request received." as it catches the parser's error, without a
    # request id, a line before servekit's own for the same request (which names the reason).
    return record.msg != "Invalid HTTP request received."


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with the head of each request bounded to ``max_head_bytes``.

    So are the bytes of a chunked body that are not its data, counted since its last chunk began.
    """

    max_head_bytes: ClassVar[int] = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if _not_uvicorn_s_parser_line not in self.logger.filters:
            self.logger.addFilter(_not_uvicorn_s_parser_line)
        #: Bytes received since the current request began (or the previous one ended); None while
        #: its body is read.
        self.head_bytes: int | None = 0
        #: While a body is read: bytes received that were not its data, since its last chunk began
        #: (at most one piece more: where in a piece a chunk began is not known).
        self.framing_bytes = 0
        #: The last bytes (3 at most) of the head handed to the parser, in which its end may begin.
        self.head_tail = b""
        #: While a body with a Content-Length is read: its bytes the parser has yet to get.
        self.body_left = 0
        #: Request heads received in full on this connection.
        self.heads = 0
        #: Whether the parser has begun a request not yet complete: only then are its headers and
        #: URL this request's (uvicorn resets them as the next request line begins, so between
        #: requests they are the last one's, which blank lines after it must not be refused with).
        self.in_request = False
        #: Chunks begun on this connection, and body bytes the parser handed over.
        self.chunks = 0
        self.body_bytes = 0
        self.refused = False
        #: The refusal, while requests received before the refused one are still being answered
        #: (empty when there is nothing to answer: the request before asked to close).
        self.held_refusal: bytes | None = None
        #: Half-closed, and read only to drop what the client still sends, until closed for good.
        self.lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.answers = _AnswerTransport(self)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            # Dropped. While the refusal waits its turn, the client is read no further (uvicorn
            # resumes reading as each earlier answer ends; this pauses it again).
            if self.held_refusal is not None and not self.transport.is_closing():
                self.transport.pause_reading()
            return
        view = memoryview(data)  # slices of it are not copies
        while view and not self.refused and not self.transport.is_closing():
            view = self._feed_head(view) if self.head_bytes is not None else self._feed_body(view)

    def _feed_head(self, data: memoryview) -> memoryview:
        assert self.head_bytes is not None
        # The parser gets no more than the bound allows, and no further than the head's end (the
        # blank line: httptools takes no other), so that what follows is counted as what it is,
        # a body or the next request's head; the rest waits to see what it is.
        room = max(self.max_head_bytes - self.head_bytes, 0)
        end = self._blank_lines(data[:room]) or self._head_end(data[:room])
        piece, rest = data[:end], data[end:]
        self.head_bytes += len(piece)
        heads = self.heads
        if piece:
            super().data_received(piece)  # type: ignore[arg-type]  # httptools takes any buffer
        ended = self.heads != heads or self.refused or self.transport.is_closing()
        if rest and not ended and self.head_bytes >= self.max_head_bytes:
            self._refuse(self._head_error())  # the bound is reached and the head has not ended
        return rest

    def _blank_lines(self, data: memoryview) -> int:
        """How many bytes of blank lines (CR and LF) ``data`` begins with, before a request begins.

        The parser skips them; they go to it at once, counted, rather than up to each "head's end"
        among them: 4 bytes at a time, a flood of them took 20 times the CPU of a header as long.
        """
        if self.in_request or not data or data[0] not in b"\r\n":
            return 0
        window = bytes(data)
        return len(window) - len(window.lstrip(b"\r\n"))

    def _head_end(self, data: memoryview) -> int:
        """Where in ``data`` the head ends (the end of its first blank line), else its length."""
        seen = self.head_tail + bytes(data)
        found = seen.find(b"\r\n\r\n")
        if found < 0:
            self.head_tail = seen[-3:]
            return len(data)
        self.head_tail = b""  # the head's end, or blank lines before a request line (skipped)
        return found + 4 - (len(seen) - len(data))

    def _feed_body(self, data: memoryview) -> memoryview:
        # The data of a body is the body limit's, not counted here; what is not data is, up to the
        # same bound as a head: no more than what is left of it goes to the parser at once. A body
        # of known length goes to the parser to its end and no further, the next head counted from
        # there; a chunked body's end is not known, and what of the next head is in the piece with
        # it goes uncounted (less than the bound).
        room = self.body_left or max(self.max_head_bytes - self.framing_bytes, 0)
        piece, rest = data[:room], data[room:]
        self.body_left = max(self.body_left - len(piece), 0)
        heads, chunks, body_bytes = self.heads, self.chunks, self.body_bytes
        if piece:
            super().data_received(piece)  # type: ignore[arg-type]
        if self.head_bytes is not None or self.heads != heads or self.refused or self.transport.is_closing():
            # The body ended within the piece (the next request's head, even its body, may have
            # begun there: counted from the next piece, as above), or the parser refused it.
            return rest
        framing = len(piece) - (self.body_bytes - body_bytes)
        # A chunk begun within the piece restarts the count, from the start of the piece.
        self.framing_bytes = framing if self.chunks > chunks else self.framing_bytes + framing
        if rest and self.framing_bytes >= self.max_head_bytes:
            self._refuse(self._trailers_error())
        return rest

    def on_message_begin(self) -> None:
        self.in_request = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        self.framing_bytes = 0
        self.head_tail = b""
        self.heads += 1
        headers = dict(self.headers)  # uvicorn's, names lowercased
        length = headers.get(b"content-length", b"")
        # httptools refuses a Content-Length with a Transfer-Encoding, or one that is not a number.
        chunked = b"transfer-encoding" in headers
        self.body_left = int(length) if length.isdigit() and not chunked else 0
        super().on_headers_complete()
        if self.cycle is not None:
            # The answer's close goes through _close (an upgrade's headers make no cycle).
            self.cycle.transport = self.answers

    def on_chunk_header(self) -> None:
        self.chunks += 1

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_request = False
        self.head_bytes = 0
        self.head_tail = b""
        self.body_left = 0
        if self.cycle is not None and not self.cycle.keep_alive and not self.refused:
            # The client asked to close after this request (or spoke HTTP/1.0, or the server is
            # stopping): what follows is dropped, not parsed (RFC 9112 §9.6), and not read until
            # the close, as a refusal waits (the parser would refuse it at once with a 400,
            # before the answers it follows).
            self.refused = True
            self.held_refusal = b""

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls it as it catches the parser's error (its own plain-text 400 would carry
        # none of servekit's headers, and be written ahead of the answers to requests before it).
        if self.refused:
            return  # what followed a request that closes the connection, parsed with it: dropped
        self._refuse(self._parser_error(sys.exception()))

    def shutdown(self) -> None:
        # The server stops. uvicorn closes the connection after the latest request it has received
        # is answered; a refusal waiting its turn is the last answer instead, and closes it itself.
        if self.held_refusal is None and not self.lingering:
            super().shutdown()

    def on_response_complete(self) -> None:
        if self.lingering:
            # Closed after this answer: nothing more is started or written.
            self.server_state.total_requests += 1
            return
        queued = bool(self.pipeline)
        super().on_response_complete()  # starts the next queued request, if any
        if self.held_refusal is not None and not queued and not self.transport.is_closing():
            # The last request received before the refused one is answered: the refusal's turn.
            refusal, self.held_refusal = self.held_refusal, None
            self._answer(refusal)

    def _head_error(self) -> ServekitError:
        limit = self.max_head_bytes
        # What the parser has of the URL so far (uvicorn sets it as a request begins): none if the
        # bytes over the bound began no request (blank lines after one).
        url: bytes = (getattr(self, "url", b"") or b"") if self.in_request else b""
        if len(url) > limit // 2:
            return ServekitError(
                414,
                "url_too_long",
                f"the request's URL is longer than {limit // 2} bytes (the request line and the "
                f"headers may take {limit} bytes at most); send the data in a POST body",
            )
        return ServekitError(
            431,
            "headers_too_large",
            f"the request's headers are larger than {limit} bytes (the request line included); "
            "send fewer or shorter headers",
        )

    def _trailers_error(self) -> ServekitError:
        return ServekitError(
            431,
            "headers_too_large",
            f"the request's trailers (or a chunk's size line) are larger than {self.max_head_bytes} "
            "bytes; send fewer or shorter trailers, and no chunk extensions",
        )

    @staticmethod
    def _parser_error(exc: BaseException | None) -> ServekitError:
        """The 400 of a request the parser refused with ``exc``, naming its reason if it is one of
        the parser's own (an exception of a callback here is no fault of the request's)."""
        reason = str(exc) if isinstance(exc, httptools.HttpParserError) else ""
        if isinstance(exc, httptools.HttpParserCallbackError) or not _PARSER_REASON.fullmatch(reason):
            reason = "it could not be parsed"
        return ServekitError(
            400,
            "invalid_http",
            f"the request is not valid HTTP/1.1 ({reason}); the connection is closed",
        )

    def _refuse(self, error: ServekitError) -> None:
        self.refused = True
        # uvicorn answers a connection's requests one at a time, in order: self.cycle is the
        # latest to have its headers in, the ones queued behind the running one are in the
        # pipeline. An answer written before theirs would be taken for theirs, and the connection
        # closed under them.
        cycle = self.cycle
        within_body = self.head_bytes is None and cycle is not None
        # uvicorn types the scope as its own TypedDict; it is the ASGI scope the app was given.
        scope = cast("Scope", cycle.scope) if within_body and cycle is not None else None
        request_id, trace = self._request_id(scope)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        # The line carries the id the client reads in X-Request-ID and the trace its tracing
        # header named (a trace view leads to it); set for it alone, as this runs in the
        # connection's context, which the requests after it on the connection inherit.
        token = logs.request_id.set(request_id)
        trace_token = tracing.current.set(trace)
        try:
            logger.warning("refused a request from %s: %s %s", client, error.status_code, error.message)
        finally:
            tracing.current.reset(trace_token)
            logs.request_id.reset(token)
        refusal = self._response(error, request_id)
        if within_body and cycle is not None:
            # Refused within its body: the request has a cycle of its own, which must not answer.
            queued = next((entry for entry in self.pipeline if entry[0] is cycle), None)
            if queued is not None:
                self.pipeline.remove(queued)  # not started; the running one is answered first
                self._hold(refusal)
            elif not cycle.response_started:
                # Started, and waiting for the rest of its body: told the client has gone (it
                # writes nothing more; its app records the refusal, servekit.rest.body), and
                # answered here.
                cycle.scope.setdefault("state", {})[REFUSAL] = error
                cycle.disconnected = True
                cycle.message_event.set()
                self._answer(refusal)
            elif cycle.response_complete:
                self._answer(b"")  # answered before its body ended; nothing to add to that
            else:
                self.transport.close()  # halfway through its answer: cut short
        elif cycle is not None and not cycle.response_complete:
            self._hold(refusal)  # earlier requests first
        else:
            self._answer(refusal)

    def _hold(self, refusal: bytes) -> None:
        # The parser gets nothing more; the client is not read until the refusal is written.
        self.held_refusal = refusal
        self.transport.pause_reading()

    def _received_headers(self) -> list[tuple[bytes, bytes]]:
        """The refused request's headers received in full before the bound (names lowercased):
        none if the bytes over the bound began no request (the last one's are still held)."""
        return list(self.headers or ()) if self.in_request else []

    def _request_id(self, scope: Scope | None) -> tuple[str, tracing.TraceContext | None]:
        """The refused request's id and trace: the id the app gave it if it had begun answering it,
        else the client's X-Request-ID or trace's id among the headers received, as
        RequestIdMiddleware would choose it, else a new one."""
        heads = scope.get("headers", ()) if scope is not None else self._received_headers()
        received = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in heads}
        trace = tracing.from_headers(received)
        given = request_id_of(scope) if scope is not None else ""
        return given or incoming_id(received, trace) or uuid.uuid4().hex, trace

    def _cors_origins(self) -> tuple[str, ...]:
        """The origins the served app allows: a servekit app's settings (``mlp serve`` hands uvicorn
        the app itself); none for any other app."""
        settings = getattr(getattr(self.config.app, "state", None), "settings", None)
        cors_origins = getattr(settings, "cors_origins", None)
        return tuple(cors_origins()) if callable(cors_origins) else ()

    def _extra_headers(self, request_id: str) -> list[tuple[bytes, bytes]]:
        """The headers servekit's middleware adds to every answer, for the refused request."""
        received = self._received_headers()
        # HSTS only when the request came over HTTPS, as far as its headers received say.
        extra = list(security_headers({"scheme": self.scheme, "headers": received}))
        extra.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
        origin = next((value.decode("latin-1") for name, value in received if name == b"origin"), None)
        cors = headers_outside_the_middleware(self._cors_origins(), origin)
        extra += [(name.lower().encode(), value.encode()) for name, value in cors.items()]
        return extra

    def _response(self, error: ServekitError, request_id: str) -> bytes:
        body = json.dumps(error.body()).encode()
        phrase = http.HTTPStatus(error.status_code).phrase
        head = [f"HTTP/1.1 {error.status_code} {phrase}\r\n".encode()]
        for name, value in [*self.server_state.default_headers, *self._extra_headers(request_id)]:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        return b"".join(head) + body

    def _answer(self, refusal: bytes) -> None:
        if refusal and not self.transport.is_closing():
            self.transport.write(refusal)
        self._close()

    def _close(self) -> None:
        """Closes the connection once the client has had time to read what it was sent."""
        if self.lingering or self.transport.is_closing():
            return
        self.lingering = True
        self.refused = True  # what the client still sends is dropped, never parsed
        self.held_refusal = None
        self.pipeline.clear()  # requests after the last answer are not answered
        self._unset_keepalive_if_required()  # the linger below closes the connection
        # Half-closed: the client reads the answers and the end of them while still writing; the
        # rest of what it writes is read and dropped, until the connection is closed for good.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.transport.resume_reading()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


class _AnswerTransport(asyncio.Transport):
    """The connection's transport as uvicorn's answer to a request uses it: its close is ``_close``."""

    def __init__(self, protocol: HeadLimitedHttpToolsProtocol) -> None:
        super().__init__()
        self.protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.protocol.transport.write(data)

    def close(self) -> None:
        self.protocol._close()

    def is_closing(self) -> bool:
        return self.protocol.lingering or self.protocol.transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.protocol.transport.get_extra_info(name, default)
