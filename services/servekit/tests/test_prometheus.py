"""Instant queries to Prometheus's HTTP API: the token, the samples, and a clear error."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import ClassVar

import pytest

from servekit import prometheus
from servekit.errors import ServekitError
from servekit.local import free_port
from servekit.testing import StubHandler, http_stub


class RecordingPrometheus(StubHandler):
    """Answers every query with ``result``; keeps the Authorization header and the parameters it got."""

    seen: ClassVar[list[str | None]] = []
    asked: ClassVar[list[dict[str, list[str]]]] = []
    result: ClassVar[list[dict[str, object]]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        self.asked.append(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query))
        self.answer(200, {"status": "success", "data": {"resultType": "vector", "result": self.result}})


@pytest.fixture
def fake_prometheus() -> Iterator[str]:
    with http_stub(RecordingPrometheus) as url:
        yield url


def answering(*result: tuple[dict[str, str], str]) -> None:
    RecordingPrometheus.result = [{"metric": labels, "value": [0, value]} for labels, value in result]


def test_a_token_in_the_environment_is_sent_as_a_bearer_token(
    fake_prometheus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    answering(({}, "7"))
    monkeypatch.setenv(prometheus.TOKEN_ENV, "s3cret")
    assert prometheus.query(fake_prometheus, "vector(1)") == 7
    monkeypatch.delenv(prometheus.TOKEN_ENV)
    assert prometheus.query(fake_prometheus, "vector(1)") == 7
    assert RecordingPrometheus.seen[-2:] == ["Bearer s3cret", None]


def test_no_sample_and_a_nan_sample_are_no_value(fake_prometheus: str) -> None:
    answering()
    assert prometheus.query(fake_prometheus, "up") is None
    answering(({}, "NaN"))
    assert prometheus.query(fake_prometheus, "0/0") is None


def test_samples_by_a_label_leave_nan_out(fake_prometheus: str) -> None:
    answering(({"logger": "servekit.capture"}, "1024"), ({"logger": "other"}, "NaN"), ({}, "2"))
    assert prometheus.query_by(fake_prometheus, "x", "logger") == {"servekit.capture": 1024.0, "": 2.0}


def test_an_unreachable_prometheus_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServekitError) as error:
        prometheus.query(url, "vector(1)")
    assert error.value.status_code == 502
    assert error.value.message.startswith(f"Prometheus at {url}: ")


def test_a_range_vector_is_its_first_series_points_without_nan(fake_prometheus: str) -> None:
    RecordingPrometheus.result = [{"metric": {}, "values": [[60, "2.5"], [120, "NaN"], [180, "4"]]}]
    assert prometheus.series(fake_prometheus, "rate(x[1m])[3m:1m]") == [(60.0, 2.5), (180.0, 4.0)]
    answering()
    assert prometheus.series(fake_prometheus, "rate(x[1m])[3m:1m]") == []


def test_a_query_at_an_instant_asks_for_that_time_and_now_asks_for_none(fake_prometheus: str) -> None:
    answering(({}, "1"))
    prometheus.query(fake_prometheus, "up", at=1796282501.5)
    prometheus.query_by(fake_prometheus, "up", "job", at=1796282501.5)
    prometheus.query(fake_prometheus, "up")
    assert RecordingPrometheus.asked[-3:] == [
        {"query": ["up"], "time": ["1796282501.500"]},
        {"query": ["up"], "time": ["1796282501.500"]},
        {"query": ["up"]},
    ]


class OddServer(StubHandler):
    """Answers every request with ``answering``: (status, content type, body)."""

    answering: ClassVar[tuple[int, str, bytes]] = (200, "application/json", b"{}")

    def do_GET(self) -> None:
        status, content_type, body = self.answering
        self.answer(status, body, content_type)


@pytest.fixture(scope="module")
def odd_server() -> Iterator[str]:
    with http_stub(OddServer) as url:
        yield url


JSON = "application/json"


@pytest.mark.parametrize(
    ("answer", "status", "says"),
    [
        ((404, "text/plain", b"404 page not found"), 400, "HTTP 404, not JSON: is this the Prometheus URL?"),
        (
            (200, "text/html", b"<html>Grafana</html>"),
            400,
            "HTTP 200, an HTML page: is this the Prometheus URL?",
        ),
        ((502, "text/html", b"<html>Bad Gateway</html>"), 502, "HTTP 502, an HTML page"),
        (
            (401, "text/plain", b"Unauthorized"),
            400,
            f"HTTP 401 (is {prometheus.TOKEN_ENV} the proxy's token?)",
        ),
        ((200, JSON, b"[]"), 400, "HTTP 200, a JSON list, not Prometheus's answer"),
        ((200, JSON, b'{"status": "success"}'), 400, "HTTP 200, an answer without data"),
        ((200, JSON, b'{"status": "success", "data": {"result": [1]}}'), 400, "an answer without data"),
        (
            (200, JSON, b'{"status": "success", "data": {"result": [{"metric": {}}]}}'),
            502,
            "a sample without a value",
        ),
        (
            (200, JSON, b'{"status": "success", "data": {"result": [{"metric": {}, "value": [1, "x"]}]}}'),
            502,
            "a sample whose [time, value] is not two numbers ([1, 'x'])",
        ),
        (
            (400, JSON, b'{"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}'),
            400,
            "Prometheus at {url}: bad_data: parse error at char 5",
        ),
        (
            (503, JSON, b'{"status": "error", "errorType": "timeout", "error": "query timed out"}'),
            502,
            "Prometheus at {url}: timeout: query timed out",
        ),
        # Another server's JSON is no Prometheus error: each printed `Prometheus at URL: None`
        # (or `not_found`), exit status 1 as if a retry could mend it.
        (
            (401, JSON, b'{"message": "Unauthorized"}'),
            400,
            f"HTTP 401 (is {prometheus.TOKEN_ENV} the proxy's token?), JSON that is not "
            "Prometheus's answer: is this the Prometheus URL?",
        ),
        (
            (403, JSON, b'{"status": "error", "message": "Forbidden"}'),
            400,
            f"HTTP 403 (is {prometheus.TOKEN_ENV} the proxy's token?), JSON that is not",
        ),
        (
            (404, JSON, b'{"error": "not_found", "reason": "missing"}'),
            400,
            "HTTP 404, JSON that is not Prometheus's answer: is this the Prometheus URL?",
        ),
        ((503, JSON, b'{"message": "no healthy upstream"}'), 502, "HTTP 503, JSON that is not"),
    ],
    ids=[
        "404",
        "html",
        "502",
        "401",
        "list",
        "no-data",
        "not-samples",
        "no-value",
        "not-a-number",
        "bad-query",
        "timeout",
        "json-401",
        "json-403-other-status",
        "json-404",
        "json-503",
    ],
)
def test_an_answer_prometheus_does_not_send_is_named(
    odd_server: str, answer: tuple[int, str, bytes], status: int, says: str
) -> None:
    """Each was a JSON decoder's or a KeyError's message (or a traceback), naming nothing; a
    status under 500 is a wrong address or query, which no retry mends."""
    OddServer.answering = answer
    with pytest.raises(ServekitError) as error:
        prometheus.query(odd_server, "vector(1)")
    assert error.value.message.startswith(f"Prometheus at {odd_server}: ")
    assert says.format(url=odd_server) in error.value.message
    assert error.value.status_code == status


def test_samples_of_another_shape_are_named_by_each_reader(odd_server: str) -> None:
    OddServer.answering = (
        200,
        JSON,
        b'{"status": "success", "data": {"result": [{"metric": 3, "value": [1, "2"]}]}}',
    )
    with pytest.raises(ServekitError, match="a sample whose labels are not an object"):
        prometheus.query_by(odd_server, "x", "job")
    OddServer.answering = (
        200,
        JSON,
        b'{"status": "success", "data": {"result": [{"metric": {}, "value": [1, "2"]}]}}',
    )
    with pytest.raises(ServekitError, match=r"a series without a list of \[time, value\] pairs"):
        prometheus.series(odd_server, "x[3m:1m]")


@pytest.mark.parametrize("url", ["http://[::1", "prometheus:9090"])
def test_an_address_that_is_not_a_url_is_refused_as_such(url: str) -> None:
    with pytest.raises(ServekitError) as error:
        prometheus.query(url, "vector(1)")
    assert error.value.status_code == 400
    assert error.value.message.startswith(f"Prometheus at {url}: not a URL (")
