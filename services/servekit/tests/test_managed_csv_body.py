"""The SageMaker CSV reader against Python's ``csv`` module on bodies both read alike."""

from __future__ import annotations

import csv
import io
import random

import pytest

from servekit.managed import csv_body

#: Pieces of cells: quotes, commas and line ends of each kind among letters and spaces.
PIECES = ["a", "b", " ", ",", '"', "\n", "\r", "\r\n", "1", "\t", ""]


def written(rows: list[list[str]], line_end: str, rng: random.Random, quote: bool) -> str:
    """``rows`` as RFC 4180 writes them, a cell quoted where it must be (or at random, if ``quote``)."""

    def cell(text: str) -> str:
        must = any(c in text for c in ",\r\n") or text.startswith('"')
        return '"' + text.replace('"', '""') + '"' if must or (quote and rng.random() < 0.3) else text

    return line_end.join(",".join(cell(text) for text in row) for row in rows)


def csv_module_records(text: str) -> list[tuple[int, list[str]]]:
    """Each record's first line (from 1) and cells as Python's reader reads them, blank lines left out."""
    reader = csv.reader(io.StringIO(text, newline=""))
    found, line = [], 1
    for row in reader:
        if row:
            found.append((line, row))
        line = reader.line_num + 1
    return found


def read(text: str) -> list[tuple[int, list[str]]]:
    return [(record.line, record.cells()) for record in csv_body.records(text)]


@pytest.mark.parametrize("quote", [False, True], ids=["without quotes", "with quotes"])
def test_records_and_their_lines_are_those_pythons_reader_reads(quote: bool) -> None:
    """Lines without a quote are read in one scan (a record at a time, a million blank lines took a
    second): with or without quotes in a body, the same records on the same lines."""
    rng = random.Random(7)
    for _ in range(3000):
        pieces = (
            PIECES if quote else [piece for piece in PIECES if piece not in ('"', ",", "\n", "\r", "\r\n")]
        )
        rows = [
            ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 3))]
            for _ in range(rng.randint(1, 5))
        ]
        line_ends = rng.choice(["\n", "\r\n", "\r"])
        text = written(rows, line_ends, rng, quote)
        text = text.replace(line_ends, line_ends * rng.randint(1, 3)) + line_ends * rng.randint(0, 2)
        assert quote or '"' not in text
        assert read(text) == csv_module_records(text), repr(text)


@pytest.mark.parametrize(
    "line",
    [
        'Powell says "no rush" to cut rates',
        'Stocks rally 5" on Fed',
        ' "b"',
        'a"',
        'x,"quoted, cell",5" screen',
    ],
)
def test_a_quote_inside_a_cell_that_does_not_start_with_one_is_text(line: str) -> None:
    """Refused as a stray quote for a while; Python's reader and pandas read it as text, and such a
    cell ends at its comma or line end, so no row runs into another."""
    body = f"{line}\nnext\r\n"
    assert read(body) == csv_module_records(body)
    assert read(body)[1] == (2, ["next"])


@pytest.mark.parametrize(
    ("body", "line", "problem"),
    [
        ('a\n"b\nc\n', 2, csv_body.UNCLOSED),
        ('a\nx,"b\nc\n', 2, csv_body.UNCLOSED),
        ('a\n"abc"def\n', 2, "the quoted cell starting here closes and 'd' follows its quote"),
        ('"a\nb"c\nd\n', 1, "the quoted cell starting here closes on line 2 and 'c' follows its quote"),
    ],
)
def test_a_quote_never_closed_or_text_after_a_closing_quote_is_refused_naming_the_line(
    body: str, line: int, problem: str
) -> None:
    with pytest.raises(csv_body.MalformedCsvError) as refused:
        read(body)
    assert refused.value.line == line
    assert refused.value.problem.startswith(problem)
