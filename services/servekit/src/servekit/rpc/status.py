"""How a call ends, in gRPC's terms: the status code of each servekit error (INVALID_ARGUMENT,
NOT_FOUND, UNAVAILABLE, ...) and its details, the REST error's message naming each bad tensor
element as ``inputs[Age].data[3]``; the trailing metadata every answer carries; and whether the
client gave up on the call (cancelled it, or its deadline passed) before the answer.
"""

from __future__ import annotations

from typing import Any

import grpc

from servekit.errors import ServekitError
from servekit.rest.body import CLIENT_CLOSED

#: The gRPC status of each HTTP status a ServekitError carries.
STATUS_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    403: grpc.StatusCode.PERMISSION_DENIED,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    415: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}
#: Trailing metadata a gRPC retry policy reads as the milliseconds to wait (gRFC A6).
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"
#: How many bytes the status details may take on the wire (grpc-message, percent-encoded: a
#: non-ASCII character takes up to 12): gRPC carries them in a trailer, and a client refuses
#: metadata past its limit (8 KiB by default) as RESOURCE_EXHAUSTED "Stream removed", so an
#: unbounded message quoting a client's long string would hide the error it reports.
MAX_DETAILS_BYTES = 4000


def grpc_code(status: int) -> grpc.StatusCode:
    """The gRPC status code of a call answered as REST answers ``status``."""
    return grpc.StatusCode.OK if status < 400 else STATUS_CODES.get(status, grpc.StatusCode.INTERNAL)


def add_trailing_metadata(context: Any, *pairs: tuple[str, str]) -> None:
    """``pairs`` added to the call's trailing metadata (setting it replaces what was set)."""
    context.set_trailing_metadata((*(context.trailing_metadata() or ()), *pairs))


def wire_bytes(text: str) -> int:
    """How many bytes ``text`` takes as grpc-message: UTF-8, percent-encoding all but printable
    ASCII other than ``%``."""
    return sum(1 if 0x20 <= byte <= 0x7E and byte != 0x25 else 3 for byte in text.encode("utf-8"))


def clipped(text: str, limit: int = MAX_DETAILS_BYTES) -> str:
    """``text`` cut to take at most ``limit`` bytes as grpc-message, saying how much was left out."""
    if wire_bytes(text) <= limit:
        return text
    size, end = 0, 0
    budget = limit - 48  # the note below
    for end, char in enumerate(text):  # noqa: B007 -- the cut is where the budget runs out
        size += wire_bytes(char)
        if size > budget:
            break
    return f"{text[:end]}... ({len(text) - end} more characters)"


def status_details(error: ServekitError) -> str:
    """The status details of an error: its message, with every field problem when it has more than
    the message names (as the REST body's ``fields``), within what a trailer can carry."""
    if len(error.fields) <= 3:
        return clipped(error.message)
    count = len(error.fields)
    listed: list[str] = []
    size = wire_bytes(f"{count} problems: ")
    for problem in error.fields:
        text = str(problem)
        room = MAX_DETAILS_BYTES - 32 - size  # room for "and N more"
        if wire_bytes(text) > room:
            if not listed:  # one at least is named, if cut short
                listed.append(clipped(text, room))
            listed.append(f"and {count - len(listed)} more")
            break
        listed.append(text)
        size += wire_bytes(text) + 2
    return clipped(f"{count} problems: " + "; ".join(listed))


def past_deadline(context: Any) -> bool:
    remaining = context.time_remaining()
    return remaining is not None and remaining <= 0


def gave_up(context: Any) -> bool:
    """Whether the call's client cancelled it or its deadline passed."""
    return bool(context.cancelled()) or past_deadline(context)


# The server's deadline is the client's timeout counted from when the call arrived, so it falls
# after the client's own by the call's transit time. When a client's deadline fires it cancels
# the call, and the server sees that cancel while its own clock still has a few milliseconds left.
DEADLINE_TRANSIT_SLACK_SECONDS = 0.25


def client_gone(context: Any) -> ServekitError:
    """What the access log says of a call its client gave up on: a cancel that arrives within
    the transit slack of the deadline is the client's deadline firing, not a cancel by hand."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= DEADLINE_TRANSIT_SLACK_SECONDS:
        return ServekitError(
            CLIENT_CLOSED, "deadline_exceeded", "the call's deadline passed before the answer"
        )
    return ServekitError(CLIENT_CLOSED, "cancelled", "the client cancelled the call before the answer")
