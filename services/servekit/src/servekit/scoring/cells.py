"""How an answer becomes the cells ``mlp score`` adds to a row.

Every output format takes the same cells, so an answer is laid out once: a nested object as
dotted columns, a list or the explanation as one JSON document, and the principal reasons as
columns of their own. The version and error columns are named here, where the run and the
summary both find them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from servekit.inference import encode_json
from servekit.model import EXPLANATION_FIELD
from servekit.reasons import REASONS_FIELD
from servekit.scoring.files import JsonText
from servekit.scoring.reasons import reason_cells

VERSION_COLUMN = "model_version"
ERROR_COLUMN = "error"


def flatten(prediction: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A prediction as cells: nested objects as dotted columns, the explanation and lists as JSON
    documents (``JsonText``)."""
    cells: dict[str, Any] = {}
    for key, value in prediction.items():
        name = f"{prefix}{key}"
        if key == EXPLANATION_FIELD and not prefix:
            cells[name] = JsonText(encode_json(value).decode())
        elif isinstance(value, dict):  # an answer is JSON-ready; Mapping's ABC check costs 5 times as much
            cells.update(flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            cells[name] = JsonText(encode_json(value).decode())
        else:
            cells[name] = value
    return cells


def prediction_cells(predictions: Sequence[dict[str, Any]], reasons: int) -> list[dict[str, Any]]:
    """Each answer's cells (``flatten``), then ``reasons`` ranks of its principal reasons as
    columns (``reason_cells``)."""
    rows = []
    for prediction in predictions:
        given = prediction.pop(REASONS_FIELD, [])
        cells = flatten(prediction)
        if reasons:
            cells.update(reason_cells(given, reasons))
        rows.append(cells)
    return rows
