"""A packaged model as the managed endpoints' own servers run it: their way of loading it and of
turning what the handlers return (or raise) into a response.

The toolkits are not dependencies of this workspace, so each is stood in for by the few lines of
it that decide the response, as of sagemaker-inference 1.10.1 (``Transformer.transform``; MMS and
TorchServe keep one context per model), sagemaker-containers 2.8.6 (``Transformer.transform`` under
Flask, every handler wrapped so that what it raises is a 500) and google-cloud-aiplatform 2.7.0
(``CprModelServer`` awaiting ``handler.handle(request)``).
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import traceback
import types
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import flask
import orjson
import pytest
from fastapi import FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from servekit import registry
from servekit.managed import packaging, sagemaker, vertex
from servekit.managed.common import LoadedModel
from servekit.managed.vertex import ServekitHandler, ServekitPredictor
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import request_rows, train_in_memory, wait_ready

JSON = "application/json"
CSV = "text/csv"
SERVICE = "bankchurn"


class Package:
    def __init__(self, tmp: Path) -> None:
        self.spec = registry.get_service(SERVICE)
        self.artifact, data = train_in_memory(self.spec, rows=400)
        self.rows = request_rows(data, 2)
        self.fields = list(self.spec.request.model_fields)
        model_dir = packaging.save_mlflow_model(
            self.artifact, tmp / "mlflow-model", packaging.installed_pins(["scikit-learn", "skops"])
        )
        package, _ = packaging.build_package(
            SERVICE, model_dir, tmp / "model.tar.gz", packaging.manifest_of(self.artifact)
        )
        self.dir = packaging.extract(package, tmp / "opt-ml-model")

    def csv_row(self, index: int = 0) -> str:
        return ",".join("" if self.rows[index][f] is None else str(self.rows[index][f]) for f in self.fields)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    return Package(tmp_path_factory.mktemp("package"))


@pytest.fixture(scope="module")
def rest(package: Package) -> Iterator[TestClient]:
    artifact = package.artifact
    with TestClient(create_app(package.spec, load_settings(SERVICE), source=lambda: artifact)) as client:
        wait_ready(client)
        yield client


def rest_batch(rest: TestClient, body: bytes) -> tuple[int, bytes]:
    response = rest.post("/predict/batch", content=body, headers={"content-type": JSON})
    return response.status_code, response.content


# -- A package loads where servekit is not installed -----------------------------------------


def site_without_the_workspace(tmp: Path) -> Path:
    """This environment's site-packages, less the workspace's distributions and editable paths."""
    mirror = tmp / "site-packages"
    mirror.mkdir()
    site = Path(metadata.distribution("orjson").locate_file(""))
    for entry in site.iterdir():
        name = entry.name.lower()
        workspace = any(name.startswith(f"{dist}-") or dist in name for dist in packaging.WORKSPACE)
        if entry.suffix == ".pth" or workspace or name.startswith("__editable__"):
            continue
        (mirror / entry.name).symlink_to(entry)
    return mirror


def test_a_package_loads_where_servekit_is_not_installed(package: Package, tmp_path: Path) -> None:
    """As the container loads it: code/ on the path, servekit vendored as source, no metadata."""
    script = f"""
import sys
sys.path[:0] = [{str(package.dir / "code")!r}, {str(site_without_the_workspace(tmp_path))!r}]
from importlib import metadata
try:
    metadata.version("servekit")
    raise SystemExit("servekit's metadata is still visible")
except metadata.PackageNotFoundError:
    pass
import inference
model = inference.model_fn({str(package.dir)!r})
import servekit
from servekit import protocol
print(servekit.__file__)
print(protocol.SERVER_VERSION)
print(type(model).__name__)
"""
    # -S: no site, so neither the editable install's .pth nor its finder is loaded.
    done = subprocess.run([sys.executable, "-S", "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    where, version, loaded = done.stdout.split()
    assert where.startswith(str(package.dir / "code" / "servekit"))
    assert version == metadata.version("servekit")
    assert loaded == "LoadedModel"


def test_the_package_says_which_servekit_it_vendors(package: Package) -> None:
    version = metadata.version("servekit")
    assert (package.dir / "code" / "servekit" / "VERSION").read_text() == f"{version}\n"
    assert orjson.loads((package.dir / "servekit.json").read_bytes())["servekit_version"] == version
    assert "transform_fn" in (package.dir / "code" / "inference.py").read_text()


# -- sagemaker-inference (the PyTorch container; MMS / TorchServe) ---------------------------


class MMSContext:
    """One per model service, as MMS and TorchServe keep it: each request updates it."""

    def __init__(self) -> None:
        self.status: tuple[int, str] | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, index: int, content_type: str) -> None:
        self.content_type = content_type


def stub_module(monkeypatch: pytest.MonkeyPatch, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.UTF8_TYPES = [JSON, CSV]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)
    return module


class SageMakerInference:
    """``sagemaker_inference.transformer.Transformer.transform`` with the package's entry point."""

    def __init__(self, package: Package, monkeypatch: pytest.MonkeyPatch) -> None:
        self.content_types = stub_module(monkeypatch, "sagemaker_inference.content_types")
        self.context = MMSContext()
        self.model = sagemaker.model_fn(str(package.dir))  # validate_and_initialize, first request

    def __call__(self, body: bytes, content_type: str, accept: str = JSON) -> tuple[int, bytes]:
        self.context.status = None
        try:
            data: str | bytes = body
            if content_type in self.content_types.UTF8_TYPES:
                data = body.decode("utf-8")
            # The toolkit passes its context to a transform_fn with a fifth parameter.
            result = sagemaker.transform_fn(self.model, data, content_type, accept, self.context)
            response, self.context.content_type = result if isinstance(result, tuple) else (result, accept)
        except Exception as exc:
            status = getattr(exc, "status_code", 500)
            self.context.set_response_status(status, "error")
            return status, f"{getattr(exc, 'message', exc)}\n{traceback.format_exc()}".encode()
        return (self.context.status or (200, ""))[0], bytes(response)


@pytest.fixture
def mms(package: Package, monkeypatch: pytest.MonkeyPatch) -> SageMakerInference:
    return SageMakerInference(package, monkeypatch)


def test_sagemaker_inference_refusals_are_the_rest_bodies(
    package: Package, rest: TestClient, mms: SageMakerInference
) -> None:
    row = orjson.dumps(package.rows[0])
    for body in (
        orjson.dumps({"instances": [{**package.rows[0], "Age": 150}]}),
        b'{"instances": [',
        # A key given twice: the REST service validates first, then names the repeated key.
        b'{"instances": [{"CreditScore": 619, "CreditScore": 620}]}',
        b'{"instances": [' + row[:-1] + b', "Age": 41}]}',
    ):
        assert mms(body, JSON) == rest_batch(rest, body), body
    status, answered = mms(orjson.dumps({"instances": package.rows}), JSON)
    assert (status, answered) == rest_batch(rest, orjson.dumps({"instances": package.rows}))
    assert mms.context.content_type == JSON
    status, answered = mms(row, "application/x-npy")
    assert status == 415
    assert orjson.loads(answered)["fields"] == [
        {"field": "content-type", "problem": f"expected {JSON} or {CSV}"}
    ]
    status, answered = mms(orjson.dumps({"instances": package.rows}), JSON, CSV)
    assert status == 406
    assert orjson.loads(answered)["fields"] == [
        {"field": "accept", "problem": f"no range takes {JSON} with a weight (q) above 0"}
    ]


def test_sagemaker_inference_latin1_csv_is_a_422_naming_the_body(
    package: Package, mms: SageMakerInference
) -> None:
    latin1 = package.csv_row().replace(package.rows[0]["Geography"], "Fran\xe7e").encode("latin-1")
    status, answered = mms(latin1, CSV)
    assert status == 422, answered
    [field] = orjson.loads(answered)["fields"]
    assert field["field"] == "body"
    assert field["problem"].startswith("not UTF-8 text (byte ")


def test_csv_with_a_byte_order_mark_is_read_as_without(package: Package, mms: SageMakerInference) -> None:
    """Excel's "CSV UTF-8" starts with one: the header is still a header, the first cell a number."""
    header = ",".join(package.fields)
    plain = mms(f"{package.csv_row()}\n".encode(), CSV)
    assert plain[0] == 200
    assert mms(f"\ufeff{header}\r\n{package.csv_row()}\r\n".encode(), CSV) == plain
    assert mms(f"\ufeff{package.csv_row()}\n".encode(), CSV) == plain
    # The handler on its own, as other containers call it (a str, or bytes)
    loaded: LoadedModel = mms.model
    for body in (f"\ufeff{header}\n{package.csv_row()}", f"\ufeff{package.csv_row()}".encode()):
        assert sagemaker.predict_fn(sagemaker.input_fn(body, CSV), loaded)


def test_a_json_body_takes_no_options_in_its_media_type(package: Package, mms: SageMakerInference) -> None:
    """A CSV's media type carries explain and reasons; a JSON body's options are its fields, and
    in its media type they were dropped without a word (a client moving from CSV lost them)."""
    body = orjson.dumps({"instances": package.rows[:1]})
    for content_type, field, problem in (
        (f"{JSON}; explain=true", "content_type.explain", "not a parameter of application/json"),
        (f"{JSON}; reasons=2", "content_type.reasons", "not a parameter of application/json"),
        (f"{JSON}; charset=latin-1", "content_type.charset", '"latin-1" is not supported; send UTF-8'),
    ):
        status, answered = mms(body, content_type)
        assert status == 422, (content_type, answered)
        [named] = orjson.loads(answered)["fields"]
        assert named["field"] == field
        assert named["problem"].startswith(problem)
    assert mms(body, f"{JSON}; charset=UTF-8")[0] == 200


def test_an_accept_list_that_takes_json_is_answered(package: Package, mms: SageMakerInference) -> None:
    body = orjson.dumps({"instances": package.rows[:1]})
    for accept in (f"{JSON}, text/plain, */*", f"text/html,{JSON};q=0.9", "text/html, */*;q=0.1"):
        assert mms(body, JSON, accept)[0] == 200, accept
    # The most specific range decides (RFC 9110, 12.5.1): a wildcard does not undo JSON's q=0.
    for accept in ("text/html", f"text/html, {JSON};q=0", f"{JSON};q=0, */*", "application/*;q=0, */*"):
        assert mms(body, JSON, accept)[0] == 406, accept


def test_an_empty_media_type_parameter_is_no_parameter(package: Package, mms: SageMakerInference) -> None:
    """The grammar allows ``application/json;``: it was a 422 naming a parameter with no name."""
    body = orjson.dumps({"instances": package.rows[:1]})
    assert mms(body, f"{JSON};")[0] == 200
    assert mms(f"{package.csv_row()}\n".encode(), f"{CSV}; ; explain=true")[0] == 200


def test_a_refusal_in_a_batch_of_requests_is_raised_not_set_on_the_first(package: Package) -> None:
    """TorchServe's batching passes the handler no index: a status set on the context would land on
    the first request's answer, and the refused one would be answered 200."""

    class BatchContext(MMSContext):
        request_processor = [object(), object()]

    model = sagemaker.model_fn(str(package.dir))
    context = BatchContext()
    with pytest.raises(sagemaker.InvalidRequest):
        sagemaker.transform_fn(model, b'{"instances": []}', JSON, JSON, context)
    assert context.status is None


def test_a_star_import_gives_the_handlers_a_toolkit_serves_together() -> None:
    # input_fn, predict_fn or output_fn beside transform_fn: both toolkits refuse every request.
    namespace: dict[str, Any] = {}
    exec("from servekit.managed.sagemaker import *", namespace)  # as a hand-written inference.py does
    assert {"model_fn", "transform_fn"} <= namespace.keys()
    assert not {"input_fn", "predict_fn", "output_fn"} & namespace.keys()


# -- sagemaker-containers (the scikit-learn container: gunicorn + Flask) ---------------------


@pytest.fixture
def flask_server(package: Package, monkeypatch: pytest.MonkeyPatch) -> Any:
    content_types = stub_module(monkeypatch, "sagemaker_containers._content_types")
    model = sagemaker.model_fn(str(package.dir))
    app = flask.Flask("inference")

    @app.post("/invocations")
    def invocations() -> Any:
        request = flask.request
        content_type = request.headers.get("Content-Type") or JSON
        data = request.get_data(as_text=content_type in content_types.UTF8_TYPES)
        try:
            result = sagemaker.transform_fn(model, data, content_type, request.headers.get("Accept") or JSON)
        except Exception as exc:
            raise RuntimeError(str(exc)) from exc  # the toolkit's error_wrapper: Flask's 500
        if isinstance(result, tuple):
            return flask.Response(response=result[0], mimetype=result[1])
        return result

    return app.test_client()


def test_sagemaker_containers_refusals_are_4xx_with_the_rest_bodies(
    package: Package, rest: TestClient, flask_server: Any
) -> None:
    def post(body: bytes, content_type: str = JSON, accept: str = JSON) -> Any:
        return flask_server.post(
            "/invocations", data=body, headers={"Content-Type": content_type, "Accept": accept}
        )

    for body in (
        orjson.dumps({"instances": package.rows}),
        orjson.dumps({"instances": [{**package.rows[0], "CreditScore": "abc"}]}),
        b'{"instances": [{"CreditScore": 619, "CreditScore": 620}]}',
    ):
        response = post(body)
        assert (response.status_code, response.data) == rest_batch(rest, body), body
        assert response.mimetype == JSON
    response = post(f"{package.csv_row()},x".encode(), CSV)
    assert response.status_code == 422
    assert orjson.loads(response.data)["fields"][0]["field"] == "instances[0]"
    assert post(b"x", "application/x-npy").status_code == 415
    assert post(orjson.dumps({"instances": package.rows}), JSON, CSV).status_code == 406
    latin1 = package.csv_row().replace(package.rows[0]["Geography"], "Fran\xe7e").encode("latin-1")
    response = post(latin1, CSV)
    assert response.status_code == 422
    assert orjson.loads(response.data)["fields"][0]["field"] == "body"


def test_transform_fn_raises_where_no_server_takes_a_response(package: Package) -> None:
    """The scikit-learn container's multi-model server answers InvalidRequest with its status and message."""
    model = sagemaker.model_fn(str(package.dir))
    with pytest.raises(sagemaker.InvalidRequest) as caught:
        sagemaker.transform_fn(model, b'{"instances": []}', JSON, JSON)
    assert caught.value.status_code == 422
    assert orjson.loads(caught.value.message)["fields"][0]["field"] == "instances"


# -- Vertex AI Custom Prediction Routines ----------------------------------------------------


@pytest.fixture(scope="module")
def predictor(package: Package) -> ServekitPredictor:
    loaded = ServekitPredictor()
    loaded.load(str(package.dir))
    return loaded


@pytest.mark.parametrize("parameters", [0, "", [], False, "explain=true", 1.5, True])
def test_vertex_parameters_not_an_object_are_refused(
    package: Package, predictor: ServekitPredictor, parameters: Any
) -> None:
    with pytest.raises(HTTPException) as caught:
        predictor.preprocess({"instances": package.rows, "parameters": parameters})
    assert caught.value.status_code == 422
    assert [f["field"] for f in caught.value.detail["fields"]] == ["parameters"]


def test_vertex_parameters_null_are_none(package: Package, predictor: ServekitPredictor) -> None:
    _, asked = predictor.preprocess({"instances": package.rows, "parameters": None})
    assert not asked.explain
    assert asked.reasons == 0


@pytest.fixture(scope="module")
def cpr(package: Package) -> TestClient:
    """The CPR model server's predict route with ServekitHandler as its handler class."""
    handler = ServekitHandler(str(package.dir), predictor=ServekitPredictor)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        return await handler.handle(request)

    return TestClient(app)


def test_vertex_handler_answers_the_rest_bodies(package: Package, rest: TestClient, cpr: TestClient) -> None:
    def vertex(body: bytes) -> tuple[int, bytes]:
        response = cpr.post("/predict", content=body, headers={"content-type": JSON})
        return response.status_code, response.content

    assert vertex(orjson.dumps({"instances": package.rows, "parameters": {"reasons": 2}})) == (
        rest.post("/predict/batch", params={"reasons": 2}, json={"instances": package.rows}).status_code,
        rest.post("/predict/batch", params={"reasons": 2}, json={"instances": package.rows}).content,
    )
    for body in (
        orjson.dumps({"instances": [{**package.rows[0], "Age": 150}]}),
        b'{"instances": [',
        b'{"instances": [{"CreditScore": 619, "CreditScore": 620}]}',
        b'{"instances": [' + orjson.dumps(package.rows[0])[:-1] + b', "Age": 41}]}',
        orjson.dumps({"instances": []}),
    ):
        assert vertex(body) == rest_batch(rest, body), body
    status, answered = vertex(orjson.dumps({"instances": package.rows, "parameters": "explain=true"}))
    assert status == 422
    assert [f["field"] for f in orjson.loads(answered)["fields"]] == ["parameters"]


def test_vertex_handler_refuses_a_body_over_the_services_limit_as_rest_does(
    package: Package, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It read any body whole: 256 NLPInsight texts of 4,990 characters (1.28 MB) were answered 200
    where REST answers 413 (``<SVC>_MAX_BODY_BYTES``, 1 MiB by default)."""
    monkeypatch.setenv(f"{SERVICE.upper()}_MAX_BODY_BYTES", "1024")
    artifact = package.artifact
    handler = ServekitHandler(str(package.dir), predictor=ServekitPredictor)
    app = FastAPI()

    @app.post("/predict")
    async def predict(request: Request) -> Any:
        return await handler.handle(request)

    over = orjson.dumps({"instances": package.rows * 6})
    assert len(over) > 1024
    compressed = gzip.compress(over)
    assert len(compressed) < 1024
    vertex = TestClient(app)
    with TestClient(create_app(package.spec, load_settings(SERVICE), source=lambda: artifact)) as rest:
        wait_ready(rest)
        for body, encoding in ((over, {}), (compressed, {"content-encoding": "gzip"})):
            headers = {"content-type": JSON, **encoding}
            expected = rest.post("/predict/batch", content=body, headers=headers)
            assert expected.status_code == 413
            got = vertex.post("/predict", content=body, headers=headers)
            assert (got.status_code, got.content) == (expected.status_code, expected.content)
    assert vertex.post("/predict", content=orjson.dumps({"instances": package.rows[:1]})).status_code == 200


@pytest.mark.parametrize("uri", [None, ""])
def test_vertex_without_aip_storage_uri_is_one_error_naming_it(uri: str | None) -> None:
    """The CPR server passes ``os.environ.get("AIP_STORAGE_URI")``: None was an AttributeError."""
    with pytest.raises(ValueError, match=r"^AIP_STORAGE_URI is not set: "):
        ServekitHandler(uri, predictor=ServekitPredictor)


@pytest.mark.parametrize(
    "spelt", ["9_00", "\uff19\uff10\uff10", "\u0669\u0660\u0660", "900.5x", "0x384", "1e"]
)
def test_csv_numbers_in_other_than_ascii_decimal_are_refused_as_rest_refuses_the_text(
    package: Package, rest: TestClient, mms: SageMakerInference, spelt: str
) -> None:
    """``int()`` read ``9_00``, fullwidth and Arabic-Indic digits as 900."""
    row = package.rows[0]
    cells = [
        spelt if name == "CreditScore" else "" if row[name] is None else str(row[name])
        for name in package.fields
    ]
    expected = rest_batch(rest, orjson.dumps({"instances": [{**row, "CreditScore": spelt}]}))
    assert expected[0] == 422
    assert mms((",".join(cells) + "\n").encode(), CSV) == expected


@pytest.mark.parametrize(
    ("field", "spelt_and_value"),
    [
        ("CreditScore", ("0619", 619)),
        ("CreditScore", ("+619", 619)),
        ("CreditScore", ("\xa0619\xa0", 619)),
        ("CreditScore", (" 619\t", 619)),
        ("Tenure", ("08", 8)),
        ("Balance", (".5", 0.5)),
        ("Balance", ("1.", 1.0)),
        ("Balance", ("1.5E+3", 1500.0)),
        ("Balance", ("+0.0", 0.0)),
    ],
)
def test_csv_numbers_as_exporters_write_them_are_read_as_the_number(
    package: Package,
    rest: TestClient,
    mms: SageMakerInference,
    field: str,
    spelt_and_value: tuple[str, float],
) -> None:
    """Leading zeros (ChicagoTaxi's community area ``08``), a point first or last (Stata's ``.5``),
    a plus sign and a no-break space around a number were read before the CSV was read as RFC 4180,
    then refused as text ("Input should be a valid integer"), where JSON's syntax was asked."""
    spelt, value = spelt_and_value
    row = package.rows[0]
    cells = [
        spelt if name == field else "" if row[name] is None else str(row[name]) for name in package.fields
    ]
    expected = rest_batch(rest, orjson.dumps({"instances": [{**row, field: value}]}))
    assert expected[0] == 200
    assert mms((",".join(cells) + "\n").encode(), CSV) == expected


@pytest.mark.parametrize("spelt", ["NaN", "nan", "-inf", "Infinity"])
def test_csv_not_a_number_and_infinities_are_refused_as_not_finite(
    package: Package, mms: SageMakerInference, spelt: str
) -> None:
    """In float()'s spellings, any case, as before the CSV was read as RFC 4180: ``nan`` and ``-inf``
    had then become text, refused as not "a valid number"."""
    row = package.rows[0]
    cells = [
        spelt if name == "Balance" else "" if row[name] is None else str(row[name]) for name in package.fields
    ]
    status, body = mms((",".join(cells) + "\n").encode(), CSV)
    assert (status, orjson.loads(body)["fields"]) == (
        422,
        [{"field": "instances[0].Balance", "problem": "Input should be a finite number"}],
    )


def test_csv_numbers_in_json_syntax_are_read_as_json_reads_them(
    package: Package, rest: TestClient, mms: SageMakerInference
) -> None:
    row = {**package.rows[0], "CreditScore": 619, "Balance": 1250.5}
    cells = [
        "0.0125e5" if name == "Balance" else "" if row[name] is None else str(row[name])
        for name in package.fields
    ]
    expected = rest_batch(rest, orjson.dumps({"instances": [{**row, "Balance": 1250.0}]}))
    assert expected[0] == 200
    assert mms((",".join(cells) + "\n").encode(), CSV) == expected


def test_the_vertex_recipe_builds_from_the_packages_code_directory(package: Package) -> None:
    """``LocalModel.build_cpr_model`` wants the file of each class inside ``src_dir``, and raised
    ``The file implementing "ServekitHandler" must be in ...`` for the recipe the docstring gave.
    The SDK's check (``prediction_utils.inspect_source_from_class``, 2.7.0) on the recipe's
    import, with this environment's servekit installed beside it."""
    code = package.dir / "code"
    script = f"""
import inspect, sys
from pathlib import Path
sys.path.insert(0, {str(code)!r})
from servekit.managed.vertex import ServekitHandler, ServekitPredictor
for cls in (ServekitHandler, ServekitPredictor):
    source = Path(inspect.getsourcefile(cls)).resolve()
    relative = source.relative_to(Path({str(code)!r}).resolve())  # the SDK's ValueError otherwise
    print(".".join(relative.with_suffix("").parts), cls.__name__)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split("\n")[:2] == [
        "servekit.managed.vertex ServekitHandler",
        "servekit.managed.vertex ServekitPredictor",
    ]
    recipe = vertex.__doc__ or ""
    assert 'sys.path.insert(0, "pkg/code")' in recipe
    assert '"pkg/code", "REGION-docker.pkg.dev' in recipe
    assert all(word in recipe for word in ("AIP_STORAGE_URI", "servekit.json", "MLP_SERVICE"))
