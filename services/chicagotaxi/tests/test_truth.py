"""ChicagoTaxi's truth for ``mlp evaluate``: fares training leaves out are left out of live figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from chicagotaxi.model import TaxiFareRecipe
from servekit.datasets import DatasetError
from servekit.evaluation import read_truth


def test_fares_training_leaves_out_are_left_out_counted_and_named(tmp_path: Path) -> None:
    """A fare of -5 was accepted, and a single 1e6 turned a live MAE of 5.25 into 5005, "worse"."""
    truth = tmp_path / "truth.csv"
    truth.write_text("request_id,fare\na,10.5\nb,-5\nc,1e6\nd,3.25\ne,3.24\nf,403.25\n")
    found = read_truth(truth, TaxiFareRecipe())
    assert found == {("a", 0): 10.5, ("d", 0): 3.25, ("f", 0): 403.25}
    assert found.record.left_out_line("chicagotaxi") == (
        "chicagotaxi: 3 truth rows with a fare training leaves out (under $3.25, or over $403.25, the "
        "most the meter reaches on any trip a request can be): left out, as their answers would be of "
        "held-out rows: line 3 '-5', line 4 '1e6', line 6 '3.24'"
    )
    # Not a number at all: the file is wrong, not the trip, and refused as before.
    truth.write_text("request_id,fare\na,ten\n")
    with pytest.raises(
        DatasetError, match=r"column 'fare': every value must be a finite number; line\(s\) 2"
    ):
        read_truth(truth, TaxiFareRecipe())
