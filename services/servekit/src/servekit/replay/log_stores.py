"""The service's log lines inside what the log stores (Cloud Logging, CloudWatch Logs, Fluent
Bit, Kinesis Data Firehose) export around them."""

from __future__ import annotations

import json
from typing import Any

import orjson

from servekit.replay.text_lines import TEXT_LINE


def unwrapped(entry: Any) -> Any:
    """The service's own JSON line inside what a log store exports around it.

    A Cloud Logging export (to Cloud Storage, or ``gcloud logging read --format=json``) holds it as
    a LogEntry's ``jsonPayload``; CloudWatch Logs (``aws logs filter-log-events``) as an event's
    ``message`` string, and a Fluent Bit record as its ``log`` string. A service logging text
    (``LOG_FORMAT=text``) has its line there as a string, returned as it is.
    """
    if not isinstance(entry, dict):
        return entry
    if isinstance(entry.get("jsonPayload"), dict):
        return entry["jsonPayload"]
    for key in ("message", "log", "textPayload"):
        inner = entry.get(key)
        if not isinstance(inner, str):
            continue
        if inner.lstrip().startswith("{"):
            try:
                return unwrapped(orjson.loads(inner))
            except orjson.JSONDecodeError:
                return entry
        if TEXT_LINE.search(inner):
            return inner
    return entry


def log_events(text: str) -> list[str]:
    """The log lines a line holds: itself, or the events of CloudWatch Logs subscription records.

    A subscription filter delivers its events in batches, ``{"messageType": "DATA_MESSAGE", ...,
    "logEvents": [{"message": "<the pod's line>"}, ...]}``. Kinesis Data Firehose writes them to
    S3 one per line when its CloudWatch Logs decompression is on; without it, as gzip members one
    after another, which read as the records run together on one line.
    """
    if '"logEvents"' not in text:  # a plain line is not parsed twice
        return [text]
    try:
        records = [orjson.loads(text)]
    except orjson.JSONDecodeError:
        try:
            records = _run_together(text)
        except ValueError:
            return [text]
    events = [
        event
        for record in records
        if isinstance(record, dict) and isinstance(record.get("logEvents"), list)
        for event in record["logEvents"]
    ]
    if not events:
        return [text]
    return [e["message"] for e in events if isinstance(e, dict) and isinstance(e.get("message"), str)]


def _run_together(text: str) -> list[Any]:
    """JSON values written one after another with nothing between them."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    at, end = 0, len(text.rstrip())
    while at < end:
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        while at < end and text[at].isspace():
            at += 1
    return values
