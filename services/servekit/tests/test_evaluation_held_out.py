"""The held-out answers and rates a run recorded, read back, and a damaged file refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evaluation_logs import (
    KeptRun,
)

from servekit.errors import ServekitError
from servekit.evaluation import (
    held_out_answers,
    held_out_parity,
)
from servekit.training.versions import HELD_OUT_ANSWERS, SERVING_METADATA


def test_the_held_out_answers_are_read_from_the_run_and_a_damaged_file_is_refused(tmp_path: Path) -> None:
    client = KeptRun(tmp_path)
    assert held_out_answers(client, "run-1", "1") is None  # a run trained before they were kept
    kept = tmp_path / HELD_OUT_ANSWERS
    kept.write_text(json.dumps({"target": [1.0, 2.0], "output": [1.5, 2.5]}))
    target, output, groups = held_out_answers(client, "run-1", "1") or ((), (), None)
    assert (list(target), list(output), groups) == ([1.0, 2.0], [1.5, 2.5], None)
    kept.write_text(json.dumps({"target": [1.0, 2.0], "output": [1.5, 2.5], "groups": {"color": ["red", 3]}}))
    assert held_out_answers(client, "run-1", "1").groups == {"color": ["red", "3"]}
    for damaged, problem in (
        ("{", "does not read: Expecting property name"),
        (json.dumps({"target": [1.0]}), "does not read: no 'output' list"),
        (json.dumps({"target": [1.0, 2.0], "output": [1.0]}), "does not read: 2 truths and 1 outputs"),
        (
            json.dumps({"target": [1.0, 2.0], "output": [1.0, 2.0], "groups": {"color": ["red"]}}),
            "does not read: 2 truths and 1 groups of color",
        ),
        (
            json.dumps({"target": [1.0, 2.0], "output": [1.0, 2.0], "groups": ["red", "blue"]}),
            "does not read: 'groups' is a list, not a mapping",
        ),
    ):
        kept.write_text(damaged)
        with pytest.raises(
            ServekitError, match=f"version 1's run run-1: {HELD_OUT_ANSWERS} {problem}"
        ) as error:
            held_out_answers(client, "run-1", "1")
        assert error.value.status_code == 409  # exit 2: no retry reads it otherwise


def test_the_held_out_rates_are_read_from_the_run_and_a_damaged_file_is_refused(tmp_path: Path) -> None:
    client = KeptRun(tmp_path)
    assert held_out_parity(client, "run-1", "1") is None  # a run trained before they were logged
    kept = tmp_path / SERVING_METADATA
    rates = {"color": {"groups": {"red": {"rows": 120, "flagged_share": 0.2}}, "gaps": {}}}
    kept.write_text(json.dumps({"threshold": 0.4, "parity": rates}))
    assert held_out_parity(client, "run-1", "1") == rates
    kept.write_text(json.dumps({"threshold": 0.4}))  # a model with no groups reports none
    assert held_out_parity(client, "run-1", "1") is None
    for damaged, problem in (
        ("{", "Expecting property name"),
        (json.dumps({"parity": [1]}), "'parity' is a list"),
    ):
        kept.write_text(damaged)
        with pytest.raises(
            ServekitError, match=f"version 1's run run-1: {SERVING_METADATA} does not read: {problem}"
        ):
            held_out_parity(client, "run-1", "1")
