"""The one error type of servekit, independent of the transport.

Every error a user can cause ends as ``{"error": ..., "message": ..., "fields":
[{"field": ..., "problem": ...}]}`` with a 4xx status, whatever raised it
(our code, pydantic, FastAPI's query validation or Starlette's router); the HTTP
handlers are in :mod:`servekit.rest.errors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_args

if TYPE_CHECKING:
    from pydantic import ValidationError


#: Every ``error`` a service's client can be answered with (``ErrorBody.error``, ``code`` on
#: ``/v2``): one list, so the document's enum and the codes raised cannot drift apart
#: (``test_errors`` holds every code the serving modules raise to it). The last three are never
#: sent, the client being gone, but are what the access log and the metrics record.
ErrorCode = Literal[
    "invalid_request",
    "invalid_routing",
    "variant_not_served",
    "batch_too_large",
    "payload_too_large",
    "unsupported_media_type",
    "unsupported_encoding",
    "invalid_encoding",
    "invalid_http",
    "url_too_long",
    "headers_too_large",
    "method_not_allowed",
    "not_found",
    "http_error",
    "model_not_found",
    "model_version_not_served",
    "model_not_ready",
    "canary_not_ready",
    "overloaded",
    "too_many_requests",
    "unauthenticated",
    "forbidden",
    "body_timeout",
    "shutting_down",
    "internal_error",
    "client_closed_request",
    "cancelled",
    "deadline_exceeded",
]
ERROR_CODES: tuple[str, ...] = get_args(ErrorCode)
ERROR_CODE_DESCRIPTION = (
    "The kind of error, for a program to act on: one of a fixed set that grows only with a new "
    "kind (invalid_request names each bad field in fields; model_not_ready, overloaded, "
    "canary_not_ready and shutting_down are worth a retry after Retry-After)"
)


#: A field's name can come from the client (an unknown query parameter, a JSON key); one of
#: thousands of characters would be echoed in the answer and written twice in its log line.
MAX_FIELD_LENGTH = 128


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one field of a request.

    A name over :data:`MAX_FIELD_LENGTH` keeps its start and says how long it was: enough for
    the client to find it in what it sent.
    """

    field: str
    problem: str

    def __post_init__(self) -> None:
        if len(self.field) > MAX_FIELD_LENGTH:
            shortened = f"{self.field[:MAX_FIELD_LENGTH]}... ({len(self.field):,} characters)"
            object.__setattr__(self, "field", shortened)

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


@dataclass
class ServekitError(Exception):
    """An error with the HTTP status it maps to; the only exception type handlers need."""

    status_code: int
    error: str
    message: str
    fields: Sequence[FieldProblem] = field(default_factory=tuple)
    #: When a client should try again (HTTP ``Retry-After``); None: the transport's default.
    retry_after_seconds: int | None = None

    def __str__(self) -> str:
        return f"{self.status_code} {self.error}: {self.message}"

    def body(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "message": self.message,
            "fields": [problem.as_dict() for problem in self.fields],
        }

    def open_inference_body(self) -> dict[str, Any]:
        """The body on Open Inference Protocol paths, whose clients show ``error`` as the message.

        Triton's and KServe's clients raise with the ``error`` string alone, so it carries the
        message there; the code and the fields follow under names the protocol leaves free.
        """
        return {
            "error": self.message,
            "code": self.error,
            "fields": [problem.as_dict() for problem in self.fields],
        }


def invalid_field(field: str, problem: str) -> ServekitError:
    """A 422 for one problem with one field."""
    return invalid_fields([FieldProblem(field, problem)])


#: The problems one refusal lists. A megabyte of unknown keys is 100,000 problems: listing them all
#: answered a 1 MB request with 6.7 MB, built on the event loop; the message still counts them all.
MAX_LISTED_PROBLEMS = 100


def invalid_fields(problems: Sequence[FieldProblem], total: int | None = None) -> ServekitError:
    """One 422 naming each problem, up to :data:`MAX_LISTED_PROBLEMS`, of ``total`` (all of
    ``problems`` unless given); its message counts them all and summarises the first three."""
    count = len(problems) if total is None else total
    listed = tuple(problems[:MAX_LISTED_PROBLEMS])
    noun = "problem" if count == 1 else "problems"
    summary = "; ".join(map(str, listed[:3]))
    more = f" (fields lists the first {len(listed)})" if count > len(listed) else ""
    return ServekitError(422, "invalid_request", f"{count:,} {noun}: {summary}{more}", listed)


#: What pydantic puts before a validator's own message: the kind of exception it caught.
_VALIDATOR_PREFIXES = ("Value error, ", "Assertion failed, ")


def problem_text(message: str) -> str:
    """A pydantic error message without the exception-kind prefix a validator's message gets.

    A client reads "not a time between 2000 and 2100 ...", not "Value error, not a time ...":
    which Python exception the validator raised is no part of what is wrong with the input.
    """
    for prefix in _VALIDATOR_PREFIXES:
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def location(loc: Sequence[int | str]) -> str:
    """Render a pydantic error location as ``instances[3].Age``."""
    rendered = ""
    for part in loc:
        if isinstance(part, int):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered or "body"


def from_validation_errors(errors: Sequence[Any], *, drop_prefix: str | None = None) -> ServekitError:
    """Turn pydantic/FastAPI error dicts into one 422 naming each bad field (as :func:`invalid_fields`)."""
    problems = []
    for err in errors[:MAX_LISTED_PROBLEMS]:
        loc = list(err.get("loc", ()))
        if drop_prefix is not None and loc and loc[0] == drop_prefix:
            loc = loc[1:]
        if err.get("type") == "json_invalid":
            problems.append(FieldProblem("body", str(err.get("msg", "malformed JSON"))))
            continue
        problems.append(FieldProblem(location(loc), problem_text(str(err.get("msg", "invalid value")))))
    return invalid_fields(problems, len(errors))


def rejection(exc: ValidationError) -> str:
    """Why one record was refused, on one line: each bad field and its problem, as the 422 names them."""
    error = from_validation_errors(exc.errors(include_url=False))
    return "; ".join(map(str, error.fields)) or error.message
