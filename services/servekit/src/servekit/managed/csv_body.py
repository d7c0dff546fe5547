"""A ``text/csv`` request body read as RFC 4180 writes it: one record a row.

Python's ``csv`` reader is lenient where leniency turns a client's rows into other rows or errors:

- a quote never closed runs to the end of the body: every later line was read into one cell, so
  four headlines were one prediction, answered 200 (``strict=True`` refuses this one);
- a cell over 131,072 characters (the reader's limit, one for the whole process) is an exception,
  where the REST service names the field and its own limit.

This reader refuses, naming the line and the cell, a quoted cell whose quote is never closed and
text after a quoted cell's closing quote (``"abc"def``, most often a quote left open and closed by
the next one, lines later). It has no limit of its own on a cell: the body's
(``<SVC>_MAX_BODY_BYTES``) bounds it, and validation refuses a cell longer than its field takes,
naming it, as over REST. A quote inside a cell that does not start with one is text, as Python's
reader and pandas read it (``Powell says "no rush"``, ``5" screen``, and `` "b"`` after a space):
such a cell ends at the next comma or line end, so it cannot run into the next row. Quoted cells
holding commas, doubled quotes (``""``) and line breaks are read as RFC 4180 says; a line end is
``\\r\\n``, ``\\n`` or ``\\r``, and a blank line is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_QUOTED = r'"(?:[^"]|"")*+"'
#: Empty, or text up to the next comma or line end that does not start with a quote: a quote
#: further in is text (a cell starting with one is a quoted cell).
_PLAIN = r'(?:[^",\r\n][^,\r\n]*+)?'
#: A well-formed record: cells separated by commas, then a line end or the end of the body.
#: Possessive, so a record that is not well-formed fails in one pass instead of backtracking.
_RECORD = re.compile(rf"(?P<cells>(?:{_QUOTED}|{_PLAIN})(?:,(?:{_QUOTED}|{_PLAIN}))*+)(?:\r\n|\n|\r|\Z)")
_CELL = re.compile(rf'"(?P<quoted>(?:[^"]|"")*+)"|(?P<plain>{_PLAIN})')
_QUOTED_CELL = re.compile(_QUOTED)
_PLAIN_CELL = re.compile(_PLAIN)
#: The line ends before a line (blank lines), then the line; or the line ends that end the text.
#: Either matches where the last match ended, so a scan never retries at each character (a search
#: for the next line alone stepped through a million blank lines in Python's slowest loop).
_NEXT_LINE = re.compile(r"[\r\n]*+(?P<line>[^\r\n]++)|[\r\n]++\Z")

UNCLOSED = (
    "a quoted cell starts here and its quote is never closed, so every line after it would be read "
    'into this cell; close it, and double each quote inside it ("")'
)


@dataclass(frozen=True)
class Record:
    """One row of the body: the line it starts on (from 1) and its text, line end excluded."""

    line: int
    text: str

    def cells(self) -> list[str]:
        """Its cells, each unquoted (``""`` inside a quoted cell read as one quote)."""
        if not self.text.startswith('"') and ',"' not in self.text:  # no quoted cell
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
    """The body's records, blank lines skipped; MalformedCsvError at the first that is not well-formed.

    Lines before the next quote are whole records, found by one scan that skips blank lines; the
    record holding a quote is matched on its own, as its quoted cells may hold line ends. Matching
    every record so, a body of a million blank lines took a second.
    """
    position, line, count = 0, 1, 0
    while position < len(text):
        quote = text.find('"', position)
        unquoted = len(text) if quote == -1 else _start_of_line(text, position, quote)
        for found in _NEXT_LINE.finditer(text, position, unquoted):
            if found["line"] is None:  # blank lines to the end
                break
            gap = found.start("line") - position
            line += gap if gap < 2 else _line_ends(text, position, position + gap)  # one \n or \r: one line
            count += 1
            yield Record(line, found["line"])
            position = found.end()
        line += _line_ends(text, position, unquoted)
        position = unquoted
        if position >= len(text):
            return
        record = _RECORD.match(text, position)
        if record is None:
            at, cell, problem = _fault(text, position, line)
            raise MalformedCsvError(line + _line_ends(text, position, at), cell, problem, count)
        count += 1
        yield Record(line, record["cells"])
        line += _line_ends(text, position, record.end())
        position = record.end()


def _start_of_line(text: str, start: int, at: int) -> int:
    """Where the line holding ``at`` starts, ``start`` if no line end lies between them."""
    return max(text.rfind("\n", start, at), text.rfind("\r", start, at), start - 1) + 1


def _line_ends(text: str, start: int, end: int) -> int:
    """How many line ends (``\\r\\n``, ``\\n``, ``\\r``) ``text[start:end]`` holds; neither bound
    may fall inside a ``\\r\\n``."""
    return text.count("\n", start, end) + text.count("\r", start, end) - text.count("\r\n", start, end)


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
        else:  # a plain cell runs to the next comma or line end: nothing in it is at fault
            plain = _PLAIN_CELL.match(text, position)
            position = plain.end() if plain is not None else position
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
