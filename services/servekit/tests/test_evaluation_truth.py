"""``mlp evaluate``'s truth file: the answers named by request and instance, the target checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from toy import TOY, ToyRecipe

from servekit.datasets import DatasetError
from servekit.evaluation import (
    read_truth,
)

TruthFile = Callable[[str], Path]


@pytest.fixture
def truth_file(tmp_path: Path) -> TruthFile:
    """Writes a truth file, as ``mlp evaluate --truth`` reads one."""

    def written(text: str) -> Path:
        path = tmp_path / f"truth-{len(list(tmp_path.iterdir()))}.csv"
        path.write_text(text)
        return path

    return written


def test_the_truth_file_names_answers_by_request_and_instance(truth_file: TruthFile) -> None:
    both = read_truth(
        truth_file("request_id,instance,y\nbatch-1,0,2.5\nbatch-1,1,3\nsingle,0,4e1\n"), TOY.recipe
    )
    assert both == {("batch-1", 0): 2.5, ("batch-1", 1): 3.0, ("single", 0): 40.0}
    # Without an instance column every row is a single prediction's answer; ids are read as written.
    singles = read_truth(truth_file("y,request_id\n1.5,NA\n2, 007 \n"), TOY.recipe)
    assert singles == {("NA", 0): 1.5, ("007", 0): 2.0}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("request_id,value\nr,1\n", "missing column(s): y"),
        ("id,y\nr,1\n", "missing column(s): request_id"),
        ("request_id,y\n", "no rows"),
        ("", "not a CSV file: EmptyDataError: No columns to parse from file"),
        ('request_id,y\n"r,1\n', "not a CSV file: ParserError: Error tokenizing data"),
        ("request_id,y\nr,1\n ,2\n", "column 'request_id': every row must name its request; line(s) 3"),
        # pandas would read the second y as y.1 and join the first.
        ("request_id,y,y\nr,1,0\n", "names the column 'y' twice (columns 2 and 3)"),
        ("request_id,y\nr,1\ns\n", "line 3 has 1 cells, not the header's 2: a row cut short"),
        (
            "request_id,instance,y\nr,0,1\nr,-1,2\nr,x,3\n",
            "column 'instance': must be 0, 1, 2, ...; line(s) 3, 4",
        ),
        (
            "request_id,instance,y\nr,0,1\ns,0,2\nr,0,3\n",
            "an answer has two truth rows; line(s) 2, 4, e.g. 'r'",
        ),
        (
            "request_id,y\nr,1\ns,\nt,inf\nu,cheap\n",
            "column 'y': every value must be a finite number; line(s) 3, 4, 5",
        ),
    ],
)
def test_a_bad_truth_file_names_its_column_and_lines(truth_file: TruthFile, text: str, message: str) -> None:
    with pytest.raises(DatasetError) as raised:
        read_truth(truth_file(text), TOY.recipe)
    assert message in str(raised.value)


def test_a_row_after_a_cell_with_a_line_end_is_named_by_the_line_it_starts_on(truth_file: TruthFile) -> None:
    """Row ``i`` was called line ``i + 2`` whatever the file held: the second row here, on line 5,
    was called line 3, in the recipe's own check of the target as in the truth file's."""
    text = 'request_id,note,y\nr,"called\nback\ntwice",1\ns,,cheap\n'
    with pytest.raises(DatasetError) as raised:
        read_truth(truth_file(text), TOY.recipe)
    assert str(raised.value) == "column 'y': every value must be a finite number; line(s) 5, e.g. 'cheap'"
    with pytest.raises(DatasetError) as raised:
        read_truth(truth_file(text.replace("s,,cheap", "r,,2")), TOY.recipe)
    assert str(raised.value) == "column 'request_id': an answer has two truth rows; line(s) 2, 5, e.g. 'r'"


def test_a_binary_truth_is_0_or_1_and_a_multiclass_recipe_must_say_how_its_labels_are_written(
    truth_file: TruthFile,
) -> None:
    class Binary(ToyRecipe):
        task = "binary"

    with pytest.raises(
        DatasetError, match=r"column 'y': every value must be 0 or 1; line\(s\) 3, e.g. 'yes'"
    ):
        read_truth(truth_file("request_id,y\nr,1\ns,yes\nt,0\n"), Binary())
    truths = list(read_truth(truth_file("request_id,y\nr,1\ns, 0\n"), Binary()).values())
    assert truths == [1, 0]
    assert {type(truth) for truth in truths} == {int}  # the interpreter's shared 0 and 1, not numpy's

    class Multiclass(ToyRecipe):
        task = "multiclass"

    with pytest.raises(NotImplementedError, match=r"override truth\(\)"):
        read_truth(truth_file("request_id,y\nr,a\n"), Multiclass())


def test_only_the_rows_of_captured_answers_are_kept_and_every_row_is_checked(
    truth_file: TruthFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cumulative truth file read a chunk at a time: its rows of no capture are counted, not
    kept (3,000,300 rows took 1.29 GB before), and still refused when bad, on the file's line."""
    from servekit.evaluation import truth as truth_module

    monkeypatch.setattr(truth_module, "CHUNK_ROWS", 2)
    rows = "".join(f"r{i},{i}\n" for i in range(7))
    kept = read_truth(truth_file(f"request_id,y\n{rows}"), TOY.recipe, {("r1", 0), ("r5", 0), ("gone", 0)})
    assert kept == {("r1", 0): 1.0, ("r5", 0): 5.0}
    assert (kept.record.rows, kept.record.uncaptured) == (7, 5)
    with pytest.raises(
        DatasetError, match=r"column 'y': every value must be a finite number; line\(s\) 7, e.g. 'x'"
    ):
        read_truth(truth_file(f"request_id,y\n{rows.replace('r5,5', 'r5,x')}"), TOY.recipe, {("r1", 0)})
    # Two rows of one answer in different chunks, neither captured: the file is still refused.
    with pytest.raises(DatasetError, match=r"an answer has two truth rows; line\(s\) 3, 9"):
        read_truth(truth_file(f"request_id,y\n{rows}r1,9\n"), TOY.recipe, {("r0", 0)})


def test_truth_values_the_recipe_leaves_out_are_counted_and_named_by_line(truth_file: TruthFile) -> None:
    class Capped(ToyRecipe):
        truth_left_out = "a y training leaves out (over 10)"

        def truth(self, values: Any) -> Any:
            numbers = super().truth(values)
            return np.where(numbers > 10, np.nan, numbers)

    found = read_truth(
        truth_file('request_id,y\nr0,1\nr1,"1e6"\nr2,2\nr3,11\n'), Capped(), {("r1", 0), ("r2", 0)}
    )
    assert found == {("r2", 0): 2.0}
    assert (found.record.left_out, found.record.uncaptured) == (2, 1)
    assert found.record.left_out_line("toy") == (
        "toy: 2 truth rows with a y training leaves out (over 10): left out, as their answers would be "
        "of held-out rows: line 3 '1e6', line 5 '11'"
    )
