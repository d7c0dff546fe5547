"""The principal reasons of each scored row as columns: ``mlp score --reasons N``.

A reviewer of a scored table (a retention list, a credit decision) reads a row's reasons in a
spreadsheet, without parsing JSON, as DataRobot's batch predictions give their strongest
"prediction explanations". The reasons are the API's (``servekit.reasons``); this module only lays
them out, ``reason_<rank>_<part>`` per rank.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from servekit.reasons import REASON_PARTS

#: Each part's Parquet type: the value as text, since one column holds every field's values.
PART_TYPES = {"field": pa.string(), "value": pa.string(), "contribution": pa.float64()}
REASON_COLUMN = re.compile(rf"reason_\d+_(?P<part>{'|'.join(REASON_PARTS)})")


def reason_type(column: str) -> pa.DataType | None:
    """A reason column's type (None: no reason column). Not read off an example answer: the
    example may have fewer inputs than a row (NLPInsight's words), and its empty ranks no type."""
    found = REASON_COLUMN.fullmatch(column)
    return PART_TYPES[found["part"]] if found else None


def reason_cells(reasons: Sequence[Mapping[str, Any]], count: int) -> dict[str, Any]:
    """``count`` ranks of reason columns: each reason's field, its value as text and its
    contribution. Ranks past the reasons given (fewer inputs argued for the answer) are empty (None), and
    so is a value the reason has none of (a word of NLPInsight's text)."""
    cells: dict[str, Any] = {}
    for rank in range(1, count + 1):
        reason = reasons[rank - 1] if rank <= len(reasons) else {}
        value = reason.get("value")
        cells[f"reason_{rank}_field"] = reason.get("field")
        cells[f"reason_{rank}_value"] = None if value is None else str(value)
        cells[f"reason_{rank}_contribution"] = reason.get("contribution")
    return cells
