"""``mlp evaluate``'s truth file: the answers named by request and instance, the target checked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
