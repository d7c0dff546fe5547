"""A Vertex AI Custom Prediction Routine predictor on the service's own model class.

Vertex AI's CPR model server calls ``Predictor.load(artifacts_uri)`` once, then per request
``postprocess(predict(preprocess(request_dict)))``. ``google-cloud-aiplatform`` is NOT needed to
import or test this module: :class:`ServekitPredictor` implements that interface by duck typing
(the same four methods and signatures as ``google.cloud.aiplatform.prediction.predictor.Predictor``);
to build the CPR image, pass it as ``predictor=`` to ``LocalModel.build_cpr_model``, which only
calls those methods. ``load`` downloads a ``gs://`` URI with the SDK's
``prediction_utils.download_model_artifacts`` (imported only then) and reads a local path directly.

Request ``{"instances": [{...}, ...], "parameters": {"explain": true, "reasons": 3}}``
(``parameters`` and each of them optional, as ``?explain=`` and ``?reasons=`` over REST);
response: the JSON of the REST ``POST /predict/batch`` for the same instances and options
(``{"model": ..., "predictions": [...]}``, Vertex's required ``predictions`` key included). Bad
input raises ``fastapi.HTTPException`` with the REST status and error body, which the CPR server
(FastAPI) returns as is.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from typing import Any

import orjson
import pydantic_core

from servekit.errors import ServekitError
from servekit.inference import encode_json, validate_batch_json
from servekit.managed.common import Asked, LoadedModel, load_model_dir, require_object
from servekit.model import Record


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

    def load(self, artifacts_uri: str) -> None:
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
            body = dict(require_object(prediction_input))
            parameters = body.pop("parameters", None) or {}
            asked = Asked.of(require_object(parameters), "parameters.")
            envelope = pydantic_core.to_json(body, inf_nan_mode="constants")
            return self.model.limit(validate_batch_json(self.model.batch, envelope)), asked
        except ServekitError as exc:
            from fastapi import HTTPException

            raise HTTPException(status_code=exc.status_code, detail=exc.body()) from exc

    def predict(self, instances: tuple[list[Record], Asked]) -> dict[str, Any]:
        records, asked = instances
        return self.model.predict(records, asked)

    def postprocess(self, prediction_results: dict[str, Any]) -> dict[str, Any]:
        # Through servekit's encoder and back: plain JSON types for the CPR serializer
        # (``json.dumps``), and the very numbers the REST service would send.
        result: dict[str, Any] = orjson.loads(encode_json(prediction_results))
        return result
