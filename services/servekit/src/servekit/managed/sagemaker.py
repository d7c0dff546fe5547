"""SageMaker inference-toolkit handlers: ``model_fn`` and ``transform_fn``.

``mlp package-sagemaker`` puts these behind ``code/inference.py`` in ``model.tar.gz``. The
SageMaker framework containers load that module with one of three toolkits, which call
``model_fn(model_dir)`` once, then ``transform_fn(model, body, content_type, accept)`` per request:

- sagemaker-inference (the PyTorch container, TorchServe/MMS), which also passes its context;
- sagemaker-containers (the scikit-learn container's single-model server, gunicorn + Flask);
- the scikit-learn container's multi-model server (MMS with its own copy of the transformer).

``transform_fn`` is ``output_fn(predict_fn(input_fn(...)))``: one function because only it can set
the status and body of a refusal in all three (each toolkit turns an exception of ``input_fn`` or
``predict_fn`` into a 500, or appends its traceback to the body).

Requests (the response is always the JSON of the REST ``POST /predict/batch`` for the same
instances, explanations included, byte for byte):

- ``application/json``: ``{"instances": [{...}, ...], "explain": true, "reasons": 3}``
  (``explain`` and ``reasons`` optional, as ``?explain=`` and ``?reasons=`` over REST), or a bare
  list ``[{...}, ...]``;
- ``text/csv``: RFC 4180 CSV, one instance per row (:mod:`servekit.managed.csv_body` reads it: a
  quoted cell never closed, or text after a quoted cell's closing quote, is a 422 naming the line
  and the cell; a quote inside a cell that does not start with one is text). Explanations and
  reasons are asked with media-type parameters, ``text/csv; explain=true; reasons=3``. Whether the
  first row is a header is RFC 4180's ``header`` parameter: ``header=present``, it names each of
  the service's request fields once, in any order (the columns are read by those names; another
  name, or one missing, is a 422 naming it); ``header=absent``, every row is an instance, the
  columns in the order of the request fields. Without the parameter, a first row that names exactly
  the request fields (in any order) is taken for a header, and any other for an instance: send
  ``header=absent`` when an instance may read as the header (NLPInsight's one field is ``text``: a
  headline that says "text" would be dropped). A UTF-8 byte order mark, as Excel writes, is
  skipped. A cell is a number when its field takes one and it is a decimal number in ASCII digits,
  whitespace around it aside (``619``, ``0619``, ``+900``, ``-1.5e3``, ``1.``, ``.5``: an integer
  without a point or exponent), or float()'s ``nan`` or ``inf``, refused as not finite; empty is
  null, and anything else is text (``9_00``, ``0x384``, full-width or Arabic-Indic digits), which
  validation refuses for a number field as the REST service refuses ``"900"``.

Bad input is a 4xx whose body is the REST service's error body (``{"error": ..., "fields": [...]}``)
with its status code, in each of the three toolkits: for the instances and the body's size
(``<SVC>_MAX_BODY_BYTES``, ``<SVC>_MAX_BATCH_SIZE``) the very body REST answers. What REST takes
elsewhere or not at all is worded for this transport, naming the field all the same: the options
(``explain``, ``reasons``: query parameters over REST), a body that is no object (REST: ``Input
should be an object``; here what to send instead), the CSV's syntax and header. The handlers raise
:class:`InvalidRequest`, which derives from sagemaker-inference's ``BaseInferenceToolkitError``
when that toolkit is installed; called on their own in a container (a ``code/inference.py`` of
your own exporting them instead of ``transform_fn``), sagemaker-inference answers with the status
but appends a traceback to the body, and sagemaker-containers answers 500.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import sys
from dataclasses import dataclass
from typing import Any

import pydantic_core

from servekit.errors import FieldProblem, ServekitError, invalid_field
from servekit.inference import encode_json, reject_duplicate_keys
from servekit.managed import csv_body
from servekit.managed.common import (
    Asked,
    LoadedModel,
    as_json,
    load_model_dir,
    require_object,
)
from servekit.media_types import accepts_media_type, parse_media_type
from servekit.model import Record

#: What ``from servekit.managed.sagemaker import *`` gives a hand-written ``inference.py``: the two
#: handlers the toolkits call. With input_fn, predict_fn and output_fn as well they refuse to serve.
__all__ = ["model_fn", "transform_fn"]

JSON = "application/json"
CSV = "text/csv"
#: The media-type parameters a JSON body takes: its options are fields of the body.
JSON_OWN_PARAMETERS = ("charset",)
#: The CSV media type's own parameters (RFC 4180's charset and header), beside the options.
CSV_OWN_PARAMETERS = ("charset", "header")
#: RFC 4180's values of ``header``: whether the first row names the columns.
HEADER_VALUES = {"present": True, "absent": False}
UTF8_CHARSETS = ("utf-8", "utf8", "us-ascii")
WORDS_OF_A_FLAG = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
#: A number in a CSV cell as spreadsheets and exporters write one, in ASCII digits: ``619``,
#: ``0619``, ``+900``, ``-1.5e3``, ``1.``, ``.5``; an integer without a point or an exponent.
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
INTEGER = re.compile(r"[+-]?[0-9]+")
#: float()'s spellings of not-a-number and the infinities, in any case: ``nan``, ``-inf``, ``Infinity``.
NON_FINITE = re.compile(r"[+-]?(?:nan|inf|infinity)", re.IGNORECASE)


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
    _take_bodies_undecoded()
    return load_model_dir(model_dir)


def _take_bodies_undecoded() -> None:
    """Have the toolkits hand ``text/csv`` and ``application/json`` bodies over as bytes.

    They decode exactly those two media types before any handler runs: sagemaker-inference as
    strict UTF-8, so a CSV saved as Latin-1 was its 500 (``'utf-8' codec can't decode``) with no
    handler to say which part of the request is wrong; sagemaker-containers with
    ``errors="replace"``, so the same CSV became ``Fran\ufffde``. ``input_fn`` decodes them itself
    and refuses with a 422 naming the body. Each toolkit reads its list at each request (and
    nothing else of theirs that serves this module does); ``model_fn`` runs before the first.
    """
    for name in ("sagemaker_inference.content_types", "sagemaker_containers._content_types"):
        content_types = sys.modules.get(name)
        if content_types is not None:
            content_types.UTF8_TYPES = []  # type: ignore[attr-defined]


def transform_fn(
    model: LoadedModel, input_data: str | bytes, content_type: str, accept: str, context: Any = None
) -> Any:
    """One request: the REST batch body, or the REST error body with its status.

    ``context`` is sagemaker-inference's (it passes one to a handler with a fifth parameter):
    the status of a refusal is set on it. Under sagemaker-containers (a Flask request) a refusal is
    a Flask response with its status; elsewhere :class:`InvalidRequest` is raised, which MMS
    answers with its status and message.
    """
    try:
        return output_fn(predict_fn(input_fn(input_data, content_type), model), accept)
    except InvalidRequest as refusal:
        # TorchServe's batching (SAGEMAKER_TS_BATCH_SIZE > 1) hands the toolkit several requests,
        # but it passes no index, so a status set here would land on the first one's answer.
        # There the refusal is raised: the toolkit fails the batch, as it did before this handler.
        if context is not None and len(getattr(context, "request_processor", None) or ()) <= 1:
            context.set_response_status(code=refusal.status_code, phrase=refusal.phrase)
            return refusal.message.encode(), JSON
        flask = _flask_request_module()
        if flask is not None:
            return flask.Response(refusal.message, status=refusal.status_code, mimetype=JSON)
        raise


def _flask_request_module() -> Any:
    """Flask, when this call serves one of its requests (sagemaker-containers' server)."""
    flask = sys.modules.get("flask")
    return flask if flask is not None and flask.has_request_context() else None


def input_fn(input_data: str | bytes, content_type: str) -> Decoded:
    """Accept ``application/json`` or ``text/csv`` (415 otherwise)."""
    media, params = parse_media_type(content_type or JSON)
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
        model.check_body_size(len(data.body))
        if data.media == CSV:
            asked = _csv_asked(data.params)
            header = _csv_header(data.params)
            # utf-8-sig: Excel's "CSV UTF-8" starts with a byte order mark, which would hide the header.
            rows = _csv_records(model, data.body.decode("utf-8-sig"), header)
            return _validated(model, {"instances": rows}), asked
        _json_parameters(data.params)
        return _from_json(model, data.body)
    except ServekitError as exc:
        raise InvalidRequest(exc) from exc
    except UnicodeDecodeError as exc:
        raise InvalidRequest(
            invalid_field("body", f"not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8 CSV")
        ) from exc


def output_fn(prediction: dict[str, Any], accept: str) -> tuple[bytes, str]:
    if not accepts_media_type(accept or JSON, JSON):
        raise InvalidRequest(
            ServekitError(
                406,
                "not_acceptable",
                f"accept {accept!r} is not supported; responses are {JSON}",
                (FieldProblem("accept", f"no range takes {JSON} with a weight (q) above 0"),),
            )
        )
    return encode_json(prediction), JSON


def _validated(model: LoadedModel, envelope: dict[str, Any]) -> list[Record]:
    # Back to JSON (NaN kept as NaN) so the strict request models see JSON, as over REST.
    return model.validated(pydantic_core.to_json(envelope, inf_nan_mode="constants"))


def _csv_asked(params: dict[str, str]) -> Asked:
    """A media type's parameters are text: ``explain=true`` (or 1, yes; false, 0, no) and
    ``reasons=3``, beside the CSV media type's own ``charset`` (UTF-8) and ``header``."""
    _require_utf8(params)
    options: dict[str, Any] = {key: text for key, text in params.items() if key not in CSV_OWN_PARAMETERS}
    if "explain" in options:
        options["explain"] = WORDS_OF_A_FLAG.get(options["explain"].lower(), options["explain"])
    if "reasons" in options:
        with contextlib.suppress(ValueError):  # else refused by Asked.of as not an integer
            options["reasons"] = int(options["reasons"])
    return Asked.of(options, "content_type.")


def _csv_header(params: dict[str, str]) -> bool | None:
    """RFC 4180's ``header=present`` (True) or ``header=absent`` (False); None when not given."""
    if "header" not in params:
        return None
    value = params["header"].lower()
    if value not in HEADER_VALUES:
        raise invalid_field("content_type.header", f"{as_json(params['header'])} is not present or absent")
    return HEADER_VALUES[value]


def _require_utf8(params: dict[str, str]) -> None:
    """A media type's charset, if it names one, is UTF-8 (or its ASCII subset); else a 422 naming it."""
    charset = params.get("charset", "utf-8").lower()
    if charset not in UTF8_CHARSETS:
        raise invalid_field("content_type.charset", f"{as_json(charset)} is not supported; send UTF-8")


def _json_parameters(params: dict[str, str]) -> None:
    """A JSON body's media type takes a UTF-8 charset alone: ``explain`` or ``reasons`` there (as a
    CSV's takes them) would be dropped without a word, where the body has fields for them."""
    _require_utf8(params)
    for key in params:
        if key not in JSON_OWN_PARAMETERS:
            raise invalid_field(
                f"content_type.{key}",
                f"not a parameter of {JSON}: send it as a field of the body, "
                f'{{"instances": [...], "{key}": ...}}',
            )


def _from_json(model: LoadedModel, body: bytes) -> tuple[list[Record], Asked]:
    try:
        parsed = pydantic_core.from_json(body, allow_inf_nan=True)
    except ValueError:
        model.validated(body)  # raises the REST service's 422 for malformed JSON
        raise
    if isinstance(parsed, list):
        parsed = {"instances": parsed}
    envelope = dict(require_object(parsed))
    asked = Asked.of({key: envelope.pop(key) for key in Asked.OPTIONS if key in envelope})
    records = _validated(model, envelope)
    # Parsing keeps the last of a repeated key, and the envelope is re-encoded from the parse;
    # checked once the records validate, in the REST service's order, so both name the same fields.
    reject_duplicate_keys(body)
    return records, asked


def _csv_records(model: LoadedModel, text: str, header: bool | None) -> list[dict[str, Any]]:
    """The instances of a CSV body, as JSON would give them; ``header``: ``_csv_header``'s."""
    fields = list(model.spec.request.model_fields)
    properties = model.spec.request.model_json_schema().get("properties", {})
    numeric = {name for name in fields if _json_types(properties.get(name, {})) & {"integer", "number"}}
    columns = fields  # the fields the columns hold: a header's names, in its order
    first_is_header: bool | None = None  # until the first row is read
    rows: list[csv_body.Record] = []
    try:
        for record in csv_body.records(text):
            if first_is_header is None:
                named = _header_columns(fields, record, header)
                first_is_header = named is not None
                if named is not None:
                    columns = named
                    continue
            rows.append(record)
    except csv_body.MalformedCsvError as bad:
        raise _malformed(bad, columns, header if first_is_header is None else first_is_header) from None
    # Counted before any row is read: over the limit is the 413 the setting promises, not a 422
    # naming the first row of the wrong width.
    model.limit(len(rows))
    records = []
    for index, row in enumerate(rows):
        cells = row.cells()
        if len(cells) != len(columns):
            raise invalid_field(
                f"instances[{index}]",
                f"{len(cells)} columns on line {row.line}; expected {len(columns)}: {', '.join(columns)}",
            )
        by_name = dict(zip(columns, cells, strict=True))
        # In the request fields' order, whatever the header's: the instance a JSON client sends.
        records.append({name: _cell(by_name[name], name in numeric) for name in fields})
    return records


def _header_columns(fields: list[str], first: csv_body.Record, header: bool | None) -> list[str] | None:
    """The fields the columns hold when ``first`` is a header (its names, in its order), None when
    it is an instance; a 422 naming the header when one is ``present`` but does not name each
    field once."""
    if header is False:
        return None
    names = [cell.strip() for cell in first.cells()]
    if sorted(names) == sorted(fields):
        return names
    if header is None:  # no header, or one that means another model's columns: read as an instance
        return None
    unknown = [name for name in names if name not in fields]
    missing = [name for name in fields if name not in names]
    twice = sorted({name for name in names if names.count(name) > 1})
    problems = [
        *([f"names no field: {', '.join(map(as_json, unknown))}"] if unknown else []),
        *([f"names {', '.join(twice)} more than once"] if twice else []),
        *([f"has no column for {', '.join(missing)}"] if missing else []),
    ]
    raise invalid_field(
        "header", f"{'; '.join(problems)} (line {first.line}); the fields are {', '.join(fields)}"
    )


def _malformed(bad: csv_body.MalformedCsvError, columns: list[str], header_row: bool | None) -> ServekitError:
    """A 422 for a body that is not RFC 4180 CSV, naming the row (and field) where it breaks;
    ``header_row``: whether the first row is a header."""
    if header_row and bad.records == 0:
        where = "header"
    else:
        where = f"instances[{bad.records - (1 if header_row else 0)}]"
        if bad.cell < len(columns):
            where += f".{columns[bad.cell]}"
    return invalid_field(where, f"line {bad.line}, cell {bad.cell + 1}: {bad.problem}")


def _json_types(schema: dict[str, Any]) -> set[str]:
    types = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf", []):
        types |= _json_types(option)
    return types


def _cell(cell: str, numeric: bool) -> Any:
    """A CSV cell as the JSON value a client would send: null if empty; for a number field, a number
    when it reads as one (whitespace around it aside): decimal in ASCII digits (:data:`DECIMAL`; an
    integer without a point or exponent) or float()'s not-a-number and infinities (which validation
    refuses, naming the field, as over JSON); else the text, which validation refuses for a number
    field as the REST service refuses ``"900"``. ``int()`` and ``float()`` alone also read ``9_00``
    and 900 in fullwidth or Arabic-Indic digits as 900."""
    if cell == "":
        return None
    if numeric:
        text = cell.strip()
        if INTEGER.fullmatch(text):
            with contextlib.suppress(ValueError):  # over int()'s 4,300 digits: read as float() reads it
                return int(text)
        if DECIMAL.fullmatch(text) or NON_FINITE.fullmatch(text):
            return float(text)
    return cell
