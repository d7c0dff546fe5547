"""Read-only API keys (``scope=read``): on-call reads a pod's metadata, and runs no model."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from toy import TOY

from servekit import logs
from servekit.auth.key_lines import KeysFileError, digest, key_id, key_line, new_key, parse_keys
from servekit.auth.scopes import Key
from servekit.local import free_port
from servekit.metrics import MetricNames
from servekit.metrics.names import GRPC_INFER, GRPC_METHOD, grpc_endpoint
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.rpc import open_inference_pb2 as pb
from servekit.rpc.server import SERVICE
from servekit.rpc.status import STATUS_CODES
from servekit.settings import load_settings
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
DIGEST = "0" * 64
MARCH = datetime(2027, 3, 1, tzinfo=UTC)


# The keys file ----------------------------------------------------------------------------------


def test_a_read_only_line_is_written_after_its_expiry_and_read_back() -> None:
    key = new_key()
    line = key_line("oncall", key, MARCH, scope="read")
    assert line == f"oncall:sha256:{digest(key)}:expires=2027-03-01:scope=read"
    assert parse_keys(line, "keys") == {digest(key): Key("oncall", MARCH, "read")}
    never = key_line("oncall", key, scope="read")
    assert never == f"oncall:sha256:{digest(key)}:scope=read"
    assert parse_keys(never, "keys")[digest(key)] == Key("oncall", None, "read")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("", Key("risk")),
        (":expires=2027-03-01", Key("risk", MARCH)),
        (":expires=2027-03-01T12:00:00+01:00", Key("risk", datetime(2027, 3, 1, 11, tzinfo=UTC))),
        (
            ":scope=read:expires=2027-03-01T11:00:00Z",
            Key("risk", datetime(2027, 3, 1, 11, tzinfo=UTC), "read"),
        ),
        (
            ":expires=2027-03-01T11:00:00Z:scope=read",
            Key("risk", datetime(2027, 3, 1, 11, tzinfo=UTC), "read"),
        ),
    ],
)
def test_lines_without_a_scope_open_everything_as_before_and_the_fields_come_in_either_order(
    fields: str, expected: Key
) -> None:
    assert parse_keys(f"risk:sha256:{DIGEST}{fields}\n", "keys") == {DIGEST: expected}
    assert expected.opens("/predict", "POST") is (expected.scope is None)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        (
            ":scope=write",
            "keys line 2: scope='write' is not a scope: write scope=read (metadata only), or leave",
        ),
        (":scope=READ", "keys line 2: scope='READ' is not a scope"),
        (
            ":scope=",
            "keys line 2: not '<client>:sha256:<64 lower-case hex digits>[:expires=<date>][:scope=read]'",
        ),
        (":scope=read:scope=read", "keys line 2: scope= given twice: give it once"),
        (":expires=2027-03-01:expires=2027-04-01", "keys line 2: expires= given twice"),
        (
            ":role=read",
            "keys line 2: role= is no field of a key line: it takes expires=<date> and scope=read",
        ),
        (":read", "keys line 2: not '<client>"),
        (":scope=read:", "keys line 2: scope='read:' is not a scope"),
        (":expires=2027-03-01:scope=read:x", "keys line 2: scope='read:x' is not a scope"),
    ],
)
def test_a_bad_scope_or_field_is_refused_naming_the_line(fields: str, problem: str) -> None:
    text = f"# on-call\nrisk:sha256:{DIGEST}{fields}\n"
    with pytest.raises(KeysFileError) as refused:
        parse_keys(text, "keys")
    assert str(refused.value).startswith(problem)


def test_a_line_with_a_scope_is_refused_by_key_line_unless_the_scope_is_one() -> None:
    with pytest.raises(ValueError, match="scope='admin' is not a scope"):
        key_line("oncall", new_key(), scope="admin")


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [
        ("/model", "GET"),
        ("/model/card", "GET"),
        ("/v2", "GET"),
        ("/v2/models/{model}", "GET"),
        ("/model", "HEAD"),
        ("other", "GET"),  # a path no endpoint has: the router's 404
        ("other", "HEAD"),
        (grpc_endpoint("ServerMetadata"), GRPC_METHOD),
        (grpc_endpoint("ModelMetadata"), GRPC_METHOD),
    ],
)
def test_a_read_only_key_opens_the_metadata_endpoints(endpoint: str, method: str) -> None:
    assert Key("oncall", scope="read").opens(endpoint, method)


@pytest.mark.parametrize(
    ("endpoint", "method"),
    [
        ("/predict", "POST"),
        ("/predict/batch", "POST"),
        ("/v2/models/{model}/infer", "POST"),
        (GRPC_INFER, GRPC_METHOD),
        ("/model", "POST"),  # a method that could change something, where none is routed today
        ("other", "POST"),  # what a GET may not do on a path no endpoint has
        ("other", GRPC_METHOD),
        ("/predict", "GET"),
    ],
)
def test_a_read_only_key_opens_nothing_that_runs_the_model(endpoint: str, method: str) -> None:
    assert not Key("oncall", scope="read").opens(endpoint, method)
    assert Key("risk").opens(endpoint, method)


# Over HTTP --------------------------------------------------------------------------------------


@pytest.fixture
def keys() -> dict[str, str]:
    return {"oncall": new_key(), "risk": new_key()}


def keys_file(path: Path, keys: dict[str, str]) -> Path:
    path.write_text(f"{key_line('oncall', keys['oncall'], scope='read')}\n{key_line('risk', keys['risk'])}\n")
    return path


@pytest.fixture
def client(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path, keys: dict[str, str]
) -> Iterator[TestClient]:
    settings = load_settings("toy", api_keys_file=str(keys_file(tmp_path / "keys", keys)))
    with TestClient(create_app(TOY, settings, source=lambda: toy_trained[0])) as client:
        wait_ready(client)
        yield client


def test_a_read_only_key_reads_every_metadata_endpoint(client: TestClient, keys: dict[str, str]) -> None:
    oncall = {"authorization": f"Bearer {keys['oncall']}"}
    model = client.get("/model", headers=oncall)
    assert model.status_code == 200
    version = model.json()["version"]
    for path in ("/model/card", "/v2", "/v2/models/toy", f"/v2/models/toy/versions/{version}"):
        assert client.get(path, headers=oncall).status_code == 200, path
    assert client.get("/model", headers={"x-api-key": keys["oncall"]}).status_code == 200
    answered = {"client": "oncall", "key_id": key_id(digest(keys["oncall"])), "status": "200"}
    assert metric_sample(client, NAMES.client_requests_total, endpoint="/model", **answered) == 2


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/predict", ROW),
        ("POST", "/predict?explain=true", ROW),
        ("POST", "/predict/batch", {"instances": [ROW]}),
        ("POST", "/predict/batch?explain=true", {"instances": [ROW]}),
        ("POST", "/v2/models/toy/infer", INFER),
        ("POST", "/v2/models/toy/versions/1/infer", INFER),
        ("POST", "/predict/", ROW),  # no endpoint's path, but not a GET
        ("GET", "/predict", None),
        ("GET", "/predic%74", None),  # the path decoded is the endpoint's
    ],
)
def test_a_read_only_key_gets_a_403_naming_its_client_for_what_runs_the_model(
    client: TestClient, keys: dict[str, str], method: str, path: str, body: Any
) -> None:
    response = client.request(method, path, json=body, headers={"authorization": f"Bearer {keys['oncall']}"})
    assert response.status_code == 403
    assert "www-authenticate" not in response.headers  # the key is right; another would not help
    problem = "oncall's key reads metadata only (scope=read): it opens GET /model, /model/card, /v2"
    if path.startswith("/v2/"):  # the Open Inference Protocol's error shape
        assert response.json()["code"] == "forbidden"
        assert problem in response.json()["error"]
    else:
        assert response.json()["error"] == "forbidden"
        [field] = response.json()["fields"]
        assert field["field"] == "header.Authorization"
        assert field["problem"].startswith(problem)
        assert problem in response.json()["message"]
        assert "predictions need a key without a scope" in response.json()["message"]


@pytest.mark.parametrize("root_path", ["", "/toy"])
def test_a_read_only_key_gets_what_a_full_key_gets_on_a_path_no_endpoint_has(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path, keys: dict[str, str], root_path: str
) -> None:
    """``GET /model/`` was a 403 for a read key and a 307 to /model for a full one; with no redirect
    of a trailing slash any more, it is the router's 404 to both. Nothing that runs the model is
    reached that way: a GET of a prediction's path is refused."""
    settings = load_settings(
        "toy", api_keys_file=str(keys_file(tmp_path / "keys", keys)), root_path=root_path
    )
    with TestClient(create_app(TOY, settings, source=lambda: toy_trained[0])) as client:
        wait_ready(client)
        for path, status in (("/model/", 404), ("/no/such/path", 404), ("/predict/", 404)):
            answers = [
                client.request(
                    method, root_path + path, headers={"x-api-key": keys[who]}, follow_redirects=False
                )
                for who in ("oncall", "risk")
                for method in ("GET", "HEAD")
            ]
            assert {a.status_code for a in answers} == {status}, path
        # A GET of the prediction's own path: refused to the read key.
        headers = {"x-api-key": keys["oncall"]}
        assert client.get(root_path + "/predict", headers=headers).status_code == 403
        assert client.get(root_path + "/model", headers=headers).status_code == 200


def test_a_403_is_counted_apart_from_the_401s_and_as_its_clients(
    client: TestClient, keys: dict[str, str]
) -> None:
    assert client.post("/predict", json=ROW, headers={"x-api-key": keys["oncall"]}).status_code == 403
    assert client.post("/predict", json=ROW).status_code == 401
    assert client.post("/predict", json=ROW, headers={"x-api-key": keys["risk"]}).status_code == 200
    requests = {"endpoint": "/predict", "method": "POST"}
    assert metric_sample(client, NAMES.requests_total, **requests, status="403") == 1
    assert metric_sample(client, NAMES.requests_total, **requests, status="401") == 1
    oncall = {"client": "oncall", "key_id": key_id(digest(keys["oncall"])), "endpoint": "/predict"}
    assert metric_sample(client, NAMES.client_requests_total, **oncall, status="403") == 1


def test_a_refused_read_only_request_is_logged_as_its_clients(
    toy_trained: tuple[ModelArtifact, Split],
    tmp_path: Path,
    keys: dict[str, str],
    restore_root_logger: None,
) -> None:
    stream = io.StringIO()
    logs.configure_logging("INFO", "json", "toy", stream)
    settings = load_settings(
        "toy", api_keys_file=str(keys_file(tmp_path / "keys", keys)), access_log="all", log_format="json"
    )
    with TestClient(create_app(TOY, settings, source=lambda: toy_trained[0])) as client:
        wait_ready(client)
        headers = {"x-api-key": keys["oncall"], "x-request-id": "oncall-1"}
        assert client.post("/predict", json=ROW, headers=headers).status_code == 403
    text = stream.getvalue()
    assert keys["oncall"] not in text
    (line,) = [json.loads(line) for line in text.splitlines() if '"oncall-1"' in line]
    assert (line["client"], line["key_id"]) == ("oncall", key_id(digest(keys["oncall"])))
    assert line["error"]["code"] == "forbidden"


# Over gRPC --------------------------------------------------------------------------------------


def test_a_403_is_permission_denied_over_grpc() -> None:
    assert STATUS_CODES[403] == grpc.StatusCode.PERMISSION_DENIED


@contextmanager
def grpc_served(
    artifact: ModelArtifact, path: Path, keys: dict[str, str]
) -> Iterator[tuple[TestClient, grpc.Channel]]:
    settings = load_settings("toy", grpc_port=free_port(), api_keys_file=str(keys_file(path, keys)))
    with TestClient(create_app(TOY, settings, source=lambda: artifact)) as client:
        wait_ready(client)
        with grpc.insecure_channel(f"127.0.0.1:{client.app.state.grpc_port}") as channel:  # type: ignore[attr-defined]
            yield client, channel


def call(channel: grpc.Channel, method: str, request: Any, response: Any, key: str) -> Any:
    rpc = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=response.FromString,
    )
    return rpc(request, metadata=(("authorization", f"Bearer {key}"),))


def infer_request() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="toy")
    request.inputs.add(name="x", datatype="FP64", shape=[1]).contents.fp64_contents.append(3.0)
    request.inputs.add(name="color", datatype="BYTES", shape=[1]).contents.bytes_contents.append(b"red")
    return request


def test_over_grpc_a_read_only_key_reads_metadata_and_is_denied_infer(
    toy_trained: tuple[ModelArtifact, Split], tmp_path: Path, keys: dict[str, str]
) -> None:
    with grpc_served(toy_trained[0], tmp_path / "keys", keys) as (client, channel):
        server = call(
            channel, "ServerMetadata", pb.ServerMetadataRequest(), pb.ServerMetadataResponse, keys["oncall"]
        )
        model = call(
            channel,
            "ModelMetadata",
            pb.ModelMetadataRequest(name="toy"),
            pb.ModelMetadataResponse,
            keys["oncall"],
        )
        with pytest.raises(grpc.RpcError) as denied:
            call(channel, "ModelInfer", infer_request(), pb.ModelInferResponse, keys["oncall"])
        answered = call(channel, "ModelInfer", infer_request(), pb.ModelInferResponse, keys["risk"])
    assert server.name == "toy"
    assert model.name == "toy"
    assert answered.outputs
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "metadata.authorization: oncall's key reads metadata only (scope=read)" in denied.value.details()
    refused = {"endpoint": GRPC_INFER, "method": GRPC_METHOD, "status": "403"}
    assert metric_sample(client, NAMES.requests_total, **refused) == 1
    oncall = {"client": "oncall", "key_id": key_id(digest(keys["oncall"])), "endpoint": GRPC_INFER}
    assert metric_sample(client, NAMES.client_requests_total, **oncall, status="403") == 1
