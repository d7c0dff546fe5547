"""Captured answers meeting their truth by request and instance, grouped by version."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from evaluation_logs import (
    capture_line,
)
from toy import TOY

from servekit.evaluation import (
    Grouper,
    assess,
    join,
)
from servekit.replay.capture_lines import read_lines
from servekit.replay.capture_objects import CaptureLineError
from servekit.training.uncertainty import Interval


def test_captures_meet_their_truth_by_request_and_instance_grouped_by_version(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, _ = served
    lines = [
        capture_line("batch", 0, rows[0], answers[0]),
        capture_line("batch", 1, rows[1], answers[1], version="2"),
        capture_line("single", 0, rows[2], answers[2]),
        capture_line("not-labelled-yet", 0, rows[3], answers[3]),
        capture_line("sent-twice", 0, rows[4], answers[4]),
        capture_line("sent-twice", 0, rows[5], answers[5]),
        capture_line("batch", 0, rows[6], answers[6], name="bankchurn"),
        '{"logger": "servekit.access", "message": "POST /predict 200"}',
    ]
    truth = {
        ("batch", 0): 1.0,
        ("batch", 1): 2.0,
        ("single", 0): 3.0,
        ("sent-twice", 0): 4.0,
        ("lost", 0): 5.0,
    }
    joined = join(read_lines(lines), "toy", Grouper(TOY.recipe), truth)
    assert [(a.version, a.truths, a.outputs) for a in joined.versions] == [
        ("1", [1.0, 3.0], [answers[0]["value"], answers[2]["value"]]),
        ("2", [2.0], [answers[1]["value"]]),
    ]
    assert joined.versions[0].groups == [(), ()]  # the toy names no groups
    assert (joined.captured, joined.without_truth) == (6, 1)
    assert (joined.truth_unmatched, joined.ambiguous, joined.other_services) == (1, 1, 1)


def test_the_same_answers_read_in_another_order_give_the_same_figures_and_intervals(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    # Versions 10 and 9 of the toy, answering in turn; read as logged, reversed, and shuffled.
    lines = [
        capture_line(f"c{i}", 0, row, answer, version="10" if i % 2 else "9")
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    truths = {(f"c{i}", 0): float(t) for i, t in enumerate(truth)}
    shuffled = list(np.random.default_rng(3).permutation(lines))
    joined = [
        join(read_lines(order), "toy", Grouper(TOY.recipe), truths)
        for order in (lines, lines[::-1], shuffled)
    ]
    # By number, not as first met (the reversed log meets 10 first) nor as text ("10" < "9").
    assert [a.version for a in joined[0].versions] == ["9", "10"]
    assert joined[1].versions == joined[0].versions
    assert joined[2].versions == joined[0].versions
    mae = float(np.mean(np.abs(truth - [a["value"] for a in answers])))
    held_out = Interval(mae, mae * 0.9, mae * 1.1)
    figures = {
        (q.live, q.difference)
        for j in joined
        for q in [assess(a, Grouper(TOY.recipe), held_out) for a in j.versions]
    }
    assert len(figures) == 2  # one per version, whatever the order read


def test_a_capture_without_the_scored_field_is_an_error_naming_its_line(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, _ = served
    lines = [capture_line("r", 0, rows[0], answers[0]), capture_line("s", 0, rows[1], {"label": "high"})]
    with pytest.raises(CaptureLineError, match="line 2: a toy answer without 'value'"):
        join(read_lines(lines), "toy", Grouper(TOY.recipe), {("r", 0): 1.0, ("s", 0): 2.0})


def test_answers_taken_by_position_keep_every_list_in_step() -> None:
    from dataclasses import fields

    from servekit.evaluation.joining import Answers

    # Every per-answer list holds its answer's position, so a list taken out of step shows.
    positions: dict[str, Any] = {
        f.name: list(range(4)) for f in fields(Answers) if f.name not in ("name", "version")
    }
    answers = Answers("toy", "1", **positions)
    taken = answers.only([1, 3])
    lists = {f.name: getattr(taken, f.name) for f in fields(Answers) if f.name not in ("name", "version")}
    assert lists == {name: [1, 3] for name in lists}
    assert (taken.name, taken.version) == ("toy", "1")
    # No hashes of the answers' rows: none to take.
    unhashed: dict[str, Any] = {
        f.name: [5, 6] for f in fields(Answers) if f.name not in ("name", "version", "rows")
    }
    assert Answers("toy", "1", **unhashed, rows=None).only([1]).rows is None
