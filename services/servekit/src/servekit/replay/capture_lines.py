"""Log lines read as captures: a line's capture, whatever form the line is in, and the captures
among many lines."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import orjson

from servekit.metrics.names import CAPTURE_LOGGER
from servekit.replay.capture_objects import Captured, CaptureLineError, captured
from servekit.replay.log_stores import log_events, unwrapped
from servekit.replay.text_lines import read_text_line

#: What a log reader puts before each line: ``kubectl logs --prefix`` (``[pod/<pod>/<container>] ``),
#: ``--timestamps`` (an RFC 3339 time), and a node's CRI log file (the time, the stream and ``F``
#: for a whole line). The line itself follows.
_READER_PREFIX = re.compile(
    r"\A(?:\[[^\]\s]+\] )?"
    r"(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}) (?:(?:stdout|stderr) F )?)?"
)


def read_line(text: str, number: int) -> Captured | None:
    """The capture on this log line; None for any other line."""
    # A BOM: a log saved by an editor, or piped from one.
    text = _READER_PREFIX.sub("", text.strip().lstrip("\ufeff"), count=1)
    if not text.startswith("{"):
        return read_text_line(text, number)
    try:
        entry = unwrapped(orjson.loads(text))
    except orjson.JSONDecodeError as exc:
        # Skipped, a capture cut short would be an answer missing from the figures unseen.
        if CAPTURE_LOGGER in text:
            raise CaptureLineError(
                f"line {number}: a capture whose JSON does not parse (cut short?): {exc}"
            ) from None
        return None
    if isinstance(entry, str):  # a text line inside what a log store exports around it
        return read_text_line(entry, number)
    if not isinstance(entry, dict):
        return None
    return captured(entry.get("capture", entry), entry.get("request_id", ""), number)


def read_lines(lines: Iterable[str]) -> Iterator[Captured]:
    """The captures among ``lines``, read as they are iterated (a capture log can be gigabytes)."""
    for number, text in enumerate(lines, start=1):
        for event in log_events(text):
            capture = read_line(event, number)
            if capture is not None:
                yield capture
