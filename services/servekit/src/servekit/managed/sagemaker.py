"""SageMaker inference-toolkit handlers: ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``.

``mlp package-sagemaker`` puts these behind ``code/inference.py`` in ``model.tar.gz``; the
SageMaker framework containers (scikit-learn, PyTorch) load that module with the
sagemaker-inference toolkit, which calls ``model_fn(model_dir)`` once, then per request
``input_fn(body, content_type)`` → ``predict_fn(data, model)`` → ``output_fn(prediction, accept)``.
The toolkit counts each handler's parameters, so the signatures are exactly these.

Requests (the response is always the JSON of the REST ``POST /predict/batch`` for the same
instances, explanations included, byte for byte):

- ``application/json``: ``{"instances": [{...}, ...], "explain": true, "reasons": 3}``
  (``explain`` and ``reasons`` optional, as ``?explain=`` and ``?reasons=`` over REST), or a bare
  list ``[{...}, ...]``;
- ``text/csv``: one instance per row, columns in the order of the service's request fields
  (a header row with exactly those names is allowed and skipped); explanations and reasons are asked
  with media-type parameters, ``text/csv; explain=true; reasons=3``.

Bad input raises :class:`InvalidRequest`: a 4xx with the REST error body as its message (never a
500 and never a traceback in place of the reason). It derives from the toolkit's
``BaseInferenceToolkitError`` when the toolkit is installed, so the container answers with its
status code.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import io
from dataclasses import dataclass
from typing import Any

import pydantic_core

from servekit.errors import FieldProblem, ServekitError, invalid_field
from servekit.inference import encode_json, reject_duplicate_keys, validate_batch_json
from servekit.managed.common import (
    Asked,
    LoadedModel,
    load_model_dir,
    require_object,
)
from servekit.model import Record

JSON = "application/json"
CSV = "text/csv"
#: The CSV media type's own parameters (RFC 4180's charset, RFC 7111's header), beside the options.
CSV_OWN_PARAMETERS = ("charset", "header")
CSV_CHARSETS = ("utf-8", "utf8", "us-ascii")
WORDS_OF_A_FLAG = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _toolkit_error() -> type[Exception]:
    try:
        errors = importlib.import_module("sagemaker_inference.errors")
    except ImportError:
        return Exception
    base: type[Exception] = errors.BaseInferenceToolkitError
    return base


class InvalidRequest(_toolkit_error()):  # type: ignore[misc]
    """A request SageMaker should answer with a 4xx; ``message`` is the REST error body (JSON)."""

    def __init__(self, error: ServekitError) -> None:
        Exception.__init__(self, str(error))
        self.error = error
        self.status_code = error.status_code
        self.message = encode_json(error.body()).decode()
        self.phrase = error.error

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Decoded:
    """What ``input_fn`` hands to ``predict_fn``: the body and its media type, not yet validated.

    Validation needs the service's request model, which only the loaded model knows
    (``input_fn`` gets no model), so ``predict_fn`` validates before predicting.
    """

    body: bytes
    media: str
    params: dict[str, str]


def model_fn(model_dir: str) -> LoadedModel:
    """Load the packaged MLflow model (service named in ``servekit.json`` or ``$MLP_SERVICE``)."""
    return load_model_dir(model_dir)


def input_fn(input_data: str | bytes, content_type: str) -> Decoded:
    """Accept ``application/json`` or ``text/csv`` (415 otherwise)."""
    media, params = _media_type(content_type or JSON)
    if media not in (JSON, CSV):
        raise InvalidRequest(
            ServekitError(
                415,
                "unsupported_media_type",
                f"content type {content_type!r} is not supported; use {JSON} or {CSV}",
                (FieldProblem("content-type", f"expected {JSON} or {CSV}"),),
            )
        )
    body = input_data.encode() if isinstance(input_data, str) else bytes(input_data)
    return Decoded(body, media, params)


def predict_fn(data: Decoded, model: LoadedModel) -> dict[str, Any]:
    """Validate exactly as the REST service does, then predict (and explain when asked)."""
    records, asked = parse_request(model, data)
    return model.predict(records, asked)


def parse_request(model: LoadedModel, data: Decoded) -> tuple[list[Record], Asked]:
    """Validated records and what else is asked; InvalidRequest (4xx) on bad input."""
    try:
        if data.media == CSV:
            asked = _csv_asked(data.params)
            rows = _csv_records(model, data.body.decode("utf-8"))
            return model.limit(_validated(model, {"instances": rows})), asked
        return _from_json(model, data.body)
    except ServekitError as exc:
        raise InvalidRequest(exc) from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequest(invalid_field("body", f"not UTF-8: {exc.reason}")) from exc


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[bytes, str]:
    media, _ = _media_type(accept or JSON)
    if media not in (JSON, "*/*", "application/*"):
        raise InvalidRequest(
            ServekitError(
                406,
                "not_acceptable",
                f"accept {accept!r} is not supported; responses are {JSON}",
                (FieldProblem("accept", f"expected {JSON}"),),
            )
        )
    return encode_json(prediction), JSON


def _media_type(value: str) -> tuple[str, dict[str, str]]:
    media, *rest = (part.strip() for part in value.split(";"))
    params = {}
    for part in rest:
        key, _, val = part.partition("=")
        params[key.strip().lower()] = val.strip().strip('"')
    return media.lower(), params


def _validated(model: LoadedModel, envelope: dict[str, Any]) -> list[Record]:
    # Back to JSON (NaN kept as NaN) so the strict request models see JSON, as over REST.
    return validate_batch_json(model.batch, pydantic_core.to_json(envelope, inf_nan_mode="constants"))


def _csv_asked(params: dict[str, str]) -> Asked:
    """A media type's parameters are text: ``explain=true`` (or 1, yes; false, 0, no) and
    ``reasons=3``, beside the CSV media type's own ``charset`` (UTF-8) and ``header``."""
    charset = params.get("charset", "utf-8").lower()
    if charset not in CSV_CHARSETS:
        raise invalid_field("content_type.charset", f"{charset!r} is not supported; send UTF-8")
    options: dict[str, Any] = {key: text for key, text in params.items() if key not in CSV_OWN_PARAMETERS}
    if "explain" in options:
        options["explain"] = WORDS_OF_A_FLAG.get(options["explain"].lower(), options["explain"])
    if "reasons" in options:
        with contextlib.suppress(ValueError):  # else refused by Asked.of as not an integer
            options["reasons"] = int(options["reasons"])
    return Asked.of(options, "content_type.")


def _from_json(model: LoadedModel, body: bytes) -> tuple[list[Record], Asked]:
    try:
        parsed = pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError:
        validate_batch_json(model.batch, body)  # raises the REST service's 422 for malformed JSON
        raise
    # Parsing keeps the last of a repeated key, and the envelope is re-encoded from the parse.
    reject_duplicate_keys(body)
    if isinstance(parsed, list):
        parsed = {"instances": parsed}
    envelope = dict(require_object(parsed))
    asked = Asked.of({key: envelope.pop(key) for key in Asked.OPTIONS if key in envelope})
    return model.limit(_validated(model, envelope)), asked


def _csv_records(model: LoadedModel, text: str) -> list[dict[str, Any]]:
    fields = list(model.spec.request.model_fields)
    properties = model.spec.request.model_json_schema().get("properties", {})
    numeric = {name for name in fields if _json_types(properties.get(name, {})) & {"integer", "number"}}
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if rows and [cell.strip() for cell in rows[0]] == fields:
        rows = rows[1:]
    records = []
    for index, row in enumerate(rows):
        if len(row) != len(fields):
            raise invalid_field(
                f"instances[{index}]",
                f"{len(row)} columns; expected {len(fields)}: {', '.join(fields)}",
            )
        records.append({name: _cell(cell, name in numeric) for name, cell in zip(fields, row, strict=True)})
    return records


def _json_types(schema: dict[str, Any]) -> set[str]:
    types = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        types |= _json_types(option)
    return types


def _cell(cell: str, numeric: bool) -> Any:
    """A CSV cell as the JSON value a client would send: numbers for numeric fields, null if empty."""
    if cell == "":
        return None
    if numeric:
        text = cell.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            return float(text)
        except ValueError:
            return cell
    return cell
