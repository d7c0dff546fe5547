"""The access log: which requests get a line, what the line says and never says, its rate cap."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit.errors import FieldProblem, ServekitError
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.access_log import MAX_FIELDS, AccessLog, LineBudget, remember_error
from servekit.settings import SettingsError, load_settings
from servekit.testing import wait_ready
from servekit.training.splitting import Split

ROW = {"x": 3.0, "color": "red"}
#: A value that appears nowhere else in a request or an error message.
PRIVATE_X = 9.87654


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def served(trained: tuple[ModelArtifact, Split], **settings: Any) -> Iterator[TestClient]:
    artifact, _ = trained
    app = create_app(TOY, load_settings("toy", max_batch_size=64, **settings), source=lambda: artifact)
    with TestClient(app) as client:
        wait_ready(client)
        yield client


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "servekit.access"]


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = record.__dict__["json_fields"]
    return fields


@pytest.fixture
def caplog_access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="servekit.access")
    return caplog


def test_a_rejected_request_gets_one_line_naming_its_fields_but_not_their_values(
    toy_trained: tuple[ModelArtifact, Split], caplog_access: pytest.LogCaptureFixture
) -> None:
    with served(toy_trained) as client:
        assert client.post("/predict", json=ROW).status_code == 200
        bad = {"x": PRIVATE_X + 100, "color": "green"}
        response = client.post("/predict?explain=true", json=bad, headers={"user-agent": "churn-batch/2"})
    assert response.status_code == 422

    (record,) = access_records(caplog_access)  # the success wrote none
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert message.startswith("POST /predict?explain=true 422 in ")
    assert message.endswith(
        "invalid_request: 2 problems: x: Input should be less than or equal to 10; "
        "color: Input should be 'red' or 'blue'"
    )
    fields = fields_of(record)
    assert fields["error"]["code"] == "invalid_request"
    assert [problem["field"] for problem in fields["error"]["fields"]] == ["x", "color"]
    http = fields["httpRequest"]
    assert http["requestMethod"] == "POST"
    assert http["requestUrl"] == "/predict?explain=true"
    assert http["status"] == 422
    assert http["userAgent"] == "churn-batch/2"
    assert http["remoteIp"] == "testclient"
    assert http["responseSize"] == str(len(response.content))
    assert http["latency"].endswith("s")
    assert float(http["latency"][:-1]) > 0
    assert str(PRIVATE_X + 100) not in message + repr(fields)
    assert "green" not in message + repr(fields)


def test_a_batch_with_many_bad_rows_lists_the_first_fields_and_counts_the_rest(
    toy_trained: tuple[ModelArtifact, Split], caplog_access: pytest.LogCaptureFixture
) -> None:
    rows = [{"x": 50.0, "color": "red"}] * 12
    with served(toy_trained) as client:
        assert client.post("/predict/batch", json={"instances": rows}).status_code == 422
    (record,) = access_records(caplog_access)
    fields = fields_of(record)
    assert len(fields["error"]["fields"]) == MAX_FIELDS
    assert fields["error"]["field_count"] == 12
    # The line's text is the client's message, which summarises the first three problems.
    problem = "Input should be less than or equal to 10"
    summary = "; ".join(f"instances[{i}].x: {problem}" for i in range(3))
    assert record.getMessage().endswith(f"invalid_request: 12 problems: {summary}")


@pytest.mark.parametrize(
    ("mode", "logged"),
    [
        ("off", []),
        ("errors", [("POST", "/predict/batch", 413), ("GET", "/nowhere", 404)]),
        (
            "all",
            [
                ("POST", "/predict", 200),
                ("GET", "/model", 200),
                ("POST", "/predict/batch", 413),
                ("GET", "/nowhere", 404),
            ],
        ),
    ],
)
def test_the_mode_chooses_the_requests_and_probes_are_never_logged(
    toy_trained: tuple[ModelArtifact, Split],
    caplog_access: pytest.LogCaptureFixture,
    mode: str,
    logged: list[tuple[str, str, int]],
) -> None:
    with served(toy_trained, access_log=mode) as client:
        caplog_access.clear()  # wait_ready's probes
        client.post("/predict", json=ROW)
        client.get("/model")
        client.get("/healthz")
        client.get("/readyz")
        client.post("/predict/batch", json={"instances": [ROW] * 65})
        client.get("/nowhere")
    records = access_records(caplog_access)
    requests = [fields_of(record)["httpRequest"] for record in records]
    assert [(r["requestMethod"], r["requestUrl"], r["status"]) for r in requests] == logged
    expected_levels = [logging.INFO if status < 400 else logging.WARNING for *_, status in logged]
    assert [record.levelno for record in records] == expected_levels
    errors = {
        r["status"]: fields_of(record).get("error") for r, record in zip(requests, records, strict=True)
    }
    assert errors.get(200) is None
    if logged:
        assert errors[404]["code"] == "not_found"
        assert errors[413]["code"] == "batch_too_large"


def scope(status_path: str = "/predict") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": status_path, "query_string": b"", "headers": []}


def test_the_line_budget_refills_at_its_rate_and_reports_what_it_left_out() -> None:
    clock = FakeClock()
    budget = LineBudget(2, clock)
    assert [budget.take(), budget.take(), budget.take(), budget.take()] == [0, 0, None, None]
    clock.now += 0.5  # one line's worth
    assert budget.take() == 2
    assert budget.take() is None
    clock.now += 60  # refills to the burst size, not beyond
    assert [budget.take(), budget.take(), budget.take()] == [1, 0, None]


def test_a_rate_below_one_line_a_second_writes_one_line_every_so_many_seconds() -> None:
    clock = FakeClock()
    budget = LineBudget(0.5, clock)
    assert [budget.take(), budget.take()] == [0, None]
    clock.now += 1.5
    assert budget.take() is None
    clock.now += 0.5  # two seconds since the last line
    assert [budget.take(), budget.take()] == [2, None]
    clock.now += 60  # refills to one line, not beyond
    assert [budget.take(), budget.take()] == [1, None]


def test_lines_over_the_cap_are_left_out_and_the_next_line_says_how_many(
    caplog_access: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    access = AccessLog("errors", 3, clock)
    request = scope()
    remember_error(request, ServekitError(422, "invalid_request", "1 problem", (FieldProblem("x", "bad"),)))
    for _ in range(10):
        access.record(request, "/predict", 422, 0.001, 100)
    assert len(access_records(caplog_access)) == 3
    clock.now += 1
    access.record(request, "/predict", 422, 0.001, 100)
    last = access_records(caplog_access)[-1]
    assert fields_of(last)["access_lines_left_out"] == 7
    assert last.getMessage().endswith("(7 earlier lines left out, over 3 per second)")


def test_lines_left_out_are_counted_even_when_no_line_follows_to_say_so(
    toy_trained: tuple[ModelArtifact, Split], caplog_access: pytest.LogCaptureFixture
) -> None:
    with served(toy_trained, access_log_max_per_second=3) as client:
        for _ in range(20):
            assert client.get("/nowhere").status_code == 404
        metrics = client.get("/metrics").text
    (sample,) = [
        line for line in metrics.splitlines() if line.startswith("toy_access_log_lines_left_out_total ")
    ]
    left_out = float(sample.split()[1])
    assert "# HELP toy_access_log_lines_left_out_total Access log lines not written because " in metrics
    assert "TOY_ACCESS_LOG_MAX_PER_SECOND was reached" in metrics  # the variable to raise
    written = len(access_records(caplog_access))
    assert written + left_out == 20
    assert left_out >= 10


def test_a_path_prefix_is_logged_as_the_client_sent_it(caplog_access: pytest.LogCaptureFixture) -> None:
    prefixed = {**scope("/bankchurn/predict"), "root_path": "/bankchurn", "query_string": b"explain=true"}
    AccessLog("all", 10).record(prefixed, "/predict", 200, 0.002, 10)
    (record,) = access_records(caplog_access)
    assert fields_of(record)["httpRequest"]["requestUrl"] == "/bankchurn/predict?explain=true"
    assert record.getMessage() == "POST /bankchurn/predict?explain=true 200 in 2.00 ms"


def test_the_mode_is_a_setting_read_in_any_case_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOY_ACCESS_LOG", "ALL")
    assert load_settings("toy").access_log == "all"
    monkeypatch.setenv("TOY_ACCESS_LOG", "verbose")
    with pytest.raises(
        SettingsError, match=r"TOY_ACCESS_LOG='verbose': Input should be 'off', 'errors' or 'all'"
    ):
        load_settings("toy")
    monkeypatch.setenv("TOY_ACCESS_LOG", "errors")
    monkeypatch.setenv("TOY_ACCESS_LOG_MAX_PER_SECOND", "0")
    with pytest.raises(
        SettingsError, match="TOY_ACCESS_LOG_MAX_PER_SECOND='0': Input should be greater than 0"
    ):
        load_settings("toy")


def test_lines_the_log_level_drops_spend_none_of_the_budget(caplog: pytest.LogCaptureFixture) -> None:
    access = AccessLog("all", 2, FakeClock())
    caplog.set_level(logging.WARNING, logger="servekit.access")
    for _ in range(5):
        access.record(scope(), "/predict", 200, 0.001, 10)  # INFO: below the level
    remember_error(request := scope(), ServekitError(404, "not_found", "Not Found"))
    access.record(request, "/nowhere", 404, 0.001, 10)
    (record,) = access_records(caplog)
    assert "left_out" not in record.getMessage()
    assert "access_lines_left_out" not in fields_of(record)
