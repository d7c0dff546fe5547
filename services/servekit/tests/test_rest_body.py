"""Compressed request bodies: gzip and deflate decoded within the body limit; others refused."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient
from raw_asgi import RawRequest
from toy import TOY

from servekit.admission import AdmissionLimit
from servekit.errors import ServekitError
from servekit.metrics.names import ACCESS_LOGGER, MetricNames
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rest.body import FEED_BYTES, MAX_MEMBERS, decompress
from servekit.rest.telemetry import endpoint_label
from servekit.settings import load_settings
from servekit.testing import metric_sample, wait_ready
from servekit.training.splitting import Split

#: toy_client's limit (conftest): 4096 bytes, compressed or not.
LIMIT = 4096
ROW = {"x": 3.0, "color": "red"}
BATCH = {"instances": [ROW, {"x": 1.0, "color": "blue"}]}
JSON = {"content-type": "application/json"}
NAMES = MetricNames("toy")


def admission_of(client: TestClient) -> AdmissionLimit:
    return client.app.state.admission  # type: ignore[attr-defined,no-any-return]


def encoded(body: object, coding: str) -> bytes:
    raw = json.dumps(body).encode()
    return gzip.compress(raw) if coding in ("gzip", "x-gzip") else zlib.compress(raw)


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "GZip"])
def test_a_compressed_body_predicts_as_the_plain_one(toy_client: TestClient, coding: str) -> None:
    plain = toy_client.post("/predict/batch?explain=true", json=BATCH)
    compressed = toy_client.post(
        "/predict/batch?explain=true",
        content=encoded(BATCH, coding.lower()),
        headers={**JSON, "content-encoding": coding},
    )
    assert plain.status_code == compressed.status_code == 200, compressed.text
    assert compressed.json() == plain.json()


def test_identity_is_the_plain_body(toy_client: TestClient) -> None:
    response = toy_client.post(
        "/predict", content=json.dumps(ROW), headers={**JSON, "content-encoding": "identity"}
    )
    assert response.status_code == 200
    assert response.json()["value"] == toy_client.post("/predict", json=ROW).json()["value"]


def test_gzip_members_one_after_the_other_are_one_body(toy_client: TestClient) -> None:
    raw = json.dumps(ROW).encode()
    two_members = gzip.compress(raw[:7]) + gzip.compress(raw[7:])
    response = toy_client.post("/predict", content=two_members, headers={**JSON, "content-encoding": "gzip"})
    assert response.status_code == 200, response.text


def test_a_body_of_more_members_than_a_client_sends_is_400_naming_the_count(toy_client: TestClient) -> None:
    # Empty members cost 20 bytes each: a body under the limit held tens of thousands, each
    # a decoder and a copy of the rest of the body, which held the event loop for a second.
    headers = {**JSON, "content-encoding": "gzip"}
    members = gzip.compress(json.dumps(ROW).encode()) + gzip.compress(b"") * (MAX_MEMBERS - 1)
    assert toy_client.post("/predict", content=members, headers=headers).status_code == 200
    response = toy_client.post("/predict", content=members + gzip.compress(b""), headers=headers)
    assert response.status_code == 400, response.text
    problem = f"more than {MAX_MEMBERS} gzip members one after the other; compress the body once"
    assert response.json()["fields"] == [{"field": "body", "problem": problem}]


def test_members_longer_than_what_a_decoder_is_fed_at_a_time_are_decoded_whole() -> None:
    parts = [random.Random(seed).randbytes(FEED_BYTES + 1000 * seed) for seed in range(3)]
    body = b"".join(gzip.compress(part) for part in parts)
    assert decompress(body, "gzip", len(body) * 2) == b"".join(parts)
    with pytest.raises(ServekitError, match="the stream ends early"):
        decompress(body[: FEED_BYTES * 2], "gzip", len(body) * 2)


def test_a_body_that_inflates_past_the_limit_is_413(toy_client: TestClient) -> None:
    # 4 MB of spaces compress to about 4 KB of gzip: a small "zip bomb".
    bomb = gzip.compress(b"{" + b" " * 4_000_000 + b"}", compresslevel=9)
    bomb = bomb if len(bomb) <= LIMIT else gzip.compress(b"{" + b" " * 1_000_000 + b"}", compresslevel=9)
    assert len(bomb) <= LIMIT
    response = toy_client.post("/predict", content=bomb, headers={**JSON, "content-encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["fields"] == [
        {"field": "body", "problem": f"larger than the limit of {LIMIT} bytes once decompressed"}
    ]


def test_the_limit_holds_for_the_compressed_body_too(toy_client: TestClient) -> None:
    incompressible = gzip.compress(random.Random(0).randbytes(2 * LIMIT))
    assert len(incompressible) > LIMIT
    response = toy_client.post(
        "/predict", content=incompressible, headers={**JSON, "content-encoding": "gzip"}
    )
    assert response.status_code == 413
    assert "once decompressed" not in response.json()["message"]


@pytest.mark.parametrize(
    ("coding", "body", "says"),
    [
        ("gzip", json.dumps(ROW).encode(), "not valid gzip data"),
        ("gzip", gzip.compress(json.dumps(ROW).encode(), mtime=0)[:-12], "the stream ends early"),
        ("deflate", gzip.compress(json.dumps(ROW).encode(), mtime=0), "not valid deflate data"),
        ("gzip", gzip.compress(json.dumps(ROW).encode(), mtime=0) + b"trailing", "not valid gzip data"),
    ],
    # Named, not dumped: a gzip header holds its mtime, and pytest-xdist's workers must
    # collect the same test ids.
    ids=["plain-labelled-gzip", "truncated-gzip", "gzip-labelled-deflate", "gzip-with-trailing-bytes"],
)
def test_a_body_not_in_its_coding_is_400_naming_the_body(
    toy_client: TestClient, coding: str, body: bytes, says: str
) -> None:
    response = toy_client.post("/predict", content=body, headers={**JSON, "content-encoding": coding})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error"] == "invalid_encoding"
    assert [problem["field"] for problem in error["fields"]] == ["body"]
    assert says in error["message"]


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip, gzip", "compress"])
def test_an_unsupported_coding_is_415_naming_the_header(toy_client: TestClient, coding: str) -> None:
    response = toy_client.post(
        "/predict/batch", content=json.dumps(BATCH), headers={**JSON, "content-encoding": coding}
    )
    assert response.status_code == 415
    error = response.json()
    assert error["error"] == "unsupported_encoding"
    (problem,) = error["fields"]
    assert problem["field"] == "headers.content-encoding"
    assert repr(coding) in problem["problem"]


@pytest.mark.parametrize("lines", [("identity", "gzip"), ("gzip", "gzip")])
def test_codings_on_two_header_lines_are_the_list_they_make(
    toy_client: TestClient, lines: tuple[str, str]
) -> None:
    """A field sent on two lines is one comma-joined list (RFC 9110, 5.3): reading the first line
    alone decoded nothing, or once, and answered a JSON syntax error at column 1."""
    body = json.dumps(BATCH).encode()
    for coding in lines:
        body = gzip.compress(body) if coding == "gzip" else body
    headers = [("content-type", "application/json"), *(("content-encoding", coding) for coding in lines)]
    response = toy_client.post("/predict/batch", content=body, headers=headers)
    assert response.status_code == 415, response.text
    (problem,) = response.json()["fields"]
    assert problem["field"] == "headers.content-encoding"
    assert repr(", ".join(lines)) in problem["problem"]


def test_the_openapi_document_lists_the_encoding_errors(toy_client: TestClient) -> None:
    paths = toy_client.get("/openapi.json").json()["paths"]
    for path in ("/predict", "/predict/batch"):
        assert {"400", "413", "415", "422"} <= set(paths[path]["post"]["responses"])


# A body that never arrives whole: answered (or, its client gone, counted) without a 5xx.

UPLOAD_PATHS = ["/predict", "/predict/batch", "/v2/models/toy/infer"]


def uploading_client(artifact: ModelArtifact, **settings: Any) -> TestClient:
    return TestClient(create_app(TOY, load_settings("toy", **settings), source=lambda: artifact))


@pytest.mark.parametrize("path", UPLOAD_PATHS)
def test_a_client_gone_mid_body_is_counted_499_and_logged_as_its_doing(
    toy_trained: tuple[ModelArtifact, Split], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    artifact, _ = toy_trained

    async def leave_mid_body(app: Any) -> RawRequest:
        request = RawRequest(path, content_length=5000)
        request.body(b'{"inputs":[', more=True)
        request.disconnect()
        await asyncio.wait_for(request.start(app), 30)
        return request

    with uploading_client(artifact) as client, caplog.at_level(logging.INFO):
        wait_ready(client)
        request = client.portal.call(leave_mid_body, client.app)
        labels = {"endpoint": endpoint_label(path), "method": "POST"}
        assert metric_sample(client, NAMES.requests_total, **labels, status="499") == 1
        assert not metric_sample(client, NAMES.requests_total, **labels, status="500")
        # The time was the client's upload: no sample of the service's latency.
        latency = f"{NAMES.prediction_latency_seconds}_count"
        assert metric_sample(client, latency, endpoint=endpoint_label(path)) == 0
        assert admission_of(client).in_flight == 0
    assert request.status == 499
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [r.levelno for r in lines] == [logging.WARNING]
    assert "client_closed_request: the client closed the connection after sending 11 of 5000" in (
        lines[0].getMessage()
    )
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("path", UPLOAD_PATHS)
def test_a_body_slower_than_the_deadline_is_408_and_its_connection_closed(
    toy_trained: tuple[ModelArtifact, Split], path: str
) -> None:
    artifact, _ = toy_trained

    async def stall(app: Any) -> RawRequest:
        request = RawRequest(path, content_length=400)
        request.body(b"{", more=True)  # and nothing more, ever
        await asyncio.wait_for(request.start(app), 30)
        return request

    with uploading_client(artifact, body_timeout_seconds=0.01) as client:
        wait_ready(client)
        request = client.portal.call(stall, client.app)
        labels = {"endpoint": endpoint_label(path), "method": "POST", "status": "408"}
        assert metric_sample(client, NAMES.requests_total, **labels) == 1
        latency = f"{NAMES.prediction_latency_seconds}_count"
        assert metric_sample(client, latency, endpoint=endpoint_label(path)) == 0
        assert admission_of(client).in_flight == 0
        # A whole body is answered as ever under the same deadline.
        assert client.post("/predict", json=ROW).status_code == 200
    assert request.status == 408
    assert request.headers["connection"] == "close"
    body = json.loads(request.text)
    message = body["message"] if "message" in body else body["error"]
    assert "not received in full within 0.01 s" in message
    assert "TOY_BODY_TIMEOUT_SECONDS" in message


@pytest.mark.parametrize("charset", ["utf-16", "UTF-16LE", '"latin-1"', "iso-8859-1", ""])
def test_a_body_said_to_be_in_another_charset_is_a_415_naming_it(
    toy_client: TestClient, charset: str
) -> None:
    """JSON is read as UTF-8 whatever the header says: a UTF-16 body was a 422 "Invalid JSON", which
    sent its sender looking for a syntax error."""
    named = charset.strip('"')
    body = json.dumps(ROW).encode("utf-16" if named.lower().startswith("utf-16") else "utf-8")
    infer = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [3.0]}]}
    for path, sent in (("/predict", body), ("/v2/models/toy/infer", json.dumps(infer).encode())):
        response = toy_client.post(
            path, content=sent, headers={"content-type": f"application/json; charset={charset}"}
        )
        assert response.status_code == 415, (path, response.text)
        problem = (
            f"charset {named!r}: the body is read as UTF-8 JSON; send it in UTF-8 (charset=utf-8, or none)"
        )
        assert response.json()["fields"] == [{"field": "headers.content-type", "problem": problem}]


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", 'application/json;Charset="UTF-8"']
)
def test_a_body_said_to_be_utf_8_is_read(toy_client: TestClient, content_type: str) -> None:
    response = toy_client.post(
        "/predict", content=json.dumps(ROW).encode(), headers={"content-type": content_type}
    )
    assert response.status_code == 200, response.text
