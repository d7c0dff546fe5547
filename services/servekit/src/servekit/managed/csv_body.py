"""A ``text/csv`` request body read as RFC 4180 writes it, and nothing else: one record a row.

Python's ``csv`` reader takes what RFC 4180 does not, and each leniency turns a client's rows into
other rows without a word:

- a quote never closed runs to the end of the body: every later line was read into one cell, so
  four headlines were one prediction, answered 200 (``strict=True`` refuses this one);
- a quote inside a cell that does not start with one (``a, "b"``, a space after the comma) is
  kept as text where the client meant a quoted cell (``strict=True`` keeps it too);
- a cell over 131,072 characters (the reader's limit, one for the whole process) is an exception,
  where the REST service names the field and its own limit.

This reader refuses the first two naming the line and the cell, and has no limit of its own on a
cell: the body's (``<SVC>_MAX_BODY_BYTES``) bounds it, and validation refuses a cell longer than
its field takes, naming it, as over REST. Quoted cells holding commas, doubled quotes (``""``)
and line breaks are read as RFC 4180 says; a line end is ``\\r\\n``, ``\\n`` or ``\\r``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_QUOTED = r'"(?:[^"]|"")*+"'
_PLAIN = r'[^",\r\n]*+'
#: A well-formed record: cells separated by commas, then a line end or the end of the body.
#: Possessive, so a record that is not well-formed fails in one pass instead of backtracking.
_RECORD = re.compile(rf"(?P<cells>(?:{_QUOTED}|{_PLAIN})(?:,(?:{_QUOTED}|{_PLAIN}))*+)(?:\r\n|\n|\r|\Z)")
_CELL = re.compile(rf'"(?P<quoted>(?:[^"]|"")*+)"|(?P<plain>{_PLAIN})')
_QUOTED_CELL = re.compile(_QUOTED)
_PLAIN_CELL = re.compile(_PLAIN)
_LINE_END = re.compile(r"\r\n|\n|\r")

UNCLOSED = (
    "a quoted cell starts here and its quote is never closed, so every line after it would be read "
    'into this cell; close it, and double each quote inside it ("")'
)
STRAY = (
    "a quote inside a cell that does not start with one; quote the whole cell and double each "
    'quote inside it: "5"" screen", and put no space between a comma and a quoted cell'
)


@dataclass(frozen=True)
class Record:
    """One row of the body: the line it starts on (from 1) and its text, line end excluded."""

    line: int
    text: str

    def cells(self) -> list[str]:
        """Its cells, each unquoted (``""`` inside a quoted cell read as one quote)."""
        if '"' not in self.text:
            return self.text.split(",")
        cells = []
        position = 0
        while True:
            cell = _CELL.match(self.text, position)
            if cell is None:  # a Record is well-formed: every position starts a cell
                raise AssertionError(f"not a well-formed record: {self.text!r}")
            quoted = cell["quoted"]
            cells.append(cell["plain"] if quoted is None else quoted.replace('""', '"'))
            position = cell.end()
            if position >= len(self.text):
                return cells
            position += 1  # the comma after the cell


class MalformedCsvError(Exception):
    """Where the body stops being RFC 4180 CSV: the line, the cell of its record (from 0) and what
    is wrong there; ``records`` rows came before it."""

    def __init__(self, line: int, cell: int, problem: str, records: int) -> None:
        super().__init__(f"line {line}, cell {cell + 1}: {problem}")
        self.line = line
        self.cell = cell
        self.problem = problem
        self.records = records


def records(text: str) -> Iterator[Record]:
    """The body's records, blank lines skipped; MalformedCsvError at the first that is not well-formed."""
    position, line, count = 0, 1, 0
    while position < len(text):
        record = _RECORD.match(text, position)
        if record is None:
            at, cell, problem = _fault(text, position, line)
            raise MalformedCsvError(line + _line_ends(text, position, at), cell, problem, count)
        if record["cells"]:
            count += 1
            yield Record(line, record["cells"])
        line += _line_ends(text, position, record.end())
        position = record.end()


def _line_ends(text: str, start: int, end: int) -> int:
    return len(_LINE_END.findall(text, start, end))


def _fault(text: str, position: int, line: int) -> tuple[int, int, str]:
    """Where the record starting at ``position`` (on ``line``) breaks RFC 4180: the start of the
    cell at fault, which cell of the record it is, and what is wrong."""
    record, cell = position, 0
    while True:
        if text.startswith('"', position):
            quoted = _QUOTED_CELL.match(text, position)
            if quoted is None:
                return position, cell, UNCLOSED
            if quoted.end() < len(text) and text[quoted.end()] not in ",\r\n":
                opens = line + _line_ends(text, record, position)
                return position, cell, _after_quote(text, position, quoted.end(), opens)
            position = quoted.end()
        else:
            plain = _PLAIN_CELL.match(text, position)
            position = plain.end() if plain is not None else position
            if text.startswith('"', position):
                return position, cell, STRAY
        if not text.startswith(",", position):  # the record ends here: it was well-formed after all
            return position, cell, "not RFC 4180 CSV"
        position += 1
        cell += 1


def _after_quote(text: str, start: int, end: int, line: int) -> str:
    """What is wrong with a quoted cell from ``start`` (on ``line``) to ``end`` followed by more than
    a comma or a line end. A quote left open is often closed by the next quote, lines later: say where.
    """
    lines = _line_ends(text, start, end)
    where = f" on line {line + lines}" if lines else ""
    return (
        f"the quoted cell starting here closes{where} and {text[end]!r} follows its quote; a quoted "
        'cell ends with its quote, then a comma or the line end (double each quote inside it: "")'
    )
