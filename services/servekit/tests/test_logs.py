"""Log lines: JSON on demand, the request id on every line written while a request is served."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
import threading
import time
import warnings
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
import uvicorn
from toy import FAILING_X, TOY, FailingToy

from servekit import http_client, logs, tracing
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.request_id import HEADER
from servekit.settings import load_settings
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}


def configured(
    log_format: logs.LogFormat, level: str = "INFO", google_cloud_project: str = ""
) -> io.StringIO:
    stream = io.StringIO()
    logs.configure_logging(level, log_format, "toy", stream, google_cloud_project=google_cloud_project)
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
def test_structured_fields_join_the_json_line_without_replacing_its_own() -> None:
    stream = configured("json")
    fields = {"httpRequest": {"status": 422}, "message": "forged", "severity": "DEBUG"}
    logging.getLogger("servekit.access").warning("POST /predict 422", extra={"json_fields": fields})
    (line,) = json_lines(stream)
    assert line["httpRequest"] == {"status": 422}
    assert (line["message"], line["severity"]) == ("POST /predict 422", "WARNING")


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


W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLOUD_TRACE = f"projects/my-project/traces/{W3C_TRACE}"


def logged_under(trace: tracing.TraceContext, google_cloud_project: str) -> dict[str, Any]:
    stream = configured("json", google_cloud_project=google_cloud_project)
    token = tracing.current.set(trace)
    try:
        logging.getLogger("servekit.rest").info("served")
    finally:
        tracing.current.reset(token)
    (line,) = json_lines(stream)
    return line


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize(
    ("trace", "project", "expected"),
    [
        pytest.param(
            tracing.TraceContext(W3C_TRACE, "00f067aa0ba902b7", sampled=True),
            "my-project",
            {
                "trace_id": W3C_TRACE,
                "span_id": "00f067aa0ba902b7",
                logs.CLOUD_TRACE_FIELD: CLOUD_TRACE,
                logs.CLOUD_SPAN_FIELD: "00f067aa0ba902b7",
                logs.CLOUD_SAMPLED_FIELD: True,
            },
            id="google-trace-with-project",
        ),
        pytest.param(
            tracing.TraceContext(W3C_TRACE),
            "my-project",
            {"trace_id": W3C_TRACE, logs.CLOUD_TRACE_FIELD: CLOUD_TRACE},
            id="trace-id-only-says-nothing-of-span-or-sampling",
        ),
        pytest.param(
            tracing.TraceContext(W3C_TRACE, "00f067aa0ba902b7", sampled=False),
            "",
            {"trace_id": W3C_TRACE, "span_id": "00f067aa0ba902b7"},
            id="without-project-no-cloud-logging-fields",
        ),
        pytest.param(
            tracing.TraceContext("1-5759e988-bd862e3fe1be46a994272793", "53995c3f42cd8ad8", sampled=True),
            "my-project",
            {"trace_id": "1-5759e988-bd862e3fe1be46a994272793", "span_id": "53995c3f42cd8ad8"},
            id="xray-trace-is-not-a-cloud-trace",
        ),
    ],
)
def test_json_lines_carry_the_callers_trace(
    trace: tracing.TraceContext, project: str, expected: dict[str, Any]
) -> None:
    line = logged_under(trace, project)
    traced = {
        key: value for key, value in line.items() if key.endswith(("_id", "spanId", "trace", "_sampled"))
    }
    assert traced == expected


def post_request(path: str, body: dict[str, Any], **headers: str) -> bytes:
    payload = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(payload)}", *(f"{name}: {value}" for name, value in headers.items())]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + payload


def pipelined(url: str, *requests: bytes) -> bytes:
    """Send the requests in one write on one connection; everything read until the server closes it."""
    host, port = url.removeprefix("http://").split(":")
    received = b""
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"".join(requests))
        while chunk := connection.recv(65536):
            received += chunk
    return received


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
def test_uvicorn_lines_reach_the_handler_after_uvicorn_configured_its_own_logging() -> None:
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    # As any uvicorn.Config made in this process without log_config=None leaves them: a handler
    # of their own, and "uvicorn" not propagating to the root.
    logging.config.dictConfig(LOGGING_CONFIG)
    stream = configured("json")
    logging.getLogger("uvicorn.error").error("Exception in ASGI application")
    logging.getLogger("uvicorn.access").info("GET /healthz 200")
    assert [(line["logger"], line["message"]) for line in json_lines(stream)] == [
        ("uvicorn.error", "Exception in ASGI application"),
        ("uvicorn.access", "GET /healthz 200"),
    ]


@pytest.mark.usefixtures("restore_root_logger")
def test_every_line_a_failed_request_writes_carries_its_id(toy_trained: tuple[ModelArtifact, Split]) -> None:
    stream = configured("json")
    artifact, _ = toy_trained
    app = create_app(replace(TOY, model=FailingToy), load_settings("toy"), source=lambda: artifact)
    with ThreadedServer(app) as url:
        deadline = time.monotonic() + 30
        while http_client.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        assert http_client.post(f"{url}/predict", json=ROW).status_code == 200
        failed = http_client.post(f"{url}/predict", json={**ROW, "x": FAILING_X})
    assert failed.status_code == 500
    request_id = failed.headers[HEADER]

    lines = json_lines(stream)
    tagged = [line for line in lines if "request_id" in line]
    assert {line["request_id"] for line in tagged} == {request_id}
    # The access line (written as the failure leaves the middleware), the handler's line
    # naming the cause, and uvicorn's traceback, logged after the app returned, in one line.
    assert [line["logger"] for line in tagged] == ["servekit.access", "servekit.rest", "uvicorn.error"]
    assert tagged[0]["severity"] == "ERROR"
    assert tagged[0]["httpRequest"]["status"] == 500
    # The exception's type, not its text: a message may quote the input.
    access_line = r"POST /predict 500 in [0-9.]+ ms: internal_error: RuntimeError"
    assert re.fullmatch(access_line, tagged[0]["message"])
    assert tagged[0]["error"]["code"] == "internal_error"
    assert tagged[1]["message"].endswith("failed: RuntimeError: lookup table is empty")
    assert tagged[2]["message"].startswith("Exception in ASGI application")
    assert tagged[2]["exception"].endswith("RuntimeError: lookup table is empty")
    # Lines from outside a request (startup, model loading, shutdown) carry no id.
    assert any(line["message"].startswith("Uvicorn running") for line in lines if "request_id" not in line)


@pytest.mark.usefixtures("restore_root_logger")
def test_a_traced_request_links_its_lines_to_its_trace_and_the_next_request_does_not(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    stream = configured("json", google_cloud_project="my-project")
    artifact, _ = toy_trained
    app = create_app(replace(TOY, model=FailingToy), load_settings("toy"), source=lambda: artifact)
    traceparent = f"00-{W3C_TRACE}-00f067aa0ba902b7-01"
    failing = {**ROW, "x": FAILING_X}
    with ThreadedServer(app) as url:
        deadline = time.monotonic() + 30
        while http_client.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        # The server closes a connection whose request raised, so each failure gets its own.
        traced = http_client.post(
            f"{url}/predict", json=failing, headers={"X-Request-ID": "mine", "traceparent": traceparent}
        )
        # A traced request, then an untraced one pipelined behind it on the same connection:
        # the server starts the second from within the first's task, whose context it copies.
        # Nothing of the first request's trace may reach the second one's lines.
        responses = pipelined(
            url,
            post_request("/predict", ROW, traceparent=traceparent),
            post_request("/predict", failing, **{"X-Request-ID": "plain"}),
        )
    assert traced.status_code == 500
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", responses) == [b"200", b"500"]

    lines = json_lines(stream)
    first = [line for line in lines if line.get("request_id") == "mine"]
    second = [line for line in lines if line.get("request_id") == "plain"]
    # The access line, servekit's line naming the cause and uvicorn's traceback.
    assert len(first) == len(second) == 3
    for line in first:
        assert line["trace_id"] == W3C_TRACE
        assert line["span_id"] == "00f067aa0ba902b7"
        assert line[logs.CLOUD_TRACE_FIELD] == CLOUD_TRACE
        assert line[logs.CLOUD_SPAN_FIELD] == "00f067aa0ba902b7"
        assert line[logs.CLOUD_SAMPLED_FIELD] is True
    for line in second:
        assert not {"trace_id", "span_id", logs.CLOUD_TRACE_FIELD} & line.keys()


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("log_format", ["json", "text"])
def test_the_handler_meters_the_bytes_of_every_line_it_writes(log_format: logs.LogFormat) -> None:
    stream = io.StringIO()
    handler = logs.configure_logging("INFO", log_format, "toy", stream)
    logging.getLogger("servekit.runtime").info("before the meter is attached")
    unmetered = len(stream.getvalue().encode())
    metered: list[tuple[str, int]] = []
    handler.meter = lambda logger, size: metered.append((logger, size))

    logging.getLogger("servekit.capture").info("prediction captured: %s", '{"input": {"Geography": "Köln"}}')
    logging.getLogger("servekit.access").warning("POST /predict 422")
    logging.getLogger("uvicorn.error").info("two\nlines, one record")
    logging.getLogger("servekit.runtime").debug("below the level: not written, not metered")

    assert [logger for logger, _ in metered] == ["servekit.capture", "servekit.access", "uvicorn.error"]
    written = stream.getvalue().encode()[unmetered:]
    # UTF-8 bytes, newline included: what the pod's log file, and the log store's bill, count.
    assert sum(size for _, size in metered) == len(written)
    assert metered[0][1] == len(written.split(b"\n", 1)[0]) + 1
    assert "ö".encode() in written.split(b"\n", 1)[0]


FORGED = "\n2026-12-05 20:00:00,000 ERROR servekit.rest forged line\x1b[2J"


@pytest.mark.usefixtures("restore_root_logger")
def test_a_text_line_escapes_every_control_character_so_one_record_is_one_line() -> None:
    stream = configured("text")
    controls = "a\nb\rc\td\x00e\x1bf\x7fg\x85h\x9bi\u2028j\u2029k"
    logging.getLogger("servekit.rest").warning("got %s", controls)
    (line,) = stream.getvalue().splitlines()  # splitlines splits at \x85, \u2028 and \u2029 too
    assert line.endswith(
        " WARNING servekit.rest got a\\nb\\rc\\td\\u0000e\\u001bf\\u007fg\\u0085h\\u009bi\\u2028j\\u2029k"
    )
    assert stream.getvalue().isascii()


#: Every character a text line escapes: C0, DEL, C1, the line and paragraph separators.
CONTROLS = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


@pytest.mark.usefixtures("restore_root_logger")
def test_a_json_body_in_a_text_line_stays_json_meaning_what_it_did() -> None:
    """A capture line is its JSON after the message; a tweet's U+009D, written ``\\x9d``, made it
    JSON no parser reads, and ``mlp evaluate`` stopped at it."""
    stream = configured("text")
    tweet = "coronavirus-\x9dnot about the rate, \x80 100 million, Company\x85 #Stock \x8fhttps"
    body = json.dumps({"text": tweet, "controls": CONTROLS}, ensure_ascii=False)
    # A raw C0 inside a string too (no JSON encoder writes one; a hand-made message might).
    raw = '{"esc":"' + CONTROLS + '"}'
    logging.getLogger("servekit.capture").info("captured: %s %s", body, raw)
    (line,) = stream.getvalue().splitlines()
    assert not set(line) & set(CONTROLS)
    written, written_raw = line.split("captured: ", 1)[1].rsplit(" ", 1)
    assert json.loads(written) == {"text": tweet, "controls": CONTROLS}
    assert json.loads(written_raw) == {"esc": CONTROLS}
    # A reader still sees each control as an escape, not as nothing.
    assert "coronavirus-\\u009dnot" in line


@pytest.mark.usefixtures("restore_root_logger")
def test_a_json_body_is_redacted_string_by_string_so_a_masked_value_ends_at_its_string() -> None:
    """Redacted as part of the line, ``?token=abc"},"prediction":...`` was masked to the line's end."""
    stream = configured("text")
    body = json.dumps({"input": {"text": "see t.co/x?token=abc\x9d"}, "prediction": {"label": "bullish"}})
    try:
        raise ValueError("https://alice:pw@mlflow.example")
    except ValueError:
        logging.getLogger("servekit.capture").exception(logs.JsonBody("prediction captured", body))
    first, *traceback = stream.getvalue().splitlines()
    written = json.loads(first.split(" servekit.capture prediction captured: ", 1)[1])
    assert written == {"input": {"text": "see t.co/x?token=***"}, "prediction": {"label": "bullish"}}
    assert traceback[-1] == "  ValueError: https://***@mlflow.example"
    # Any other formatter writes the message and the JSON, redacted as a line.
    plain = logging.makeLogRecord({"msg": logs.JsonBody("prediction captured", '{"a": "b"}')})
    assert logs.RedactingFormatter("%(message)s").format(plain) == 'prediction captured: {"a": "b"}'


URL_TOKENS = {
    "https://mlflow.example/login?token=SuperSecret123": 0.103,
    "https://mlflow.example/login?token=Other456": -0.02,
    "plunges": -0.4,
}
MASKED_TOKENS = {
    "https://mlflow.example/login?token=***": 0.103,
    "https://mlflow.example/login?token=***#2": -0.02,
    "plunges": -0.4,
}


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_explanation_keyed_by_a_url_token_has_its_secret_masked_and_no_entry_lost(
    log_format: logs.LogFormat,
) -> None:
    # NLPInsight's contributions are keyed by the text's tokens; a URL with its query is one.
    capture = {"explanation": {"contributions": URL_TOKENS}}
    stream = configured(log_format)
    if log_format == "text":
        logging.getLogger("servekit.capture").info(logs.JsonBody("prediction captured", json.dumps(capture)))
        written = json.loads(stream.getvalue().split("prediction captured: ", 1)[1])
    else:
        logging.getLogger("servekit.capture").info(
            "prediction captured", extra={"json_fields": {"capture": capture}}
        )
        written = json_lines(stream)[0]["capture"]
    assert "Secret" not in stream.getvalue()
    assert written == {"explanation": {"contributions": MASKED_TOKENS}}


@pytest.mark.usefixtures("restore_root_logger")
def test_a_text_traceback_keeps_its_lines_and_none_passes_for_a_record() -> None:
    stream = configured("text")
    try:
        raise ValueError(f"bad name{FORGED}")
    except ValueError:
        logging.getLogger("servekit.rest").exception("failed%s", FORGED)
    first, *traceback = stream.getvalue().splitlines()
    assert first.endswith("failed\\n2026-12-05 20:00:00,000 ERROR servekit.rest forged line\\u001b[2J")
    assert traceback[0] == "  Traceback (most recent call last):"
    assert traceback[-1] == "  2026-12-05 20:00:00,000 ERROR servekit.rest forged line\\u001b[2J"
    # Every record starts with its time; the traceback's lines, indented, never do.
    assert all(line.startswith("  ") for line in traceback)
    assert "\x1b" not in stream.getvalue()


def raw_request(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        return connection.recv(65536)


@pytest.mark.usefixtures("restore_root_logger")
def test_a_client_cannot_forge_a_text_line_through_a_url_or_a_field_name(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    stream = configured("text")
    artifact, _ = toy_trained
    app = create_app(TOY, load_settings("toy"), source=lambda: artifact)
    with ThreadedServer(app) as url:
        deadline = time.monotonic() + 30
        while http_client.get(f"{url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never ready"
            time.sleep(0.05)
        written = len(stream.getvalue())
        # As curl sends 'localhost:PORT/x%0aFORGED': decoded, the path holds a newline.
        answer = raw_request(
            url, b"GET /x%0aFORGED%0d%1b[2J HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 404 ")
        assert http_client.post(f"{url}/predict", json={**ROW, f"x{FORGED}\u2028": 1}).status_code == 422
    lines = stream.getvalue()[written:].splitlines()
    access = [line for line in lines if " servekit.access " in line]
    assert len(access) == 2
    assert "GET /x\\nFORGED\\r\\u001b[2J 404 in" in access[0]
    assert "x\\n2026-12-05 20:00:00,000 ERROR servekit.rest forged line\\u001b[2J\\u2028" in access[1]
    # Every line is a record of its own: the time, the level, the logger.
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [a-z]", line) for line in lines)
    assert "\x1b" not in stream.getvalue()


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_line_shows_the_credentials_of_a_uri(log_format: logs.LogFormat) -> None:
    """urllib3's retry warning quoted the tracking URI's token, and a traceback its password."""
    stream = configured(log_format)
    retrying = logging.getLogger("urllib3.connectionpool")
    retrying.warning(
        "Retrying (%s) after connection broken by %r: %s",
        "Retry(total=6)",
        "refused",
        "/?token=T0K/api/2.0/x",
    )
    try:
        raise ConnectionError("API request to http://alice:PASSW0RD@mlflow:5000/api failed")
    except ConnectionError:
        logging.getLogger("toy").exception("loading failed")
    logging.getLogger("toy.access").info(
        "GET /model?api_key=K3Y 200",
        extra={"json_fields": {"httpRequest": {"requestUrl": "/model?api_key=K3Y"}}},
    )
    logging.getLogger("toy").info("nothing to hide: http://h/x?a=1 and b=2")
    written = stream.getvalue()
    for secret in ("T0K", "PASSW0RD", "alice", "K3Y"):
        assert secret not in written, secret
    assert ": /?token=***" in written
    assert "http://***@mlflow:5000/api" in written
    assert "nothing to hide: http://h/x?a=1 and b=2" in written
    if log_format == "json":
        lines = json_lines(stream)  # still one JSON object a line: a mask runs on over no field
        assert [line["message"] for line in lines][-2:] == [
            "GET /model?api_key=*** 200",
            "nothing to hide: http://h/x?a=1 and b=2",
        ]
        assert lines[-2]["httpRequest"] == {"requestUrl": "/model?api_key=***"}
        assert lines[-2]["severity"] == "INFO"
