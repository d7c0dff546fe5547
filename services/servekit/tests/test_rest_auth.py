"""API keys over HTTP: a 401 that says what to send, open probes and docs, the client on log lines."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit import logs
from servekit.auth import key_lines
from servekit.metrics import MetricNames
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import SettingsError, load_settings
from servekit.testing import metric_sample, wait_ready
from servekit.training.splitting import Split

NAMES = MetricNames("toy")
ROW = {"x": 3.0, "color": "red"}
INFER = {
    "inputs": [
        {"name": "x", "datatype": "FP64", "shape": [1], "data": [3.0]},
        {"name": "color", "datatype": "BYTES", "shape": [1], "data": ["red"]},
    ]
}


@pytest.fixture
def risk_key(tmp_path: Path) -> tuple[Path, str]:
    key = key_lines.new_key()
    path = tmp_path / "keys"
    path.write_text(key_lines.key_line("risk-dashboard", key) + "\n")
    return path, key


def keyed_client(artifact: ModelArtifact, keys_file: Path, **settings: Any) -> TestClient:
    settings = {"api_keys_file": str(keys_file), **settings}
    return TestClient(create_app(TOY, load_settings("toy", **settings), source=lambda: artifact))


@pytest.fixture
def client(toy_trained: tuple[ModelArtifact, Split], risk_key: tuple[Path, str]) -> Iterator[TestClient]:
    with keyed_client(toy_trained[0], risk_key[0]) as client:
        wait_ready(client)  # /readyz needs no key
        yield client


def test_a_prediction_needs_a_key_and_the_401_says_what_to_send(client: TestClient) -> None:
    response = client.post("/predict", json=ROW)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["error"] == "unauthenticated"
    assert body["fields"] == [
        {
            "field": "header.Authorization",
            "problem": "missing: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
        }
    ]
    assert response.headers["x-request-id"]  # on-call can still find it
    assert metric_sample(client, NAMES.requests_total, endpoint="/predict", method="POST", status="401") == 1


def test_either_header_with_a_key_of_ours_is_answered(client: TestClient, risk_key: tuple[Path, str]) -> None:
    key = risk_key[1]
    bearer = client.post("/predict?explain=true", json=ROW, headers={"authorization": f"Bearer {key}"})
    header = client.post("/predict/batch", json={"instances": [ROW, ROW]}, headers={"x-api-key": key})
    assert (bearer.status_code, header.status_code) == (200, 200)
    assert "contributions" in bearer.json()["explanation"]
    wrong = client.post("/predict", json=ROW, headers={"x-api-key": key + "x"})
    assert wrong.status_code == 401
    assert wrong.json()["fields"][0]["field"] == "header.X-API-Key"


def test_probes_metrics_and_docs_answer_without_a_key(client: TestClient) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/docs", "/redoc", "/openapi.json", "/v2/health/ready"):
        assert client.get(path).status_code == 200, path
    assert client.get("/v2/models/toy/ready").status_code == 200
    assert client.head("/readyz").status_code == 200


@pytest.mark.parametrize("path", ["/model", "/model/card", "/v2/models/toy", "/no/such/path"])
def test_everything_else_needs_one_even_a_path_that_does_not_exist(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 401


def test_the_key_is_checked_before_the_body_is_read(client: TestClient) -> None:
    over_the_limit = b"x" * 2_000_000
    response = client.post("/predict", content=over_the_limit, headers={"content-type": "application/json"})
    assert response.status_code == 401  # not 413: nothing of an unknown caller's body is read


def test_open_inference_paths_answer_in_the_protocols_error_shape(client: TestClient) -> None:
    response = client.post("/v2/models/toy/infer", json=INFER)
    assert response.status_code == 401
    body = response.json()
    assert body["code"] == "unauthenticated"
    assert "header.Authorization" in body["error"]


def test_the_openapi_document_says_which_operations_need_a_key(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerKey"] == {**schemes["bearerKey"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKeyHeader"]["name"] == "X-API-Key"
    predict = document["paths"]["/predict"]["post"]
    assert predict["security"] == [{"bearerKey": []}, {"apiKeyHeader": []}]
    assert "401" in predict["responses"]
    assert "security" in document["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert "security" not in document["paths"]["/healthz"]["get"]
    assert "security" not in document["paths"]["/v2/health/ready"]["get"]


def test_without_a_keys_file_nothing_needs_a_key(toy_trained: tuple[ModelArtifact, Split]) -> None:
    app = create_app(TOY, load_settings("toy"), source=lambda: toy_trained[0])
    with TestClient(app) as client:
        wait_ready(client)
        assert client.post("/predict", json=ROW).status_code == 200
        assert "securitySchemes" not in client.get("/openapi.json").json()["components"]
        exposition = client.get("/metrics").text
    assert NAMES.api_key_expiry_timestamp_seconds not in exposition
    assert f"{NAMES.client_requests_total}{{" not in exposition  # no client, no series


def test_a_keys_file_that_cannot_be_read_stops_the_app_before_it_serves(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    settings = load_settings("toy", api_keys_file=str(tmp_path / "absent"))
    with pytest.raises(SettingsError, match=r"TOY_API_KEYS_FILE=.*cannot read it"):
        create_app(TOY, settings, source=lambda: toy_trained[0])


def test_every_log_line_of_a_request_names_its_client_never_its_key(
    toy_trained: tuple[ModelArtifact, Split],
    risk_key: tuple[Path, str],
    restore_root_logger: None,
) -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", "json", "toy", stream)
    path, key = risk_key
    everything_logged = {"access_log": "all", "capture_percent": 100, "log_format": "json"}
    with keyed_client(toy_trained[0], path, **everything_logged) as client:
        wait_ready(client)
        stream.truncate(0)
        stream.seek(0)
        answered = client.post("/predict", json=ROW, headers={"x-api-key": key, "x-request-id": "req-1"})
        refused = client.post("/predict", json=ROW, headers={"x-request-id": "req-2"})
    assert (answered.status_code, refused.status_code) == (200, 401)
    text = stream.getvalue()
    assert key not in text
    lines = [json.loads(line) for line in text.splitlines()]
    mine = [line for line in lines if line.get("request_id") == "req-1"]
    assert {line["logger"] for line in mine} == {"servekit.access", "servekit.capture"}
    assert all(line["client"] == "risk-dashboard" for line in mine)
    assert all(line["key_id"] == key_lines.digest(key)[:8] for line in mine)  # which of its keys, not the key
    (unknown,) = [line for line in lines if line.get("request_id") == "req-2"]
    assert "client" not in unknown
    assert unknown["error"]["code"] == "unauthenticated"


def test_a_client_with_its_share_in_flight_gets_a_429_and_others_are_answered(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    keys = {client: key_lines.new_key() for client in ("risk", "ops")}
    path = tmp_path / "keys"
    path.write_text("".join(key_lines.key_line(client, key) + "\n" for client, key in keys.items()))
    with keyed_client(toy_trained[0], path, max_concurrent_requests=4) as client:
        wait_ready(client)
        admission = client.app.state.admission  # type: ignore[attr-defined]
        assert admission.client_limit == 3  # three quarters of the replica's places
        for _ in range(3):
            admission.enter("risk")  # as three of risk's requests being answered
        refused = client.post("/predict", json=ROW, headers={"x-api-key": keys["risk"]})
        answered = client.post("/predict", json=ROW, headers={"x-api-key": keys["ops"]})
        status = client.get("/model", headers={"x-api-key": keys["ops"]}).json()["admission"]
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["error"] == "too_many_requests"
    assert "client risk has 3 prediction requests in flight" in refused.json()["message"]
    assert answered.status_code == 200
    assert (status["client_limit"], status["clients_in_flight"]) == (3, 1)
    assert metric_sample(client, NAMES.prediction_requests_shed_total, limit="requests") == 0
    risk_refused = {"client": "risk", "key_id": key_id(keys["risk"]), "endpoint": "/predict", "status": "429"}
    assert metric_sample(client, NAMES.client_requests_total, **risk_refused) == 1


@pytest.mark.parametrize(("setting", "expected"), [(0, 0), (16, 16), (None, 12)])
def test_the_client_limit_is_the_setting_or_three_quarters_of_the_request_limit(
    toy_trained: tuple[ModelArtifact, Split], risk_key: tuple[Path, str], setting: int | None, expected: int
) -> None:
    app = create_app(
        TOY,
        load_settings("toy", api_keys_file=str(risk_key[0]), max_concurrent_requests_per_client=setting),
        source=lambda: toy_trained[0],
    )
    assert app.state.admission.client_limit == expected


def test_a_text_log_line_tags_the_request_with_its_client(
    toy_trained: tuple[ModelArtifact, Split], risk_key: tuple[Path, str], restore_root_logger: None
) -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", "text", "toy", stream)
    path, key = risk_key
    with keyed_client(toy_trained[0], path, access_log="all") as client:
        wait_ready(client)
        client.post("/predict", json=ROW, headers={"x-api-key": key, "x-request-id": "req-9"})
    (line,) = [line for line in stream.getvalue().splitlines() if "[req-9" in line]
    assert f"[req-9 client=risk-dashboard key={key_lines.key_id(key_lines.digest(key))}]" in line
    assert key not in stream.getvalue()


def key_id(key: str) -> str:
    return key_lines.key_id(key_lines.digest(key))


def test_each_clients_requests_are_counted_by_key_endpoint_and_status(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    keys = {client: key_lines.new_key() for client in ("risk", "risk-rotated", "ops")}
    path = tmp_path / "keys"
    path.write_text(
        "".join(
            key_lines.key_line(client.removesuffix("-rotated"), key) + "\n" for client, key in keys.items()
        )
    )
    with keyed_client(toy_trained[0], path) as client:
        wait_ready(client)
        for key in (keys["risk"], keys["risk"], keys["risk-rotated"]):
            assert client.post("/predict", json=ROW, headers={"x-api-key": key}).status_code == 200
        bad = client.post("/predict/batch", json={"instances": []}, headers={"x-api-key": keys["ops"]})
        infer = client.post("/v2/models/toy/infer", json=INFER, headers={"x-api-key": keys["ops"]})
        assert client.post("/predict", json=ROW).status_code == 401
        assert client.get("/metrics").status_code == 200
    assert (bad.status_code, infer.status_code) == (422, 200)

    def counted(who: str, key: str, endpoint: str, status: str) -> float:
        labels = {"client": who, "key_id": key_id(key), "endpoint": endpoint, "status": status}
        return metric_sample(client, NAMES.client_requests_total, **labels)

    assert counted("risk", keys["risk"], "/predict", "200") == 2
    assert counted("risk", keys["risk-rotated"], "/predict", "200") == 1  # the rotation, key by key
    assert counted("ops", keys["ops"], "/predict/batch", "422") == 1
    assert counted("ops", keys["ops"], "/v2/models/{model}/infer", "200") == 1  # the endpoint label
    registry = client.app.state.metrics.registry  # type: ignore[attr-defined]
    counted_clients = {
        sample.labels["client"]
        for metric in registry.collect()
        if metric.name == NAMES.client_requests_total.removesuffix("_total")
        for sample in metric.samples
    }
    assert counted_clients == {"risk", "ops"}  # the 401 and the scrape belong to no client


def test_the_exposition_says_when_each_clients_keys_run_out(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path
) -> None:
    path = tmp_path / "keys"
    march = datetime(2027, 3, 1, tzinfo=UTC)
    path.write_text(
        key_lines.key_line("contractor", key_lines.new_key(), march)
        + "\n"
        + key_lines.key_line("risk", key_lines.new_key())
        + "\n"
    )
    with keyed_client(toy_trained[0], path) as client:
        keys = client.app.state.api_keys  # type: ignore[attr-defined]
        keys.reload_seconds = 0  # read again at every scrape
        expiry = NAMES.api_key_expiry_timestamp_seconds
        assert metric_sample(client, expiry, client="contractor") == march.timestamp()
        assert f'{expiry}{{client="risk"}}' not in client.get("/metrics").text  # never expires
        staged = tmp_path / "keys.new"
        staged.write_text(key_lines.key_line("risk", key_lines.new_key(), march) + "\n")
        staged.replace(path)  # contractor revoked; risk's key now expires
        exposition = client.get("/metrics").text
        assert metric_sample(client, expiry, client="risk") == march.timestamp()
    assert "contractor" not in exposition


def test_a_key_sent_without_bearer_is_in_neither_the_401_nor_the_log(
    toy_trained: tuple[ModelArtifact, Split],
    risk_key: tuple[Path, str],
    restore_root_logger: None,
) -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", "json", "toy", stream)
    path, key = risk_key
    with keyed_client(toy_trained[0], path, access_log="all", log_format="json") as client:
        wait_ready(client)
        response = client.post("/predict", json=ROW, headers={"authorization": key})
    assert response.status_code == 401
    assert response.json()["fields"] == [
        {
            "field": "header.Authorization",
            "problem": "the scheme is missing: send 'Authorization: Bearer <key>', not the key alone",
        }
    ]
    said = response.text + stream.getvalue()
    assert "unauthenticated" in stream.getvalue()  # the refusal is logged, without the key
    assert not [key[start : start + 6] for start in range(len(key) - 5) if key[start : start + 6] in said]


def test_a_proxys_basic_authorization_leaves_the_x_api_key_to_be_read(
    client: TestClient, risk_key: tuple[Path, str]
) -> None:
    headers = {"authorization": "Basic dXNlcjpwYXNz", "x-api-key": risk_key[1]}
    assert client.post("/predict", json=ROW, headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("header", "field"), [("authorization", "Authorization"), ("x-api-key", "X-API-Key")]
)
def test_a_credential_header_sent_twice_is_a_401_not_the_last_one_taken(
    client: TestClient, risk_key: tuple[Path, str], header: str, field: str
) -> None:
    value = f"Bearer {risk_key[1]}" if header == "authorization" else risk_key[1]
    response = client.post("/predict", json=ROW, headers=[(header, "Bearer mlp_other"), (header, value)])
    assert response.status_code == 401
    assert response.json()["fields"] == [
        {"field": f"header.{field}", "problem": "sent 2 times: send it once"}
    ]


def test_a_keys_file_read_again_with_an_expiry_past_the_calendar_fails_no_request(
    toy_trained: tuple[ModelArtifact, Split], risk_key: tuple[Path, str], tmp_path: Path
) -> None:
    path, key = risk_key
    with keyed_client(toy_trained[0], path) as client:
        wait_ready(client)
        client.app.state.api_keys.reload_seconds = 0  # type: ignore[attr-defined]
        staged = tmp_path / "keys.new"
        staged.write_text(f"{path.read_text()}carol:sha256:{'0' * 64}:expires=9999-12-31T23:00:00-05:00\n")
        staged.replace(path)
        assert client.post("/predict", json=ROW, headers={"x-api-key": key}).status_code == 200
        assert client.get("/metrics").status_code == 200
