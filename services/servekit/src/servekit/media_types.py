"""Media types and the weighted lists that choose among them (RFC 9110, sections 8.3 and 12.5).

One reading for every transport. The REST service (``Content-Type``, ``Accept-Encoding``) and the
SageMaker handlers (content type, ``Accept``) each had code of their own, and they disagreed: an
unreadable weight was a refusal to one and consent to the other, a wildcard beside
``application/json;q=0`` overrode that refusal, and an empty parameter (``application/json;``,
which the grammar allows) was a 422 naming a parameter with no name.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Names of gzip a client may list (RFC 9110, section 8.4.1.3: ``x-gzip`` is an alias).
GZIP = ("gzip", "x-gzip")


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """``'Text/CSV; Header=present; charset="UTF-8"'`` is ``("text/csv", {"header": "present",
    "charset": "UTF-8"})``: the type and the parameters' names lowercased, as they are
    case-insensitive; values as sent, unquoted. Empty parameters (``text/csv;``) are no parameter."""
    media, *parameters = (part.strip() for part in value.split(";"))
    named = {}
    for parameter in parameters:
        name, _, text = parameter.partition("=")
        if name.strip():
            named[name.strip().lower()] = text.strip().strip('"')
    return media.lower(), named


def weight(parameters: dict[str, str]) -> float:
    """A member's weight ``q``, 1 when not given; 0 when unreadable: a weight the client wrote but
    the server cannot read is no consent."""
    if "q" not in parameters:
        return 1.0
    try:
        return float(parameters["q"])
    except ValueError:
        return 0.0


def _members(header: str) -> Iterator[tuple[str, float]]:
    """The header's comma-separated members, each as its lowercased token and its weight."""
    for member in header.split(","):
        token, has_parameters, _ = member.partition(";")
        token = token.strip().lower()
        if token:
            # On every request (Accept-Encoding): most members have no parameters to parse.
            yield token, weight(parse_media_type(member)[1]) if has_parameters else 1.0


def accepts_media_type(accept: str, media_type: str) -> bool:
    """Whether an ``Accept`` header takes ``media_type`` (``application/json``): the most specific
    range that covers it decides (section 12.5.1), so ``application/json;q=0, */*`` refuses it."""
    kind = media_type.split("/", 1)[0] + "/*"
    weights = dict(_members(accept))
    for covering in (media_type, kind, "*/*"):
        if covering in weights:
            return weights[covering] > 0
    return False


def accepts_coding(accept_encoding: str, codings: tuple[str, ...] = GZIP) -> bool:
    """Whether ``Accept-Encoding`` lets the response be in one of ``codings`` (section 12.5.3):
    a coding named decides by its weight (``gzip;q=0`` is a refusal, which a substring test reads as
    consent), and ``*`` covers those not named. A client that weighs the unencoded response
    above them (``gzip;q=0.001, identity``) is given it; at equal weights the coding wins."""
    weights = dict(_members(accept_encoding))
    covered = weights.get("*", 0.0)
    named = [weights[coding] for coding in codings if coding in weights]
    coded = max(named) if named else covered
    return coded > 0 and coded >= weights.get("identity", covered)
