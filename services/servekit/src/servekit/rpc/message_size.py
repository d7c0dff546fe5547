"""The body limit over gRPC: a request message over ``<SVC>_MAX_BODY_BYTES`` is refused by servekit
as REST refuses such a body (413, RESOURCE_EXHAUSTED): counted, logged, naming the setting.

gRPC core reads a message whole before servekit sees it (and before the API key is checked), so
it is told to take no more than ``OVERSIZE_READ_FACTOR`` times the limit, nor more than
``OVERSIZE_READ_SLACK_BYTES`` past it: past that, gRPC core itself refuses the message
(RESOURCE_EXHAUSTED "Received message larger than max"), uncounted, so a client without a key
cannot make a replica buffer much more than the limit per call (4 MiB at the default 1 MiB
limit; 272 MiB, not 1 GiB, at 256 MiB).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from servekit.errors import FieldProblem, ServekitError

#: How many times ``<SVC>_MAX_BODY_BYTES`` gRPC core reads of a message before servekit sees it:
#: beyond the limit servekit refuses the message itself (counted and logged, as REST's 413);
#: beyond this many times it, gRPC core does, so a replica never buffers more per call.
OVERSIZE_READ_FACTOR = 4
#: And how many bytes past the limit at most: the read comes before the key check, and four
#: times a large limit (256 MiB) would have a replica buffer 1 GiB per unauthenticated call.
OVERSIZE_READ_SLACK_BYTES = 16 * 2**20
#: The largest message length gRPC's options take (a C int).
GRPC_LARGEST_MESSAGE = 2**31 - 1


@dataclass(frozen=True)
class Oversized:
    """What a method reads in place of a request message over the body limit: its size alone."""

    size: int

    def ByteSize(self) -> int:  # noqa: N802 -- as a message's, for the access log
        return self.size


def message_reader(message: Any, limit: int) -> Callable[[bytes], Any]:
    """A method's request deserializer: the message, or :class:`Oversized` past ``limit`` bytes
    (not an exception: gRPC answers a deserializer's as INTERNAL, uncounted)."""

    def read(data: bytes) -> Any:
        if len(data) > limit:
            return Oversized(len(data))
        return message.FromString(data)

    return read


def read_limit(max_body_bytes: int) -> int:
    """The most of a message gRPC core reads (``grpc.max_receive_message_length``) for a body limit:
    past the limit, servekit's refusal (counted, logged); past this, gRPC core's (neither)."""
    slack = min(max_body_bytes * (OVERSIZE_READ_FACTOR - 1), OVERSIZE_READ_SLACK_BYTES)
    return min(max_body_bytes + slack, GRPC_LARGEST_MESSAGE)


def too_large(service: str, size: int, limit: int) -> ServekitError:
    """The 413 of a request message over the body limit, as REST's, naming the setting."""
    setting = f"{service.upper()}_MAX_BODY_BYTES"
    return ServekitError(
        413,
        "payload_too_large",
        f"request message is {size} bytes, over the limit of {limit} bytes ({setting}); "
        "send fewer instances per call",
        (FieldProblem("message", f"larger than the limit of {limit} bytes ({setting})"),),
    )
