"""A Vertex AI Custom Prediction Routine handler and predictor on the service's own model class.

Vertex AI's CPR model server (``google.cloud.aiplatform.prediction.model_server``) creates its
handler once, ``handler_class(os.environ["AIP_STORAGE_URI"], predictor=predictor_class)``, and
awaits ``handler.handle(request)`` per request. ``google-cloud-aiplatform`` is NOT needed to import
or test this module: both classes implement the SDK's interfaces by duck typing. ``load``
downloads a ``gs://`` URI with the SDK's ``prediction_utils.download_model_artifacts`` (imported
only then) and reads a local path directly.

Building the image: ``LocalModel.build_cpr_model`` wants the files defining the handler and the
predictor inside its ``src_dir`` (``ValueError: The file implementing "ServekitHandler" must be in
"<src_dir>"`` otherwise), and copies ``src_dir`` into the image, where the server imports them
from the copy. The ``code/`` directory of ``mlp package-sagemaker``'s ``model.tar.gz`` is that
directory: servekit and the service as source, and ``requirements.txt`` pinned as trained. Import
the classes from it, not from an installed servekit::

    mlp package-sagemaker nlpinsight --model-uri models:/nlpinsight/3 --output model.tar.gz
    mkdir pkg && tar -xzf model.tar.gz -C pkg
    gcloud storage cp -r pkg/* gs://BUCKET/nlpinsight/3/   # the model's artifactUri

    import sys
    sys.path.insert(0, "pkg/code")  # before anything imports servekit
    from google.cloud.aiplatform.prediction import LocalModel
    from servekit.managed.vertex import ServekitHandler, ServekitPredictor

    LocalModel.build_cpr_model(
        "pkg/code", "REGION-docker.pkg.dev/PROJECT/REPO/nlpinsight:3",
        predictor=ServekitPredictor, handler=ServekitHandler,
        requirements_path="pkg/code/requirements.txt",
        base_image="python:3.11",  # the SDK's default is 3.10; servekit needs 3.11
    )

Upload the model with ``artifact_uri="gs://BUCKET/nlpinsight/3/"``: Vertex AI sets
``AIP_STORAGE_URI`` to it, and it must hold the unpacked package (``MLmodel``, the model file and
``servekit.json``, which names the service and the registered version; without ``servekit.json``
set ``MLP_SERVICE`` in the container's environment). Running the image elsewhere (``docker run``,
``LocalModel.deploy_to_local_endpoint(artifact_uri=...)``), set ``AIP_STORAGE_URI`` yourself: a
``gs://`` URI or a directory in the container; without it the handler refuses to start, naming it.

Request ``{"instances": [{...}, ...], "parameters": {"explain": true, "reasons": 3}}``
(``parameters`` and each of them optional, as ``?explain=`` and ``?reasons=`` over REST);
response: the JSON of the REST ``POST /predict/batch`` for the same instances and options
(``{"model": ..., "predictions": [...]}``, Vertex's required ``predictions`` key included).

Bad input, with :class:`ServekitHandler`: the REST status and error body; for the instances, the
body's size (``<SVC>_MAX_BODY_BYTES``, read as REST reads it, a gzip body included) and the batch
limit, the very body REST answers. ``parameters`` (query parameters over REST) and a body that is
no object are worded for this transport, naming the field all the same. With the SDK's default
``PredictionHandler`` and :class:`ServekitPredictor` alone, the predictor raises
``fastapi.HTTPException`` with the REST status and the REST error body as its ``detail``, which the
CPR server (FastAPI) wraps: ``{"detail": {"error": ..., "fields": [...]}}``; that handler also
parses the JSON itself (``json.loads``: a key given twice keeps its last value, unnoticed), reads
the whole body whatever its size (``<SVC>_MAX_BODY_BYTES`` is not applied) and answers a body that
is not JSON with its own 400.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from typing import Any

import orjson
import pydantic_core

from servekit.errors import ServekitError, invalid_field
from servekit.inference import encode_json, reject_duplicate_keys
from servekit.managed.common import Asked, LoadedModel, as_json, load_model_dir, require_object
from servekit.model import Record
from servekit.rest.body import read_body

JSON = "application/json"


class ServekitPredictor:
    """CPR ``Predictor`` (load / preprocess / predict / postprocess), duck-typed."""

    def __init__(self, service: str | None = None) -> None:
        #: Which service; default ``servekit.json`` in the artifacts, else ``$MLP_SERVICE``.
        self.service = service
        self._model: LoadedModel | None = None

    @property
    def model(self) -> LoadedModel:
        if self._model is None:
            raise RuntimeError("load() has not been called")
        return self._model

    def load(self, artifacts_uri: str | None) -> None:
        if not artifacts_uri:
            # The CPR server passes os.environ.get("AIP_STORAGE_URI"): None when it is unset.
            raise ValueError(
                "AIP_STORAGE_URI is not set: it names the model's artifacts, a gs:// URI or a directory "
                "holding the unpacked model.tar.gz of mlp package-sagemaker (MLmodel, the model file "
                "and servekit.json, or MLP_SERVICE set); Vertex AI sets it to the model's artifactUri, "
                "elsewhere set it yourself"
            )
        local = artifacts_uri
        if artifacts_uri.startswith("gs://"):
            # Only here: google-cloud-aiplatform is not needed otherwise (the CPR image has it).
            prediction_utils = importlib.import_module("google.cloud.aiplatform.utils.prediction_utils")
            local = tempfile.mkdtemp(prefix="servekit-vertex-")
            cwd = os.getcwd()
            os.chdir(local)  # download_model_artifacts copies into the working directory
            try:
                prediction_utils.download_model_artifacts(artifacts_uri)
            finally:
                os.chdir(cwd)
        self._model = load_model_dir(local, self.service)

    def preprocess(self, prediction_input: Any) -> tuple[list[Record], Asked]:
        """Validate as the REST service does; ``HTTPException`` with its status and body if bad."""
        try:
            return self.validated(prediction_input)
        except ServekitError as exc:
            from fastapi import HTTPException

            raise HTTPException(status_code=exc.status_code, detail=exc.body()) from exc

    def validated(self, prediction_input: Any, body: bytes | None = None) -> tuple[list[Record], Asked]:
        """Records and options of a parsed request; a ServekitError (4xx) naming the field if bad.

        With ``body``, the bytes ``prediction_input`` was parsed from: a key given twice in them is
        refused as the REST service refuses it, once the records validate.
        """
        envelope = dict(require_object(prediction_input))
        parameters = envelope.pop("parameters", None)
        if parameters is None:
            parameters = {}
        elif not isinstance(parameters, dict):
            # ``or {}`` took 0, "", [] and false for none, dropping what the client asked for.
            raise invalid_field(
                "parameters", f'{as_json(parameters)} is not an object such as {{"explain": true}}'
            )
        asked = Asked.of(parameters, "parameters.")
        records = self.model.validated(pydantic_core.to_json(envelope, inf_nan_mode="constants"))
        if body is not None:
            reject_duplicate_keys(body)
        return records, asked

    def predict(self, instances: tuple[list[Record], Asked]) -> dict[str, Any]:
        records, asked = instances
        return self.model.predict(records, asked)

    def postprocess(self, prediction_results: dict[str, Any]) -> dict[str, Any]:
        # Through servekit's encoder and back: plain JSON types for the CPR serializer
        # (``json.dumps``), and the very numbers the REST service would send.
        result: dict[str, Any] = orjson.loads(encode_json(prediction_results))
        return result


class ServekitHandler:
    """CPR ``Handler``, duck-typed: the request's own bytes in, the REST bodies out.

    The SDK's ``PredictionHandler`` can only answer a refusal as FastAPI answers an
    ``HTTPException`` (``{"detail": ...}``); this one returns the REST service's error body and
    status, and parses the JSON as the REST service does (NaN allowed, a repeated key refused).
    """

    def __init__(self, artifacts_uri: str | None, predictor: type[ServekitPredictor] | None = None) -> None:
        self.predictor = (predictor or ServekitPredictor)()
        self.predictor.load(artifacts_uri)

    async def handle(self, request: Any) -> Any:
        from fastapi import Response

        try:
            # As REST reads a body: no more than <SVC>_MAX_BODY_BYTES of it (or of it decompressed).
            body = await read_body(request, self.predictor.model.max_body_bytes)
            try:
                parsed = pydantic_core.from_json(body, allow_inf_nan=True)
            except ValueError:
                self.predictor.model.validated(body)  # the REST 422 for malformed JSON
                raise
            instances = self.predictor.validated(parsed, body)
        except ServekitError as exc:
            return Response(encode_json(exc.body()), status_code=exc.status_code, media_type=JSON)
        result = self.predictor.predict(instances)
        return Response(encode_json(result), media_type=JSON)
