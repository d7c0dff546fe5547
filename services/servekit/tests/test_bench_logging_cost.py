"""The access-line benchmark measures real JSON lines and leaves the access logger as it found it."""

from __future__ import annotations

import json
import logging
import re

import pytest
from toy import ToyModel

from servekit import logs
from servekit.bench import logging_cost
from servekit.capture import logger as capture_logger
from servekit.model import ModelArtifact, Record
from servekit.rest.access_log import logger as access_logger
from servekit.testing import request_rows
from servekit.training.splitting import Split


@pytest.fixture
def formatted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every line the benchmark's JSON formatter produces."""
    lines: list[str] = []
    format_line = logging_cost.JsonFormatter.format

    def keeping_format(self: logging_cost.JsonFormatter, record: logging.LogRecord) -> str:
        line = format_line(self, record)
        lines.append(line)
        return line

    monkeypatch.setattr(logging_cost.JsonFormatter, "format", keeping_format)
    return lines


def test_it_times_formatted_lines_and_restores_the_logger(formatted: list[str]) -> None:
    before = access_logger.handlers[:], access_logger.level, access_logger.propagate
    latency = logging_cost.access_line(0.05)
    assert latency.n > 20
    assert len(formatted) >= latency.n  # every timed call wrote a line (and the warm-up did)
    assert (
        '"httpRequest":{"requestMethod":"POST","requestUrl":"/predict?explain=true","status":200'
        in formatted[0]
    )
    assert 0 < latency.p50_ms <= latency.p99_ms
    assert (access_logger.handlers[:], access_logger.level, access_logger.propagate) == before
    # Timed and sized as a served request's line: named by a request id, which is unset afterwards.
    assert re.fullmatch("[0-9a-f]{32}", json.loads(formatted[0])["request_id"])
    assert logs.request_id.get() == ""


def test_the_size_is_one_line_in_bytes_with_its_newline(formatted: list[str]) -> None:
    size = logging_cost.access_line_bytes()
    (line,) = formatted
    assert size == len(line.encode()) + 1


@pytest.fixture
def toy_answering(toy_trained: tuple[ModelArtifact, Split]) -> tuple[ToyModel, list[Record]]:
    """A toy model and six rows to answer."""
    artifact, data = toy_trained
    return ToyModel(artifact), list(request_rows(data, 6))


def bytes_per_line(formatted: list[str]) -> int:
    """The mean size of the lines written, newline included."""
    return round(sum(len(f.encode()) + 1 for f in formatted) / len(formatted))


def test_a_captured_instance_is_timed_as_the_json_line_the_capture_writes(
    formatted: list[str], toy_answering: tuple[ToyModel, list[Record]]
) -> None:
    model, records = toy_answering
    before = capture_logger.handlers[:], capture_logger.level, capture_logger.propagate
    latency = logging_cost.capture_line(model, records, 0.05)
    assert latency.n > 20
    assert len(formatted) >= latency.n
    line = json.loads(formatted[0])
    assert line["logger"] == "servekit.capture"
    assert line["capture"]["input"] == records[0]
    assert "explanation" in line["capture"]["prediction"]
    assert re.fullmatch("[0-9a-f]{32}", line["request_id"])
    assert (capture_logger.handlers[:], capture_logger.level, capture_logger.propagate) == before
    formatted.clear()
    size = logging_cost.capture_line_bytes(model, records)
    assert len(formatted) == len(records)
    assert size == bytes_per_line(formatted)


def test_unexplained_and_batched_captures_are_sized_as_written(
    formatted: list[str], toy_answering: tuple[ToyModel, list[Record]]
) -> None:
    """``make cost`` prices each kind of request by its own lines: a plain answer's are shorter."""
    model, records = toy_answering
    plain = logging_cost.capture_line_bytes(model, records, explain=False)
    lines = [json.loads(f) for f in formatted]
    assert all("explanation" not in line["capture"]["prediction"] for line in lines)
    # Named by a request id as a served request's lines are (its bytes are billed too), then unset.
    assert all(re.fullmatch("[0-9a-f]{32}", line["request_id"]) for line in lines)
    assert logs.request_id.get() == ""
    assert plain == bytes_per_line(formatted)
    formatted.clear()
    batched = logging_cost.capture_line_bytes(model, records, rows=3)
    placed = [
        (line["capture"]["instance"], line["capture"]["instances"]) for line in map(json.loads, formatted)
    ]
    assert placed == [(0, 3), (1, 3), (2, 3)] * 2  # two requests of three
    assert batched == bytes_per_line(formatted)
    assert plain < batched  # the explanation is most of a line
