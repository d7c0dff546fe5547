"""Log lines: JSON on demand, the request id on every line written while a request is served."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
import pytest
import uvicorn
from toy import FAILING_X, TOY, FailingToy

from servekit import logs
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.request_id import HEADER
from servekit.settings import load_settings
from servekit.training.trainer import Split

ROW = {"x": 3.0, "color": "red"}


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    """configure_logging replaces the root handlers and captures warnings; undo both."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)


def configured(log_format: logs.LogFormat, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    logs.configure_logging(level, log_format, "toy", stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_root_logger")
def test_json_lines_have_the_fields_cloud_logging_and_cloudwatch_index() -> None:
    stream = configured("json")
    logging.getLogger("servekit.runtime").warning("model %s is %s", "v3", 'late\nby "2 s"')
    (line,) = json_lines(stream)  # the newline in the message does not split the line
    assert line["severity"] == "WARNING"
    assert line["logger"] == "servekit.runtime"
    assert line["message"] == 'model v3 is late\nby "2 s"'
    assert line["service"] == "toy"
    assert line["time"].endswith("Z")
    assert abs(datetime.fromisoformat(line["time"]).timestamp() - time.time()) < 60
    assert "request_id" not in line  # not written while serving a request


@pytest.mark.usefixtures("restore_root_logger")
def test_an_exception_stays_in_its_json_line() -> None:
    stream = configured("json")
    try:
        raise ValueError("bad artifact")
    except ValueError:
        logging.getLogger("servekit.runtime").exception("load failed")
    (line,) = json_lines(stream)
    assert line["severity"] == "ERROR"
    assert line["message"] == "load failed"
    assert line["exception"].startswith("Traceback (most recent call last)")
    assert line["exception"].endswith("ValueError: bad artifact")


@pytest.mark.usefixtures("restore_root_logger")
def test_a_library_warning_is_a_json_line_too() -> None:
    stream = configured("json")
    warnings.warn("Hint: inferred schema contains integer column(s)", UserWarning, stacklevel=1)
    (line,) = json_lines(stream)
    assert line["severity"] == "WARNING"
    assert line["logger"] == "py.warnings"
    assert "UserWarning: Hint: inferred schema" in line["message"]


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_level_is_honoured(log_format: logs.LogFormat) -> None:
    stream = configured(log_format, level="WARNING")
    logging.getLogger("servekit.runtime").info("model loaded")
    logging.getLogger("uvicorn.error").info("Uvicorn running")
    logging.getLogger("servekit.runtime").warning("slow warm-up")
    assert "slow warm-up" in stream.getvalue()
    assert "model loaded" not in stream.getvalue()
    assert "Uvicorn running" not in stream.getvalue()


@pytest.mark.usefixtures("restore_root_logger")
def test_text_lines_tag_the_request_id_when_there_is_one() -> None:
    stream = configured("text")
    logger = logging.getLogger("servekit.rest")
    logger.info("outside")
    token = logs.request_id.set("trace-7")
    try:
        logger.info("inside")
    finally:
        logs.request_id.reset(token)
    outside, inside = stream.getvalue().splitlines()
    assert outside.endswith(" INFO servekit.rest outside")
    assert inside.endswith(" INFO servekit.rest [trace-7] inside")


class ThreadedServer:
    """A real uvicorn server on 127.0.0.1 in a thread, logging the way ``mlp serve`` does."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.mark.usefixtures("restore_root_logger")
def test_every_line_a_failed_request_writes_carries_its_id(toy_trained: tuple[ModelArtifact, Split]) -> None:
    stream = configured("json")
    artifact, _ = toy_trained
    app = create_app(replace(TOY, model=FailingToy), load_settings("toy"), source=lambda: artifact)
    with ThreadedServer(app) as url:
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        assert httpx.post(f"{url}/predict", json=ROW).status_code == 200
        failed = httpx.post(f"{url}/predict", json={**ROW, "x": FAILING_X})
    assert failed.status_code == 500
    request_id = failed.headers[HEADER]

    lines = json_lines(stream)
    tagged = [line for line in lines if "request_id" in line]
    assert {line["request_id"] for line in tagged} == {request_id}
    assert [line["logger"] for line in tagged] == ["servekit.rest", "uvicorn.error"]
    assert tagged[0]["message"].endswith("failed: RuntimeError: lookup table is empty")
    # uvicorn's traceback, logged after the app returned, is tagged too and kept in one line.
    assert tagged[1]["message"].startswith("Exception in ASGI application")
    assert tagged[1]["exception"].endswith("RuntimeError: lookup table is empty")
    # Lines from outside a request (startup, model loading, shutdown) carry no id.
    assert any(line["message"].startswith("Uvicorn running") for line in lines if "request_id" not in line)
