"""The capture on a text log line (``LOG_FORMAT=text``), including lines an older servekit wrote."""

from __future__ import annotations

import re
from typing import Any

import orjson

from servekit.capture import MESSAGE
from servekit.replay.capture_objects import Captured, CaptureLineError, captured

#: A text log line: ``... servekit.capture [<request id>] prediction captured: {...}``.
TEXT_LINE = re.compile(
    # The tag is the request id, then, with API keys, ``client=… key=…`` (servekit.logs): an id
    # has no space (servekit.rest.request_id), so it ends at the first.
    rf"servekit\.capture(?: \[(?P<request>[^\]\s]*)(?: [^\]]*)?\])? {re.escape(MESSAGE)}: (?P<body>\{{.*)$"
)


def read_text_line(text: str, number: int) -> Captured | None:
    """The capture on a text log line; None for any other line."""
    found = TEXT_LINE.search(text)
    if found is None:
        return None
    try:
        body = orjson.loads(found["body"])
    except orjson.JSONDecodeError as exc:
        body = _read_old_escapes(found["body"])
        if body is None:
            raise CaptureLineError(f"line {number}: a capture whose JSON does not parse: {exc}") from None
    return captured(body, found["request"] or "", number)


#: A JSON escape, or what a text line an older servekit wrote had for a control character:
#: ``\x9d`` (servekit.logs wrote C0, DEL and C1 so, in lower case; JSON knows no ``\x``). Matched
#: escape by escape from the left, so a literal backslash's ``\\`` is passed over whole: ``\\x9d``,
#: a client's own backslash, x, 9, d, stays that text.
_ESCAPE = re.compile(r"\\(?:x(?P<old>[01][0-9a-f]|7f|[89][0-9a-f])|.)")


def _read_old_escapes(body: str) -> Any:
    """A text capture line's JSON written before control characters got JSON's escapes, each
    ``\\xNN`` read as the character it stood for; None if it does not parse so either.

    Tried only on a body that does not parse: valid JSON holds no ``\\x``, so a line written since
    is read as it is, at no cost.
    """
    if "\\x" not in body:
        return None
    try:
        return orjson.loads(_ESCAPE.sub(_json_escape, body))
    except orjson.JSONDecodeError:
        return None


def _json_escape(match: re.Match[str]) -> str:
    old = match["old"]
    return match.group() if old is None else f"\\u00{old}"
