"""The inputs that moved a row's prediction most, as columns: ``mlp score --reasons N``.

A reviewer of a scored table (a retention list, a credit decision) asks of each row why: an
adverse-action notice gives the principal reasons, and DataRobot's batch predictions give the
strongest "prediction explanations" as columns. These are the row's exact SHAP contributions,
ranked: no second method beside the explanation the API returns, and a file a spreadsheet reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

#: What each reason is written as, per rank: ``reason_<rank>_<part>``, and its Parquet type.
REASON_PARTS = {"field": pa.string(), "value": pa.string(), "contribution": pa.float64()}
REASON_COLUMN = re.compile(r"reason_\d+_(?P<part>field|value|contribution)")


def reason_type(column: str) -> pa.DataType | None:
    """A reason column's type (None: no reason column). Not read off an example answer: the
    example may have fewer inputs than a row (NLPInsight's words), and its empty ranks no type."""
    found = REASON_COLUMN.fullmatch(column)
    return REASON_PARTS[found["part"]] if found else None


def reason_cells(contributions: Mapping[str, float], record: Mapping[str, Any], count: int) -> dict[str, Any]:
    """The ``count`` inputs with the largest contribution either way, strongest first (ties by name):
    each one's field, its value in the row as text, and its signed contribution on the
    explanation's scale. Ranks past the model's inputs are empty (None), and so is the value of an
    input that is no field of the row (NLPInsight's contributions are the text's words)."""
    ranked = sorted(contributions.items(), key=lambda item: (-abs(item[1]), item[0]))
    cells: dict[str, Any] = {}
    for rank in range(1, count + 1):
        field, contribution = ranked[rank - 1] if rank <= len(ranked) else (None, None)
        value = None if field is None else record.get(field)
        cells[f"reason_{rank}_field"] = field
        cells[f"reason_{rank}_value"] = None if value is None else str(value)
        cells[f"reason_{rank}_contribution"] = contribution
    return cells
