"""Where the integration tests find the project and its servers (started by servekit.local)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np

from servekit.local import Server, free_port, start_mlflow, start_service

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"

__all__ = [
    "BIN",
    "ROOT",
    "Server",
    "free_port",
    "grpc_infer",
    "infer_example",
    "predict_its_example",
    "start_mlflow",
    "start_service",
]


def predict_its_example(
    base_url: str, *, explain: bool, timeout: float = 5.0
) -> tuple[dict[str, Any], httpx.Response]:
    """What a user tries first: ``GET /model``, then its first request example to ``POST /predict``.

    Returns the model description and the (200) prediction response.
    """
    model: dict[str, Any] = httpx.get(f"{base_url}/model", timeout=timeout).json()
    example = model["feature_schema"]["examples"][0]
    params = {"explain": "true"} if explain else None
    response = httpx.post(f"{base_url}/predict", params=params, json=example, timeout=timeout)
    assert response.status_code == 200, response.text
    return model, response


def infer_example(base_url: str, *, timeout: float = 5.0) -> dict[str, Any]:
    """The Open Inference Protocol request a service documents for ``/v2/models/<svc>/infer``."""
    document = httpx.get(f"{base_url}/openapi.json", timeout=timeout).json()
    operation = document["paths"]["/v2/models/{model_name}/infer"]["post"]
    example: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["example"]
    return example


#: numpy element types of the protocol's datatypes that the services' tensors use.
NUMPY_TYPES = {"INT64": np.int64, "FP64": np.float64, "BOOL": np.bool_, "BYTES": np.object_}


def grpc_infer(server: Server, name: str, request: dict[str, Any], **options: Any) -> Any:
    """A V2 request in its REST form sent over gRPC by Triton's client; its InferResult.

    A tensor holding a missing value is left out: gRPC has no null, so a client omits an
    optional input it does not have.
    """
    import tritonclient.grpc as grpcclient

    inputs = []
    for tensor in request["inputs"]:
        if any(value is None for value in tensor["data"]):
            continue
        datatype = tensor["datatype"]
        data = [v.encode() for v in tensor["data"]] if datatype == "BYTES" else tensor["data"]
        array = np.array(data, dtype=NUMPY_TYPES[datatype]).reshape(tensor["shape"])
        infer_input = grpcclient.InferInput(tensor["name"], list(array.shape), datatype)
        infer_input.set_data_from_numpy(array)
        inputs.append(infer_input)
    with grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}") as client:
        return client.infer(name, inputs, **options)
