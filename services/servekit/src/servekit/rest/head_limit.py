"""A bound on the bytes of a request's head (request line and headers), for ``mlp serve``'s uvicorn.

uvicorn's ``httptools`` protocol has none: the parser keeps every header, however long and however
many, until the blank line ends them, and a client without any key can send hundreds of
megabytes of them to a pod (the server answers ``/healthz`` with 200 at the end, having held them
all). ``h11`` has a bound, but parses in pure Python, slower on every request.

:class:`HeadLimitedHttpToolsProtocol` counts the bytes it receives from the start of a request to
the end of its headers and never hands the parser more than the bound: over it, the request is
answered ``431 Request Header Fields Too Large`` (``414 URI Too Long`` when its URL alone takes
over half of it) in servekit's JSON error body, and the connection is closed. What the client
sends after that is read and dropped for a moment, so a connection holds about the bound at most.
"""

from __future__ import annotations

import http
import json
import logging
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from servekit.errors import ServekitError

#: Bytes a request's head may take, request line included. A JWT or a few cookies take a few
#: kilobytes; nginx (8 KiB a header line) and Node (16 KiB in all) refuse well below this.
MAX_HEAD_BYTES = 65_536
#: How long a refused connection is kept to read and drop what its client still sends, so that
#: the client, still writing, reads the refusal rather than a reset.
LINGER_SECONDS = 2.0

logger = logging.getLogger("servekit.rest")


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with the head of each request bounded to ``max_head_bytes``."""

    max_head_bytes: ClassVar[int] = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Bytes received since the current request began (or the previous one ended); None while
        #: its body is read, whose size the body limit bounds (``servekit.rest.body``).
        self.head_bytes: int | None = 0
        #: Request heads received in full on this connection.
        self.heads = 0
        self.refused = False

    def data_received(self, data: bytes) -> None:
        while data and not self.refused:
            if self.head_bytes is None:
                super().data_received(data)  # a body: its own limit applies
                return
            # The parser gets no more than the bound allows; the rest waits to see what it is.
            room = self.max_head_bytes - self.head_bytes
            piece, data = data[:room], data[room:]
            self.head_bytes += len(piece)
            heads = self.heads
            if piece:
                super().data_received(piece)
            if self.transport.is_closing():
                return  # uvicorn refused it (a malformed request)
            if data and self.heads == heads:
                self._refuse()  # the bound is reached and these headers have not ended
                return
            # Else the headers ended within the piece: the rest is their body or the next request.
            # (A pipelined request's bytes in the same read as the end of the one before go
            # uncounted: at most one read, which keeps what a head can hold bounded.)

    def on_headers_complete(self) -> None:
        self.head_bytes = None
        self.heads += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.head_bytes = 0

    def _refuse(self) -> None:
        self.refused = True
        limit = self.max_head_bytes
        # What the parser has of the URL so far (uvicorn sets it as a request begins).
        url: bytes = getattr(self, "url", b"") or b""
        if len(url) > limit // 2:
            error = ServekitError(
                414,
                "url_too_long",
                f"the request's URL is longer than {limit // 2} bytes (the request line and the "
                f"headers may take {limit} bytes at most); send the data in a POST body",
            )
        else:
            error = ServekitError(
                431,
                "headers_too_large",
                f"the request's headers are larger than {limit} bytes (the request line included); "
                "send fewer or shorter headers",
            )
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.warning("refused a request from %s: %s %s", client, error.status_code, error.message)
        body = json.dumps(error.body()).encode()
        phrase = http.HTTPStatus(error.status_code).phrase
        head = [f"HTTP/1.1 {error.status_code} {phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        # Half-closed: the client reads the answer and the end of it while still writing; the rest
        # of what it writes is dropped above, until the connection is closed for good.
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
