"""Reading a request body within a size limit (413 beyond it, never an unbounded read).

A client may compress the body (``Content-Encoding: gzip`` or ``deflate``), as large batches
of text are worth compressing. The limit then holds for the compressed *and* the
decompressed body, and decompression stops one byte past it, so a small "zip bomb" costs
the service no more memory than a plain body at the limit.

A body must also arrive in time: a prediction request takes its admission place only once its
body is in (``servekit.rest.admission``), so an upload holds a connection, never a place, and the
upload itself has a deadline (``<SVC>_BODY_TIMEOUT_SECONDS``) after which it is answered 408 and
its connection closed. A client that goes away mid-upload is counted as nginx counts it, 499
("client closed request"): its own doing, not a failure of the service.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.types import Message, Receive

from servekit.errors import FieldProblem, ServekitError
from servekit.media_types import parse_media_type

#: Content codings a request body may use (RFC 9110 §8.4.1), and their zlib window bits.
CONTENT_CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ENCODING_FIELD = "headers.content-encoding"
MEDIA_TYPE_FIELD = "headers.content-type"
JSON = "application/json"
#: What curl sends with ``-d`` unless told otherwise: a JSON body under it is read as JSON.
FORM = "application/x-www-form-urlencoded"
#: Members (gzip) or streams (deflate) a body may hold one after the other. A client compresses
#: its body once; a few members come of concatenated files, while thousands of empty ones
#: (20 bytes each) would cost the event loop a decoder each.
MAX_MEMBERS = 64
#: Compressed bytes handed to a decoder at a time.
FEED_BYTES = 65_536
#: nginx's "client closed request": the client left before its answer (never sent, only counted).
CLIENT_CLOSED = 499
#: The error codes of a request whose body never arrived whole: how long it took is the client's
#: upload, not the service's answer, so it is no sample of prediction latency.
BODY_NOT_RECEIVED = frozenset({"body_timeout", "client_closed_request", "headers_too_large"})
#: Where in a request's ``scope["state"]`` the server puts the ServekitError it answered the
#: request with itself, mid-body (trailers over ``servekit.rest.head_limit``'s bound): to the app,
#: the client has gone, but it is to be recorded as refused.
REFUSAL = "servekit.refusal"


@contextmanager
def refused_as_declared(request: Request, body: bytes) -> Iterator[None]:
    """Validation's 422 as it is, unless the body is not JSON and says it is something else: then
    :func:`not_json_as_declared`'s 415."""
    try:
        yield
    except ServekitError as error:
        refused = not_json_as_declared(request, body) if error.status_code == 422 else None
        if refused is None:
            raise
        raise refused from None


def not_json_as_declared(request: Request, body: bytes) -> ServekitError | None:
    """A 415 naming ``Content-Type`` when a body that is not JSON says it is another media type
    (``text/csv``, ``text/plain``, ``multipart/form-data``...); None otherwise.

    Only a body that does not parse is refused for its header: a JSON body is read whatever the
    header says, as it always was, so ``curl -d`` (``application/x-www-form-urlencoded`` unless told
    otherwise) keeps working. A CSV line sent here was a 422 about a JSON syntax error at its first
    character, which sent its sender looking for a typo; the header says what went wrong.
    """
    media_type, _ = parse_media_type(request.headers.get("content-type", ""))
    if media_type in ("", FORM) or media_type == JSON or media_type.endswith("+json"):
        return None
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        problem = (
            f"the body is not JSON, and is said to be {media_type!r}: this endpoint reads a JSON body; "
            f"send it as {JSON} (a file of rows is scored with mlp score)"
        )
        return ServekitError(
            415, "unsupported_media_type", problem, (FieldProblem(MEDIA_TYPE_FIELD, problem),)
        )
    return None


def refuse_other_charsets(request: Request) -> None:
    """A 415 naming ``Content-Type`` for a body said to be in a charset other than UTF-8.

    JSON is UTF-8 (RFC 8259, section 8.1) and is read so whatever the header says: a UTF-16 body
    was a 422 about a JSON syntax error, which sent its sender looking for a typo.
    """
    content_type = request.headers.get("content-type", "")
    if "charset" not in content_type.lower():  # most requests: no parsing
        return
    charset = parse_media_type(content_type)[1].get("charset")
    if charset is None or charset.lower() == "utf-8":
        return
    problem = (
        f"charset {charset!r}: the body is read as UTF-8 JSON; send it in UTF-8 (charset=utf-8, or none)"
    )
    raise ServekitError(415, "unsupported_media_type", problem, (FieldProblem(MEDIA_TYPE_FIELD, problem),))


def too_large(limit: int, *, decompressed: bool = False) -> ServekitError:
    once = " once decompressed" if decompressed else ""
    return ServekitError(
        413,
        "payload_too_large",
        f"request body exceeds {limit} bytes{once}",
        (FieldProblem("body", f"larger than the limit of {limit} bytes{once}"),),
    )


def content_coding(request: Request) -> str | None:
    """The body's content coding, None when it is sent as is; 415 for one we cannot decode."""
    # A field given on two lines is one list (RFC 9110, 5.3): both are read, so two codings sent
    # that way are refused as two on one line are, not read as the first alone.
    coding = ", ".join(request.headers.getlist("content-encoding")).strip().lower()
    if coding in ("", "identity"):
        return None
    if "," in coding:
        problem = (
            f"content codings {coding!r}: a body is decoded once; send it as is, or gzip or deflate it once"
        )
        raise ServekitError(415, "unsupported_encoding", problem, (FieldProblem(ENCODING_FIELD, problem),))
    if coding not in CONTENT_CODINGS:
        problem = f"unsupported content coding {coding!r}; send the body as is, or gzip or deflate it"
        raise ServekitError(415, "unsupported_encoding", problem, (FieldProblem(ENCODING_FIELD, problem),))
    return coding


async def read_body(request: Request, limit: int) -> bytes:
    # Before reading: a body we cannot decode is not worth reading.
    refuse_other_charsets(request)
    coding = content_coding(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        refusal = request.scope.get("state", {}).get(REFUSAL)
        raise (refusal if isinstance(refusal, ServekitError) else client_closed(size, declared)) from None
    body = b"".join(chunks)
    return body if coding is None else decompress(body, coding, limit)


def client_closed(received: int, declared: str | None) -> ServekitError:
    """What a request whose client left mid-body is counted and logged as (the client hears nothing)."""
    of = f" of {declared}" if declared is not None and declared.isdigit() else ""
    return ServekitError(
        CLIENT_CLOSED,
        "client_closed_request",
        f"the client closed the connection after sending {received}{of} body bytes",
    )


def too_slow(seconds: float, variable: str) -> ServekitError:
    problem = (
        f"not received in full within {seconds:g} s of the request's headers ({variable}); "
        "send the whole body right after the headers"
    )
    return ServekitError(408, "body_timeout", f"request body {problem}", (FieldProblem("body", problem),))


def receive_within(receive: Receive, seconds: float, variable: str) -> Receive:
    """``receive``, raising a 408 ServekitError once the body has taken longer than ``seconds``.

    The deadline is for the whole body, counted from now (the headers are in): a deadline per
    chunk would let a client sending a byte now and then hold the connection for ever.
    """
    deadline = asyncio.get_running_loop().time() + seconds
    complete = False

    async def receive_body() -> Message:
        nonlocal complete
        if complete:  # later reads wait for a disconnect, not for a body
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            raise too_slow(seconds, variable) from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return receive_body


def decompress(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` decoded, at most ``limit`` bytes of it; 413 beyond, 400 if it is not ``coding``."""
    out = bytearray()
    view = memoryview(data)
    offset = 0
    members = 0
    try:
        while True:  # a gzip body may hold several members, one after the other
            members += 1
            if members > MAX_MEMBERS:
                raise too_many_members(coding)
            decoder = zlib.decompressobj(CONTENT_CODINGS[coding])
            while not decoder.eof:
                if offset == len(data):
                    raise zlib.error("the stream ends early")
                # Fed a slice at a time: zlib copies what follows a member's end into
                # unused_data, which for the whole rest of the body made it quadratic.
                chunk = view[offset : offset + FEED_BYTES]
                out += decoder.decompress(chunk, limit + 1 - len(out))
                if decoder.unconsumed_tail or len(out) > limit:
                    raise too_large(limit, decompressed=True)
                offset += len(chunk) - len(decoder.unused_data)
            if offset == len(data):
                return bytes(out)
    except zlib.error as exc:
        problem = f"not valid {coding} data ({exc}); Content-Encoding must name how the body was encoded"
        raise ServekitError(400, "invalid_encoding", problem, (FieldProblem("body", problem),)) from None


def too_many_members(coding: str) -> ServekitError:
    parts = "streams" if coding == "deflate" else "members"
    problem = f"more than {MAX_MEMBERS} {coding} {parts} one after the other; compress the body once"
    return ServekitError(400, "invalid_encoding", problem, (FieldProblem("body", problem),))
