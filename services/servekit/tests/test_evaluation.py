"""``mlp evaluate``: captured answers joined with the truth that came later and scored per version."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from toy import TOY, ToyModel, ToyRecipe, registered

from servekit import cli, evaluation
from servekit.datasets import DatasetError
from servekit.errors import ServekitError
from servekit.evaluation import (
    Answers,
    Grouper,
    Joined,
    Quality,
    assess,
    held_out_answers,
    held_out_parity,
    independent_difference,
    join,
    joining,
    parity_against_held_out,
    read_truth,
    render,
)
from servekit.evaluation.groups import within_groups
from servekit.evaluation.held_out import HeldOutAnswers
from servekit.replay import CaptureLineError, read_lines
from servekit.routing import ALONE, ASKED, DRAWN, FALLBACK
from servekit.testing import request_rows, train_in_memory
from servekit.training import parity, uncertainty
from servekit.training.trainer import held_out_record
from servekit.training.uncertainty import Interval, each_of, paired_difference, unpaired_difference
from servekit.training.versions import HELD_OUT_ANSWERS, SERVING_METADATA, list_versions, live_evidence
from servekit.training.versions import render as render_versions


def truth_file(text: str) -> io.StringIO:
    return io.StringIO(text)


def capture_line(
    request_id: str,
    instance: int,
    row: dict[str, Any],
    answer: dict[str, Any],
    variant: str = "stable",
    *,
    answered_at: str | None = None,
    routed: str | None = None,
    **model: str,
) -> str:
    """A capture as the service logs it in JSON (``model``: version, and name when not toy's);
    without ``answered_at`` or ``routed`` as the lines written before captures held them."""
    capture = (
        {
            "model": {"name": "toy", "version": "1"} | model,
            "variant": variant,
            "instance": instance,
            "input": row,
            "prediction": answer,
        }
        | ({"answered_at": answered_at} if answered_at else {})
        | ({"routed": routed} if routed else {})
    )
    return json.dumps({"logger": "servekit.capture", "request_id": request_id, "capture": capture})


@pytest.fixture(scope="module")
def served() -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """300 held-out rows, the toy model's answers to them and the truth of each."""
    artifact, data = train_in_memory(TOY, rows=1500)
    rows = request_rows(data, 300)
    assert len(rows) == 300
    truth = data.y_test.head(300).to_numpy()
    return rows, ToyModel(artifact).predict(rows), truth


def test_the_truth_file_names_answers_by_request_and_instance() -> None:
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
def test_a_bad_truth_file_names_its_column_and_lines(text: str, message: str) -> None:
    with pytest.raises(DatasetError) as raised:
        read_truth(truth_file(text), TOY.recipe)
    assert message in str(raised.value)


def test_a_binary_truth_is_0_or_1_and_a_multiclass_recipe_must_say_how_its_labels_are_written() -> None:
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


def test_live_answers_scored_against_the_held_out_figure_within_the_noise_or_beyond_it(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    outputs = [a["value"] for a in answers]
    mae = float(np.mean(np.abs(truth - outputs)))
    held_out = Interval(mae, mae * 0.9, mae * 1.1)

    def answered(truths: Any) -> Answers:
        return Answers("toy", "1", outputs=outputs, truths=list(truths), groups=[()] * len(rows))

    same = assess(answered(truth), Grouper(TOY.recipe), held_out)
    assert same.verdict == "within the noise"
    assert same.live is not None
    assert same.live.estimate == pytest.approx(mae)
    assert same.live.low < mae < same.live.high
    assert same.difference is not None
    assert same.difference.estimate == pytest.approx(0.0)
    # The world moved: every fare is now a dollar more than the model says. Lower MAE is better.
    worse = assess(answered(truth + 1.0), Grouper(TOY.recipe), held_out)
    assert worse.verdict == "worse"
    assert worse.difference is not None
    assert worse.difference.low > 0
    better = assess(answered(truth), Grouper(TOY.recipe), Interval(mae + 1, mae + 0.9, mae + 1.1))
    assert better.verdict == "better"
    # With the held-out rows' answers, as a training run keeps them: each sample resampled on
    # its own, from the same draws as the live interval.
    rows_kept = HeldOutAnswers(truth + 0.5, np.asarray(outputs))
    resampled = assess(answered(truth), Grouper(TOY.recipe), held_out, held_out_rows=rows_kept)
    assert resampled.resampled
    assert resampled.live == same.live
    assert (resampled.live, resampled.difference) == unpaired_difference(
        TOY.recipe.primary(), truth, outputs, rows_kept.target, rows_kept.output
    )
    # Kept before the groups were: the groups are not compared, and the report says why.
    assert resampled.groups == ()
    assert (
        resampled.groups_note
        == "its training run kept no groups of its held-out rows (trained before they were)"
    )
    assert not same.resampled
    joined = Joined([], captured=300, without_truth=0, truth_unmatched=0, ambiguous=0, other_services=0)
    combined = "(the two intervals combined: its run kept no held-out answers)"
    assert render(joined, [same], "t.csv").splitlines()[0].endswith(f"within the noise {combined}")
    assert combined not in render(joined, [resampled], "t.csv")
    # No held-out figure (a version the registry lacks): the live figure alone, not compared.
    alone = assess(
        answered(truth), Grouper(TOY.recipe), None, held_out_note="version 1 is not in the registry"
    )
    assert alone.live is not None
    assert alone.verdict is None
    assert alone.difference is None


def test_too_few_answers_or_one_class_only_get_no_figure_and_say_why(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    _, answers, truth = served
    few = Answers("toy", "1", [a["value"] for a in answers[:99]], list(truth[:99]), [()] * 99)
    found = assess(few, Grouper(TOY.recipe), None)
    assert found.live is None
    assert found.rows == 99
    assert found.note == "fewer than 100 answers with their truth (--min-rows)"
    assert assess(few, Grouper(TOY.recipe), None, min_rows=50).live is not None

    class Binary(ToyRecipe):
        task = "binary"
        primary_metric = "roc_auc"
        greater_is_better = True

    stayed = Answers("toy", "1", [0.1 * (i % 10) for i in range(200)], [0] * 200, [()] * 200)
    assert assess(stayed, Grouper(Binary()), None).note == "one class only in their truth"


def test_live_figures_per_group_as_at_training_found_a_chunk_of_inputs_at_a_time(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    rows, answers, truth = served

    class ByColourAndSize(ToyRecipe):
        def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
            size = pd.cut(features["x"], bins=[0, 5, 11], labels=["up to 5", "over 5"], right=False)
            return {"color": features["color"], "x": size}

    monkeypatch.setattr(joining, "GROUPING_CHUNK", 64)
    grouper = Grouper(ByColourAndSize())
    labels: list[int] = []
    original = grouper.labels
    monkeypatch.setattr(grouper, "labels", lambda inputs: labels.append(len(inputs)) or original(inputs))
    lines = [
        capture_line(f"r{i}", 0, row, answer)
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    joined = join(read_lines(lines), "toy", grouper, {(f"r{i}", 0): y for i, y in enumerate(truth)})
    assert labels == [64, 64, 64, 64, 44]  # the inputs are let go a chunk at a time
    # Each combination of labels is kept once, across the chunks, and every answer refers to it.
    groups = joined.versions[0].groups
    assert len({id(labels) for labels in groups}) == len(set(groups)) == 4
    found = assess(joined.versions[0], grouper, None)
    reds = sum(row["color"] == "red" for row in rows)
    assert found.segments["color"]["red"]["rows"] == reds
    assert set(found.segments["color"]["red"]) == {"rows", "mae", "mae_ci_low", "mae_ci_high"}
    assert found.segments["color"]["blue"]["rows"] == len(rows) - reds
    # The declared order of a categorical's groups is kept (not sorted: "over 5" < "up to 5").
    assert list(found.segments["x"]) == ["up to 5", "over 5"]
    small = sum(row["x"] < 5 for row in rows)
    assert found.segments["x"]["up to 5"]["rows"] == small
    # --min-rows holds for each group as for the whole.
    least = max(small, len(rows) - small) + 1
    few = assess(joined.versions[0], grouper, None, min_rows=least)
    assert few.live is not None
    assert few.segments["x"]["over 5"] == {
        "rows": len(rows) - small,
        "note": f"fewer than {least} answers with their truth",
    }


def test_a_canary_is_judged_against_the_stable_version_on_the_same_traffic(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    grouper = Grouper(TOY.recipe)

    def judged(canary_shift: float, canary_variant: str = "canary") -> list[evaluation.CanaryComparison]:
        lines = []
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
            if i % 2:  # the router's share: every other request
                shifted = {"value": answer["value"] + canary_shift}
                lines.append(capture_line(f"r{i}", 0, row, shifted, canary_variant, version="2"))
            else:
                lines.append(capture_line(f"r{i}", 0, row, answer, "stable", version="1"))
        joined = join(read_lines(lines), "toy", grouper, {(f"r{i}", 0): y for i, y in enumerate(truth)})
        qualities = [assess(a, grouper, None) for a in joined.versions]
        found = evaluation.compare_canaries(joined, grouper)
        text = render(joined, qualities, "truth.csv", found)
        # These captures do not say when they were answered (lines older than answered_at).
        whole_log = "the whole log (its captures do not say when they were answered): mae "
        assert (f"toy canary v2 against stable v1 on the same traffic, {whole_log}" in text) == bool(found)
        return found

    same = judged(0.0)
    assert [(c.canary, c.stable, c.verdict) for c in same] == [("2", "1", "within the noise")]
    worse = judged(1.0)  # every canary fare a dollar off: a higher MAE is worse
    assert [c.verdict for c in worse] == ["worse"]
    assert worse[0].difference.low > 0
    # No second stable version to hold it against: nothing is compared.
    assert judged(1.0, canary_variant="stable") == []


START = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def at(second: int) -> str:
    return (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")


def canary_log(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], *, timed: bool = True
) -> list[str]:
    """v1 for 100 requests, a dollar off (another season's fares, say; drawn beside an earlier
    canary), then v2 as the canary of every other request, both answering alike; then v2,
    promoted, alone. Without ``timed``, as the lines written before captures held their time
    and routing."""
    rows, answers, _ = served
    lines = []
    drawn = DRAWN if timed else None
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        when = at(i) if timed else None
        if i < 100:
            off = {"value": answer["value"] + 1.0}
            lines.append(
                capture_line(f"r{i}", 0, row, off, "stable", answered_at=when, routed=drawn, version="1")
            )
        else:
            variant, version = ("canary", "2") if i % 2 else ("stable", "1")
            lines.append(
                capture_line(
                    f"r{i}", 0, row, answer, variant, answered_at=when, routed=drawn, version=version
                )
            )
    for i, (row, answer) in enumerate(zip(rows[:100], answers[:100], strict=True)):
        when = at(400 + i) if timed else None
        alone = ALONE if timed else None
        lines.append(
            capture_line(f"later-{i}", 0, row, answer, "stable", answered_at=when, routed=alone, version="2")
        )
    return lines


def judged(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    lines: list[str],
    *,
    later_truth: bool = False,
    min_rows: int = 50,
    extra_truth: dict[tuple[str, int], Any] | None = None,
) -> tuple[list[evaluation.CanaryComparison], str]:
    """The canaries compared, and the report; ``later_truth``: the promoted v2's truth is known."""
    grouper = Grouper(TOY.recipe)
    truth = {(f"r{i}", 0): y for i, y in enumerate(served[2])} | (extra_truth or {})
    if later_truth:
        truth |= {(f"later-{i}", 0): y for i, y in enumerate(served[2][:100])}
    joined = join(read_lines(lines), "toy", grouper, truth)
    qualities = [assess(a, grouper, None) for a in joined.versions]
    found = evaluation.compare_canaries(joined, grouper, min_rows=min_rows)
    return found, render(joined, qualities, "truth.csv", found)


def test_a_canary_is_held_against_the_stable_answers_of_its_own_period_only(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    """Stable answers from before the canary started come from other days: they are left out."""
    [windowed], text = judged(served, canary_log(served))
    # Its first and last answer as the canary: not the promoted v2's answers after.
    assert windowed.period == (
        (START + timedelta(seconds=101)).timestamp(),
        (START + timedelta(seconds=299)).timestamp(),
    )
    # v1's answers from 09:01:42 to 09:04:58.
    assert (windowed.canary_rows, windowed.stable_rows, windowed.stable_answers) == (100, 99, 200)
    assert windowed.verdict == "within the noise"
    assert (
        "toy canary v2 against stable v1 on the same traffic, 2026-12-02 09:01:41 to 2026-12-02 09:04:59 UTC "
        "(99 of v1's 200 answers with their truth): mae "
    ) in text
    # The same answers without their times: the stable side is the whole log, and the canary
    # looks better than the stable version because of the days it did not serve.
    [whole], text = judged(served, canary_log(served, timed=False))
    assert (whole.period, whole.stable_rows) == (None, 200)
    assert whole.verdict == "better"
    assert (
        "on the same traffic, the whole log (its captures do not say when they were answered): mae " in text
    )
    # Too few stable answers in the canary's period for a figure: no comparison, and why.
    [short], text = judged(served, canary_log(served), min_rows=100)
    assert (short.difference, short.verdict) == (None, None)
    assert "no comparison: the stable version's answers in its period: fewer than 100 answers" in text


def test_a_canary_promoted_since_keeps_its_answers_as_the_canary(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    # v2's truth is known for its answers as the stable version too: it answered as both.
    [promoted], _ = judged(served, canary_log(served), later_truth=True)
    assert (promoted.canary, promoted.stable, promoted.canary_rows, promoted.stable_rows) == (
        "2",
        "1",
        100,
        99,
    )
    assert promoted.verdict == "within the noise"
    # Without the times, which answers were given beside which cannot be told: no comparison.
    assert judged(served, canary_log(served, timed=False), later_truth=True)[0] == []


def test_a_canary_period_without_exactly_one_stable_version_is_not_compared(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, _ = served
    # A v3 also answered as the stable version while the canary ran (pods on two champions).
    also = capture_line(
        "r150", 0, rows[150], answers[150], "stable", answered_at=at(150), routed=DRAWN, version="3"
    )
    lines = [also if '"request_id": "r150"' in line else line for line in canary_log(served)]
    [two], text = judged(served, lines)
    assert (two.stable, two.difference) == ("", None)
    assert (
        "toy canary v2, 2026-12-02 09:01:41 to 2026-12-02 09:04:59 UTC: no comparison: v1, v3 all answered"
        in text
    )
    # The canary alone in its period.
    alone = [line for line in canary_log(served) if '"canary"' in line]
    [none], text = judged(served, alone)
    assert none.note == "no answer as the stable version in its period"


def test_the_difference_of_figures_on_different_rows_adds_their_spreads_in_quadrature() -> None:
    found = independent_difference(Interval(0.80, 0.77, 0.83), Interval(0.86, 0.82, 0.90))
    assert found.estimate == pytest.approx(-0.06)
    assert (found.low, found.high) == (pytest.approx(-0.11), pytest.approx(-0.01))
    exact = independent_difference(Interval(0.80, 0.77, 0.83), Interval(0.86, 0.86, 0.86))
    assert (exact.low, exact.high) == (pytest.approx(-0.09), pytest.approx(-0.03))


def test_the_report_gives_each_version_its_figure_verdict_groups_and_what_did_not_meet(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    lines = [
        capture_line(f"r{i}", 0, row, answer)
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    lines += [capture_line("late", 0, rows[0], answers[0], version="2")]
    lines += [capture_line("twice", 0, rows[1], answers[1])] * 2
    table = {(f"r{i}", 0): float(y + 1.0) for i, y in enumerate(truth)} | {
        ("late", 0): 1.0,
        ("gone", 0): 2.0,
        ("twice", 0): 3.0,
    }
    joined = join(read_lines(lines), "toy", Grouper(TOY.recipe), table)
    held_out = Interval(0.5, 0.45, 0.55)
    qualities = [
        assess(a, Grouper(TOY.recipe), held_out if a.version == "1" else None, held_out_note="x")
        for a in joined.versions
    ]
    text = render(joined, qualities, "truth.csv").splitlines()
    assert text[0].startswith("toy v1: 300 answers with their truth: mae ")
    assert "against 0.5000 held out (95% CI 0.4500-0.5500): +" in text[0]
    assert text[0].endswith(", worse (the two intervals combined: its run kept no held-out answers)")
    assert (
        text[1]
        == "toy v2: 1 answer with its truth: no figure: fewer than 100 answers with their truth (--min-rows)"
    )
    assert text[2] == "toy: 303 of 303 captured answers have a truth row in truth.csv"
    unmatched = "toy: 1 truth row without a captured answer (requests the capture did not sample, see"
    assert text[3].startswith(f"{unmatched} TOY_CAPTURE_PERCENT")
    assert text[4] == (
        "toy: 1 truth row left out, for answers captured more than once under one request id and "
        "instance: which answer the truth is of is unknown"
    )


def test_the_command_refuses_a_missing_or_bad_file_before_it_asks_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    captures = tmp_path / "captures.log"
    captures.write_text("")
    truth = tmp_path / "truth.csv"
    truth.write_text("request_id,Exited\nr,2\n")
    unreachable = ["--tracking-uri", "http://127.0.0.1:9"]
    # A Job named for runs that are not logged, or a Job with no name (a label the pod lacks).
    argv = ["evaluate", "bankchurn", str(captures), "--truth", str(truth), *unreachable]
    assert cli.main([*argv, "--job", "bankchurn-live-evaluation-2900"]) == 2
    assert (
        "evaluate: --job bankchurn-live-evaluation-2900: names the Job on the runs --log records; add --log"
        in capsys.readouterr().err
    )
    assert cli.main([*argv, "--log", "--job", ""]) == 2
    assert "evaluate: --job: empty; name the Kubernetes Job running the evaluation" in capsys.readouterr().err
    assert (
        cli.main(["evaluate", "bankchurn", str(tmp_path / "none.log"), "--truth", str(truth), *unreachable])
        == 2
    )
    assert (
        "evaluate: " + str(tmp_path / "none.log") + ": no such file or directory" in capsys.readouterr().err
    )
    (tmp_path / "empty" / "2026").mkdir(parents=True)
    assert (
        cli.main(["evaluate", "bankchurn", str(tmp_path / "empty"), "--truth", str(truth), *unreachable]) == 2
    )
    assert (
        "evaluate: " + str(tmp_path / "empty") + ": a directory without a file to read"
        in capsys.readouterr().err
    )
    assert (
        cli.main(
            ["evaluate", "bankchurn", str(captures), "--truth", str(tmp_path / "none.csv"), *unreachable]
        )
        == 2
    )
    assert "--truth " + str(tmp_path / "none.csv") + ": no such file" in capsys.readouterr().err
    assert cli.main(["evaluate", "bankchurn", str(captures), "--truth", str(truth), *unreachable]) == 2
    err = capsys.readouterr().err
    assert "column 'Exited': every value must be 0 or 1; line(s) 2, e.g. '2'" in err


def test_only_the_answers_the_router_drew_are_compared(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    """Answers a request asked for, and the canary's share answered by the stable model, are not
    part of the randomised experiment: they are left out, and the line says how many."""
    rows, answers, truth = served
    extra: list[str] = []
    extra_truth: dict[tuple[str, int], Any] = {}
    for i in range(50):
        # A smoke test of cases picked by hand, asked of the canary (X-Model-Variant), some after
        # its last drawn answer: every answer exact.
        exact = {"value": float(truth[i])}
        extra.append(
            capture_line(
                f"asked-{i}", 0, rows[i], exact, "canary", answered_at=at(250 + i), routed=ASKED, version="2"
            )
        )
        extra_truth[f"asked-{i}", 0] = truth[i]
        # The canary's share answered by v1 while the canary was loading, three dollars off.
        off = {"value": answers[50 + i]["value"] + 3.0}
        extra.append(
            capture_line(
                f"fallback-{i}",
                0,
                rows[50 + i],
                off,
                "stable",
                answered_at=at(150 + i),
                routed=FALLBACK,
                version="1",
            )
        )
        extra_truth[f"fallback-{i}", 0] = truth[50 + i]
    lines = canary_log(served) + extra
    [drawn], text = judged(served, lines, extra_truth=extra_truth)
    # The period is the canary's drawn answers': not the smoke test after them.
    assert drawn.period == (
        (START + timedelta(seconds=101)).timestamp(),
        (START + timedelta(seconds=299)).timestamp(),
    )
    assert (drawn.canary_rows, drawn.stable_rows, drawn.stable_answers, drawn.canary_asked) == (
        100,
        99,
        250,
        50,
    )
    assert drawn.verdict == "within the noise"
    assert (
        "UTC (99 of v1's 250 answers with their truth; "
        "v2's 50 answers asked for by their requests left out): mae " in text
    )
    # The same answers, had the captures not said how they were routed: the canary looks better.
    unrouted = [re.sub(r', "routed": "\w+"', "", line) for line in lines]
    [mixed], text = judged(served, unrouted, extra_truth=extra_truth)
    assert (mixed.canary_rows, mixed.stable_rows, mixed.canary_asked) == (150, 149, 0)
    assert mixed.verdict == "better"
    assert "some captures do not say how they were routed: answers asked for may be in" in text


def test_a_canary_only_ever_asked_for_is_not_compared(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    asked = [
        line.replace('"routed": "drawn"', '"routed": "asked"') if '"canary"' in line else line
        for line in canary_log(served)
    ]
    [none], text = judged(served, asked)
    assert (none.stable, none.canary_asked, none.difference) == ("", 100, None)
    assert (
        "toy canary v2: no comparison: "
        "its 100 answers as the canary with their truth were all asked for, none drawn" in text
    )


class KeptRun:
    """The registry calls ``held_out_answers`` makes, answered from one run's artifact folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def list_artifacts(self, run_id: str) -> list[Any]:
        return [SimpleNamespace(path=p.name) for p in self.folder.iterdir()]

    def download_artifacts(self, run_id: str, path: str, destination: str) -> str:
        return shutil.copy(self.folder / path, destination)


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
        assert error.value.status_code == 502


class Offered(ToyRecipe):
    """A binary recipe whose answers carry a probability and the label the service gave."""

    task = "binary"
    primary_metric = "roc_auc"
    greater_is_better = True

    def served_output(self, prediction: dict[str, Any]) -> Any:
        return prediction["p"]

    def served_decision(self, prediction: dict[str, Any]) -> bool:
        return bool(prediction["label"] == "offer")

    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        return {"color": features["color"]}


def offered_log(rows: int = 600) -> tuple[list[str], dict[tuple[str, int], int], pd.DataFrame]:
    """Red customers offered at a lower probability (0.3) than blue ones (0.6), and their truth."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x": rng.uniform(0, 10, rows), "color": rng.choice(["red", "blue"], rows)})
    frame["truth"] = (rng.random(rows) < 0.3).astype(int)
    frame["p"] = np.clip(0.35 * frame["truth"] + rng.random(rows) * 0.65, 0, 1)
    frame["offered"] = frame["p"] >= np.where(frame["color"] == "red", 0.3, 0.6)
    lines = [
        capture_line(
            f"c{i}",
            0,
            {"x": row.x, "color": row.color},
            {"p": row.p, "label": "offer" if row.offered else "none"},
        )
        for i, row in enumerate(frame.itertuples())
    ]
    return lines, {(f"c{i}", 0): int(y) for i, y in enumerate(frame["truth"])}, frame


def test_live_decisions_per_group_are_the_labels_served_not_recomputed() -> None:
    lines, truth, frame = offered_log()
    grouper = Grouper(Offered())
    joined = join(read_lines(lines), "toy", grouper, truth)
    found = assess(joined.versions[0], grouper, None)
    for color in ("red", "blue"):
        rows = frame[frame["color"] == color]
        entry = found.parity["color"]["groups"][color]
        assert entry["rows"] == len(rows)
        assert entry["flagged_share"] == pytest.approx(rows["offered"].mean(), rel=1e-12)
        assert entry["true_positive_rate"] == pytest.approx(
            rows["offered"][rows["truth"] == 1].mean(), rel=1e-12
        )
        assert entry["false_positive_rate"] == pytest.approx(
            rows["offered"][rows["truth"] == 0].mean(), rel=1e-12
        )
    # Red's stayers are offered from 0.3, blue's from 0.6: the gap is far beyond the noise.
    gap = found.parity["color"]["gaps"]["false_positive_rate"]
    assert (gap["highest"], gap["lowest"]) == ("red", "blue")
    assert gap["ci_low"] > 0.2
    report = render(joined, [found], "truth.csv").splitlines()
    decisions = next(line for line in report if line.startswith("toy v1:   color decisions: "))
    share = found.parity["color"]["gaps"]["flagged_share"]
    assert f"share flagged red - blue {share['gap']:+.4f} ({share['ci_low']:+.4f} to " in decisions
    assert f", ratio {share['ratio']:.2f}, under 0.8; true-positive rate " in decisions
    assert f"; false-positive rate red - blue {gap['gap']:+.4f} (" in decisions
    # --min-rows holds for a group's rates as for its other figures.
    few = assess(joined.versions[0], grouper, None, min_rows=len(frame) - 1)
    assert (
        few.parity["color"]["groups"]["red"]["note"]
        == f"fewer than {len(frame) - 1} answers with their truth"
    )
    assert (
        render(joined, [few], "t").splitlines()[2]
        == "toy v1:   color decisions: fewer than two groups with a figure"
    )


def test_without_the_served_decision_a_binary_recipe_has_no_live_rates_and_a_regressor_its_signed_error(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    lines, truth, _ = offered_log()

    class Unsaid(Offered):
        def served_decision(self, prediction: dict[str, Any]) -> None:
            return None

    grouper = Grouper(Unsaid())
    assert assess(join(read_lines(lines), "toy", grouper, truth).versions[0], grouper, None).parity == {}
    rows, answers, values = served

    class ByColour(ToyRecipe):
        def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
            return {"color": features["color"]}

    grouper = Grouper(ByColour())
    logged = [
        capture_line(f"r{i}", 0, row, answer)
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    joined = join(read_lines(logged), "toy", grouper, {(f"r{i}", 0): y for i, y in enumerate(values)})
    found = assess(joined.versions[0], grouper, None)
    red = np.array([row["color"] == "red" for row in rows])
    errors = np.array([a["value"] for a in answers]) - values
    assert found.parity["color"]["groups"]["red"]["mean_error"] == pytest.approx(
        errors[red].mean(), rel=1e-12
    )
    assert set(found.parity["color"]["gaps"]) == {"mean_error"}


@pytest.mark.parametrize("before", [None, "false"])
def test_mlflow_run_links_are_unprinted_only_while_a_run_is_logged(
    before: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if before is None:
        monkeypatch.delenv(evaluation.SUPPRESS_RUN_LINKS, raising=False)
    else:
        monkeypatch.setenv(evaluation.SUPPRESS_RUN_LINKS, before)
    with evaluation.run_links_unprinted():
        assert os.environ[evaluation.SUPPRESS_RUN_LINKS] == "true"
    assert os.environ.get(evaluation.SUPPRESS_RUN_LINKS) == before


def held_out_rates(frame: pd.DataFrame, offered: pd.Series) -> dict[str, dict[str, Any]]:
    """The rates per colour ``mlp train`` would have reported for these rows and decisions."""
    return parity.group_parity(
        "binary", {"color": frame["color"]}, frame["truth"], offered.astype(float), threshold=0.5
    )


def test_live_rates_are_held_against_the_same_groups_held_out_rates() -> None:
    """Red's held-out rows were offered at blue's threshold (0.6); live, red is offered from 0.3."""
    lines, truth, frame = offered_log(2000)
    grouper = Grouper(Offered())
    joined = join(read_lines(lines), "toy", grouper, truth)
    held_out = held_out_rates(frame, frame["p"] >= 0.6)
    found = assess(joined.versions[0], grouper, None, held_out_parity=held_out)
    changes = {(c.group, c.figure): c for c in found.parity_changes["color"]}
    assert len(changes) == 6  # two colours, three rates each
    for (group, figure), change in changes.items():
        live_rate = found.parity["color"]["groups"][group][figure]
        held_rate = held_out["color"]["groups"][group][figure]
        assert (change.live, change.held_out) == (live_rate, held_rate)
        assert change.difference.estimate == pytest.approx(live_rate - held_rate, abs=1e-12)
        assert change.difference.low <= change.difference.estimate <= change.difference.high
        assert change.difference.level == each_of(6)  # six rates' intervals that hold together
    # Red's rates rose far beyond the noise; blue's are the same decisions, so no change at all.
    assert changes["red", "false_positive_rate"].difference.low > 0.2
    assert changes["red", "flagged_share"].beyond_the_noise
    for figure in ("flagged_share", "true_positive_rate", "false_positive_rate"):
        blue = changes["blue", figure].difference
        assert blue.estimate == 0
        assert blue.low < 0 < blue.high
        assert not changes["blue", figure].beyond_the_noise
    text = render(joined, [found], "t").splitlines()
    line = next(x for x in text if x.startswith("toy v1:   color decisions against"))
    assert text[text.index(line) - 1] == (
        "toy v1:   decisions against held out, each at 99.2% (Bonferroni over 6 rates: 95% together)"
    )
    red = changes["red", "false_positive_rate"]
    assert (
        f"false-positive rate red {red.live:.4f} against {red.held_out:.4f} held out: "
        f"{red.difference.estimate:+.4f} ({red.difference.low:+.4f} to {red.difference.high:+.4f})"
    ) in line
    assert line.endswith("beyond the noise; the other 3 within it")


def test_a_version_whose_run_reported_no_rates_says_so_and_one_not_compared_says_nothing_more() -> None:
    lines, truth, _ = offered_log()
    grouper = Grouper(Offered())
    joined = join(read_lines(lines), "toy", grouper, truth)
    older = assess(joined.versions[0], grouper, Interval(0.7, 0.65, 0.75), held_out_parity=None)
    assert older.parity_changes == {}
    assert (
        "toy v1:   decisions against held out: none: its training run reported no rates per group "
        "(trained before they were)"
    ) in render(joined, [older], "t").splitlines()
    unregistered = assess(joined.versions[0], grouper, None, held_out_parity=None)
    assert "against held out" not in render(joined, [unregistered], "t")


def test_a_rate_drawn_as_its_rows_count_has_the_spread_of_two_proportions() -> None:
    """The binomial draws of each side: the interval's half-width is 1.96 standard errors of the
    difference of two proportions, within the bootstrap's own noise."""
    live = {"g": {"groups": {"a": {"rows": 900, "flagged_share": 0.3}}}}
    held_out = {"g": {"groups": {"a": {"rows": 400, "flagged_share": 0.25}}}}
    (change,) = parity_against_held_out(live, held_out, seed=3)["g"]
    standard_error = np.sqrt(0.3 * 0.7 / 900 + 0.25 * 0.75 / 400)
    assert (change.difference.high - change.difference.low) / 2 == pytest.approx(
        1.96 * standard_error, rel=0.1
    )
    assert change.difference.estimate == pytest.approx(0.05)


def test_several_rates_intervals_hold_together_each_wider_as_their_number_asks() -> None:
    """Two groups' rates: each interval at 97.5 %, z = 2.24 standard errors, from as many
    draws as its ends need; a move of 2.1 standard errors, beyond 95 % alone, is within it."""
    standard_error = np.sqrt(0.3 * 0.7 / 900 + 0.3 * 0.7 / 400)
    moved = 0.3 + 2.1 * standard_error
    live = {"g": {"groups": {g: {"rows": 900, "flagged_share": moved} for g in "ab"}}}
    held_out = {"g": {"groups": {g: {"rows": 400, "flagged_share": 0.3} for g in "ab"}}}
    changes = parity_against_held_out(live, held_out, seed=3)["g"]
    assert [c.difference.level for c in changes] == [0.975, 0.975]
    for change in changes:
        assert (change.difference.high - change.difference.low) / 2 == pytest.approx(
            float(norm.ppf(0.9875)) * standard_error, rel=0.1
        )
        assert not change.beyond_the_noise
    (alone,) = parity_against_held_out({"g": {"groups": {"a": live["g"]["groups"]["a"]}}}, held_out, seed=3)[
        "g"
    ]
    assert alone.beyond_the_noise


def test_a_group_without_a_figure_on_either_side_has_no_change_and_a_regressors_intervals_combine() -> None:
    live = {
        "g": {
            "groups": {
                "a": {"rows": 300, "mean_error": 0.5, "mean_error_ci_low": 0.3, "mean_error_ci_high": 0.7},
                "b": {"rows": 300, "mean_error": 0.1, "mean_error_ci_low": 0.0, "mean_error_ci_high": 0.2},
                "new": {"rows": 300, "mean_error": 0.0, "mean_error_ci_low": -0.1, "mean_error_ci_high": 0.1},
            }
        }
    }
    held_out = {
        "g": {
            "groups": {
                "a": {"rows": 200, "mean_error": 0.1, "mean_error_ci_low": -0.05, "mean_error_ci_high": 0.25},
                "b": {"rows": 50, "note": "fewer than 100 held-out rows"},
            }
        }
    }
    (change,) = parity_against_held_out(live, held_out)["g"]
    assert (change.group, change.figure) == ("a", "mean_error")
    spread = float(np.hypot(0.2, 0.15))
    assert (change.difference.low, change.difference.high) == (
        pytest.approx(0.4 - spread),
        pytest.approx(0.4 + spread),
    )
    assert parity_against_held_out(live, {}) == {}
    # Two regressor groups: the combined half-width is widened from 95 % to 97.5 % each.
    held_out["g"]["groups"]["b"] = held_out["g"]["groups"]["a"]
    widened = float(norm.ppf(0.9875) / norm.ppf(0.975))
    found = parity_against_held_out(live, held_out)["g"]
    assert [c.group for c in found] == ["a", "b"]
    for change, live_half in zip(found, (0.2, 0.1), strict=True):
        half = (change.difference.high - change.difference.low) / 2
        assert half == pytest.approx(float(np.hypot(live_half, 0.15)) * widened)
        assert change.difference.level == 0.975


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


def shadowed_log(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], shadow_values: Any
) -> tuple[list[str], dict[tuple[str, int], Any]]:
    """Each row answered by v1 and, as its shadow, by v2 with ``shadow_values``, in one log."""
    rows, answers, truth = served
    lines = []
    for i, (row, answer, value) in enumerate(zip(rows, answers, shadow_values, strict=True)):
        lines.append(capture_line(f"r{i:04d}", 0, row, answer, routed="alone"))
        shadow = {"value": float(value)}
        lines.append(capture_line(f"r{i:04d}", 0, row, shadow, "shadow", routed="alone", version="2"))
    return lines, {(f"r{i:04d}", 0): y for i, y in enumerate(truth)}


def test_a_shadows_answers_are_paired_with_the_served_ones_to_the_same_requests_and_never_scored_as_served(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    rows, answers, truth = served
    values = np.array([a["value"] for a in answers])
    lines, truths = shadowed_log(served, truth + (values - truth) / 2)
    grouper = Grouper(ToyRecipe())
    alone = join(read_lines(lines[0::2]), "toy", grouper, truths)
    joined = join(read_lines(lines), "toy", grouper, truths)
    # The served answers are what they are without the shadow's beside them.
    assert [v.version for v in joined.versions] == ["1"]
    assert joined.versions[0].outputs == alone.versions[0].outputs
    assert joined.versions[0].truths == alone.versions[0].truths
    assert (joined.captured, joined.shadow_captured, joined.shadow_unpaired) == (300, 300, 0)
    (pair,) = joined.shadows
    assert (pair.version, pair.served) == ("2", "1")
    assert pair.served_outputs == joined.versions[0].outputs
    assert pair.outputs == pytest.approx(list(truth + (values - truth) / 2), rel=1e-12)
    # A shadow answer captured twice, or whose served answer is not in the log, is not compared.
    damaged = [*lines[:4], lines[3], lines[5], *lines[6:]]  # r0001's shadow twice, r0002's served none
    damaged.append(capture_line("r9999", 0, rows[0], {"value": 1.0}, "shadow", version="2"))  # none either
    truths["r9999", 0] = 1.0
    again = join(read_lines(damaged), "toy", grouper, truths)
    assert (again.captured, again.shadow_captured, again.shadow_unpaired) == (299, 302, 2)
    assert len(again.shadows[0].truths) == 297 + 1
    assert "toy: 2 shadow answers with a truth row not compared: the served answer" in render(again, [], "t")


def test_a_shadow_is_held_against_the_served_answers_on_the_same_requests_by_a_paired_bootstrap(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    """A shadow whose errors are half the served model's: better, beyond the noise, and the interval
    is the paired bootstrap's; the same answers as the served ones: a difference of exactly 0."""
    _, answers, truth = served
    values = np.array([a["value"] for a in answers])
    recipe = ToyRecipe()
    grouper = Grouper(recipe)
    lines, truths = shadowed_log(served, truth + (values - truth) / 2)
    joined = join(read_lines(lines), "toy", grouper, truths)
    (found,) = evaluation.compare_shadows(joined, grouper)
    halved = truth + (values - truth) / 2
    expected = paired_difference(recipe.primary(), truth, halved, values)
    assert found.difference == expected
    assert (found.shadow_figure, found.served_figure) == (
        pytest.approx(np.abs(values - truth).mean() / 2, rel=1e-12),
        pytest.approx(np.abs(values - truth).mean(), rel=1e-12),
    )
    assert found.verdict == "better"  # a lower MAE
    assert found.difference.high < 0
    line = render(joined, [], "t", shadows=[found]).splitlines()[0]
    assert line == (
        f"toy shadow v2 against served v1 on the same 300 answers: mae {found.shadow_figure:.4f} against "
        f"{found.served_figure:.4f}: paired difference {expected}, better"
    )
    assert render(joined, [], "t").splitlines()[-1] == (
        "toy: 300 of 300 captured answers (and 300 of the shadow's 300) have a truth row in t"
    )
    # The same answers: no difference in any sample; too few answers: no comparison, and why.
    same, _ = shadowed_log(served, values)
    (alike,) = evaluation.compare_shadows(join(read_lines(same), "toy", grouper, truths), grouper)
    assert (alike.difference, alike.verdict) == (Interval(0.0, 0.0, 0.0), "within the noise")
    (few,) = evaluation.compare_shadows(joined, grouper, min_rows=301)
    assert (few.difference, few.note) == (None, "fewer than 301 answers with their truth (--min-rows)")


def test_a_shadow_comparison_is_logged_on_the_shadow_version_and_listed_by_mlp_versions(
    mlflow_client: Any,
) -> None:
    compared = evaluation.ShadowComparison(
        "toy", "2", "1", "mae", 812, 0.21, 0.25, Interval(-0.04, -0.06, -0.02), "better"
    )
    run_id = evaluation.log_shadow_run(mlflow_client, compared, "captures/")
    run = mlflow_client.get_run(run_id)
    assert run.data.tags[evaluation.KIND_TAG] == evaluation.SHADOW_KIND
    assert (run.data.tags["model.version"], run.data.tags["shadow.served_version"]) == ("2", "1")
    assert run.data.tags["shadow.verdict"] == "better"
    assert run.data.metrics == {
        "shadow.rows": 812,
        "shadow.mae": 0.21,
        "shadow.served.mae": 0.25,
        "shadow.mae_minus_served": -0.04,
        "shadow.mae_minus_served_ci_low": -0.06,
        "shadow.mae_minus_served_ci_high": -0.02,
        "shadow.groups_worse": 0,
    }
    tags = mlflow_client.get_model_version("toy", "2").tags
    assert tags["shadow.comparison"] == "mae -0.0400 (-0.0600 to -0.0200) against v1 on 812, better"
    assert tags["shadow.run"] == run_id
    assert not [tag for tag in tags if tag.startswith("live.")]  # its record as served is apart
    listed = render_versions(TOY, list_versions(TOY, mlflow_client, 5), "sqlite")
    assert listed.splitlines()[1].split()[-1] == "shadow"
    assert next(line for line in listed.splitlines() if line.startswith("2 ")).endswith(
        "mae -0.0400 (-0.0600 to -0.0200) against v1 on 812, better"
    )
    # What mlp promote prints of it: with the version's record as served once there is one.
    assert live_evidence("2", tags) == (
        "v2 on live traffic: as a shadow: mae -0.0400 (-0.0600 to -0.0200) against v1 on 812, better"
    )
    assert live_evidence("1", {}) == "v1 on live traffic: no record (mlp evaluate --log records one)"
    served = Quality("toy", "2", "mae", 400, live=Interval(0.22, 0.2, 0.24), verdict="within the noise")
    evaluation.log_run(mlflow_client, served, "captures/")
    assert live_evidence("2", mlflow_client.get_model_version("toy", "2").tags) == (
        "v2 on live traffic: as served: mae 0.2200 on 400, within the noise; as a shadow: mae -0.0400 "
        "(-0.0600 to -0.0200) against v1 on 812, better"
    )
    # Without a comparison, the tag says why.
    few = evaluation.ShadowComparison("toy", "2", "1", "mae", 40, note="fewer than 100 answers")
    evaluation.log_shadow_run(mlflow_client, few, "captures/")
    assert mlflow_client.get_model_version("toy", "2").tags["shadow.comparison"] == (
        "none against v1 on 40: fewer than 100 answers"
    )


def test_mlp_evaluate_logs_a_registered_shadow_names_one_it_cannot_and_never_fails_on_a_worse_one(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Served v1 shadowed by v2 (twice v1's errors) for half the requests and by v3, deleted from
    the registry since, for the other half: the worse v2 is logged on its version and the exit
    status stays 0; v3 is reported, not logged, and does not stop the command."""
    name = "shadowed"
    monkeypatch.setattr(cli.registry, "get_service", lambda _: replace(TOY, name=name))
    registered(mlflow_client, name, 3)
    mlflow_client.delete_model_version(name, "3")
    rows, answers, truth = served
    lines = []
    for i, (row, answer, y) in enumerate(zip(rows, answers, truth, strict=True)):
        shadow = {"value": float(y + (answer["value"] - y) * 2)}
        lines.append(capture_line(f"r{i:04d}", 0, row, answer, name=name))
        lines.append(capture_line(f"r{i:04d}", 0, row, shadow, "shadow", name=name, version="23"[i % 2]))
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    truth_csv = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(truth))], "y": truth})
    truth_csv.to_csv(tmp_path / "truth.csv", index=False)
    uri = mlflow_client._registry_uri
    argv = ["evaluate", name, str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]
    job = f"{name}-live-evaluation-29000000"
    assert cli.main([*argv, "--log", "--job", job, "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^{name} shadow v2 against served v1 on the same 150 answers: .*, worse$", out, re.M)
    # Each run names the captures and the Job that logged it.
    for version, run_tag in (("1", "live.run"), ("2", "shadow.run")):
        run_id = mlflow_client.get_model_version(name, version).tags[run_tag]
        tags = mlflow_client.get_run(run_id).data.tags
        assert (tags["evaluation.job"], tags["evaluation.captures"]) == (job, str(tmp_path / "captures.log"))
    assert re.search(rf"^{name} shadow v2: logged as run ", out, re.M)
    assert f"{name} shadow v3: not logged: version 3 is not in the registry" in out
    assert mlflow_client.get_model_version(name, "2").tags["shadow.comparison"].endswith(", worse")


class ByColour(ToyRecipe):
    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        return {"color": features["color"]}


def test_a_shadow_better_on_the_whole_is_compared_per_group_and_a_group_it_is_worse_for_is_named(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], mlflow_client: Any
) -> None:
    """A shadow that halves the served model's errors for red customers and doubles them for blue
    ones: each group's paired difference is the bootstrap's on that group's answers alone, the
    report and the run hold them, and the version's tags name the group it is worse for."""
    rows, answers, truth = served
    values = np.array([a["value"] for a in answers])
    red = np.array([row["color"] == "red" for row in rows])
    shadow_values = np.where(red, truth + (values - truth) / 2, truth + (values - truth) * 2)
    lines, truths = shadowed_log(served, shadow_values)
    grouper = Grouper(ByColour())
    joined = join(read_lines(lines), "toy", grouper, truths)
    (found,) = evaluation.compare_shadows(joined, grouper)
    metric = ToyRecipe().primary()
    by_group = {g.group: g for g in found.groups}
    assert list(by_group) == ["blue", "red"]
    for colour, mask in (("blue", ~red), ("red", red)):
        g = by_group[colour]
        assert (g.dimension, g.rows) == ("color", int(mask.sum()))
        # Two groups' intervals that hold together at 95 %: each at 97.5 %.
        assert g.difference == paired_difference(
            metric, truth[mask], shadow_values[mask], values[mask], level=each_of(2)
        )
        assert g.difference.level == 0.975
    assert (by_group["blue"].verdict, by_group["red"].verdict) == ("worse", "better")
    assert [g.group for g in found.groups_worse] == ["blue"]
    blue = by_group["blue"]
    text = render(joined, [], "t", shadows=[found]).splitlines()
    assert text[1] == "toy shadow v2:   per group, each at 97.5% (Bonferroni over 2 groups: 95% together)"
    assert text[2] == (
        f"toy shadow v2:   color: blue {blue.difference.estimate:+.4f} ({blue.difference.low:+.4f} to "
        f"{blue.difference.high:+.4f}, {blue.rows:,}) worse; red "
        f"{by_group['red'].difference.estimate:+.4f} ({by_group['red'].difference.low:+.4f} to "
        f"{by_group['red'].difference.high:+.4f}, {by_group['red'].rows:,}) better"
    )
    # A group with fewer answers than --min-rows has no comparison, and says why.
    smaller = min(blue.rows, by_group["red"].rows)
    (few,) = evaluation.compare_shadows(joined, grouper, min_rows=smaller + 1)
    assert {g.group: (g.note, g.difference is None) for g in few.groups} == {
        g.group: (f"fewer than {smaller + 1} answers with their truth (--min-rows)", True)
        if g.rows == smaller
        else ("", False)
        for g in found.groups
    }
    # Logged: each group's difference on the run, the worse group on the version's tags, and
    # what mlp promote prints.
    registered(mlflow_client, "grouped", 2)
    run_id = evaluation.log_shadow_run(mlflow_client, replace(found, name="grouped"), "captures/")
    metrics = mlflow_client.get_run(run_id).data.metrics
    assert metrics["shadow.color.blue.mae_minus_served"] == blue.difference.estimate
    assert metrics["shadow.color.blue.mae_minus_served_ci_low"] == blue.difference.low
    assert metrics["shadow.color.red.rows"] == by_group["red"].rows
    assert metrics["shadow.groups_level"] == 0.975
    tags = mlflow_client.get_model_version("grouped", "2").tags
    assert (
        tags["shadow.groups_worse"]
        == f"color {blue.describe()}; each at 97.5% (Bonferroni over 2 groups: 95% together)"
    )
    assert tags["shadow.groups_worse"].startswith(f"color blue {blue.difference.estimate:+.4f} (")
    assert live_evidence("2", tags).endswith(
        f"; as a shadow, worse beyond the noise for: {tags['shadow.groups_worse']}"
    )


class NormalSides:
    """Two versions whose difference for each group is ``estimate`` with a standard error of one,
    over the groups ``labels`` names; the group ``few`` has too few answers."""

    def __init__(
        self, estimate: float, few: str = "", labels: tuple[str, ...] = ("blue", "green", "red") * 2
    ):
        self.estimate, self.few = estimate, few
        self.labels = np.array(labels)
        self.levels: list[float] = []

    def rows(self, mask: np.ndarray) -> tuple[int, int | None]:
        return int(mask.sum()), None

    def why_none(self, mask: np.ndarray) -> str:
        return "too few" if self.few in set(self.labels[mask]) else ""

    def difference(self, mask: np.ndarray, level: float) -> Interval:
        self.levels.append(level)
        z = float(norm.ppf(1 - (1 - level) / 2))
        return Interval(self.estimate, self.estimate - z, self.estimate + z, level)


@pytest.mark.parametrize(
    ("few", "compared", "verdict"),
    [
        # z = 2.2 is beyond 95 % (1.96) but within three groups' 98.3 % each (2.39): the noise of
        # one group in three, not a worse version.
        ("", 3, "within the noise"),
        # Two groups compared, each at 97.5 % (2.24): still within.
        ("green", 2, "within the noise"),
    ],
)
def test_the_groups_intervals_hold_together_so_one_group_in_several_is_not_called_worse_by_chance(
    few: str, compared: int, verdict: str
) -> None:
    grouper = Grouper(ByColour())
    sides = NormalSides(2.2, few)
    labelled = grouper.labels([{"color": label} for label in sides.labels])
    found = within_groups(grouper, labelled, sides)
    assert sides.levels == [each_of(compared)] * compared
    assert [g.verdict for g in found if g.difference is not None] == [verdict] * compared
    assert [g.group for g in found if g.note] == ([few] if few else [])
    # The same difference alone in its family is at 95 %, and beyond the noise.
    one = NormalSides(2.2, labels=("blue",) * 3)
    (alone,) = within_groups(grouper, grouper.labels([{"color": "blue"}] * 3), one)
    assert (alone.difference.level, alone.verdict) == (0.95, "worse")
    # And a group far enough out is named whatever the family's size.
    assert {g.verdict for g in within_groups(grouper, labelled, NormalSides(3.0))} == {"worse"}


def test_a_versions_live_groups_are_held_against_the_same_groups_held_out_rows(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any], mlflow_client: Any
) -> None:
    """Held out, the toy model's answers to 300 rows; live, the same rows' answers with a dollar
    added for blue customers: blue is worse than held out beyond the noise, red is not, each
    group's difference is the two-sample bootstrap's on that group's live answers and held-out
    rows alone, and the report, the run and the version's tags say so."""
    rows, answers, truth = served
    values = np.array([a["value"] for a in answers])
    blue = np.array([row["color"] == "blue" for row in rows])
    kept = held_out_record(ByColour(), pd.DataFrame(rows), pd.Series(truth), values)
    held_out_rows = HeldOutAnswers(np.asarray(kept["target"]), np.asarray(kept["output"]), kept["groups"])
    live_values = values + np.where(blue, 1.0, 0.0)
    lines = [
        capture_line(f"r{i:04d}", 0, row, {"value": float(v)})
        for i, (row, v) in enumerate(zip(rows, live_values, strict=True))
    ]
    grouper = Grouper(ByColour())
    joined = join(read_lines(lines), "toy", grouper, {(f"r{i:04d}", 0): y for i, y in enumerate(truth)})
    metric = ToyRecipe().primary()
    held_out = uncertainty.interval(metric, truth, values)
    found = assess(joined.versions[0], grouper, held_out, held_out_rows=held_out_rows)
    by_group = {g.group: g for g in found.groups}
    assert list(by_group) == ["blue", "red"]
    assert (by_group["blue"].verdict, by_group["red"].verdict) == ("worse", "within the noise")
    for colour, mask in (("blue", blue), ("red", ~blue)):
        g = by_group[colour]
        assert (g.rows, g.other_rows) == (int(mask.sum()), int(mask.sum()))
        assert (
            g.difference
            == unpaired_difference(
                metric, truth[mask], live_values[mask], truth[mask], values[mask], level=each_of(2)
            ).difference
        )
    text = render(joined, [found], "t").splitlines()
    level = "each at 97.5% (Bonferroni over 2 groups: 95% together)"
    at = text.index(f"toy v1:   per group against held out, {level}")
    assert text[at + 1] == (
        f"toy v1:   color against held out: {by_group['blue'].describe()}; {by_group['red'].describe()}"
    )
    # Recorded: each group's difference on the run, the worse group on the version's tags, and
    # what mlp promote prints of it.
    registered(mlflow_client, "heldagainst", 1)
    run_id = evaluation.log_run(mlflow_client, replace(found, name="heldagainst"), "captures/")
    metrics = mlflow_client.get_run(run_id).data.metrics
    assert metrics["live.segment.color.blue.mae_minus_held_out"] == by_group["blue"].difference.estimate
    assert metrics["live.segment.color.blue.other_rows"] == int(blue.sum())
    assert (metrics["live.groups_worse"], metrics["live.segment.groups_level"]) == (1, 0.975)
    tags = mlflow_client.get_model_version("heldagainst", "1").tags
    assert tags["live.groups_worse"] == f"color {by_group['blue'].describe()}; {level}"
    assert (
        f"; as served, worse than held out beyond the noise for: {tags['live.groups_worse']}"
        in live_evidence("1", tags)
    )
    # A run kept without the groups: none compared, and the tag says why rather than "none".
    older = assess(joined.versions[0], grouper, held_out, held_out_rows=held_out_rows._replace(groups=None))
    run_id = evaluation.log_run(mlflow_client, replace(older, name="heldagainst"), "captures/")
    tags = mlflow_client.get_model_version("heldagainst", "1").tags
    assert tags["live.groups_worse"] == (
        "not compared: its training run kept no groups of its held-out rows (trained before they were)"
    )
    assert "worse than held out" not in live_evidence("1", tags)
    assert "toy v1:   per group against held out: none: its training run kept no groups" in render(
        joined, [older], "t"
    )


def test_a_canary_is_compared_per_group_on_its_and_the_stable_answers_of_that_group(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
) -> None:
    """Every other request answered by a canary whose fares for blue customers are a dollar off:
    blue is worse beyond the noise, red is not, and each group's difference is the two-sample
    bootstrap's on that group's canary and stable answers alone."""
    rows, answers, truth = served
    lines = []
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        if i % 2:
            shifted = {"value": answer["value"] + (1.0 if row["color"] == "blue" else 0.0)}
            lines.append(capture_line(f"r{i}", 0, row, shifted, "canary", version="2"))
        else:
            lines.append(capture_line(f"r{i}", 0, row, answer, "stable", version="1"))
    grouper = Grouper(ByColour())
    joined = join(read_lines(lines), "toy", grouper, {(f"r{i}", 0): y for i, y in enumerate(truth)})
    (found,) = evaluation.compare_canaries(joined, grouper, min_rows=50)
    by_group = {g.group: g for g in found.groups}
    assert list(by_group) == ["blue", "red"]
    assert (by_group["blue"].verdict, by_group["red"].verdict) == ("worse", "within the noise")
    assert [g.group for g in found.groups_worse] == ["blue"]
    # In the order the answers are joined in, by request id ("r0", "r1", "r10", ...): the
    # bootstrap draws by position.
    order = sorted(range(len(rows)), key=lambda i: f"r{i}")
    values = np.array([answers[i]["value"] for i in order])
    truth = truth[order]
    blue = np.array([rows[i]["color"] == "blue" for i in order])
    odd = np.array(order) % 2 == 1
    for colour, mask in (("blue", blue), ("red", ~blue)):
        c, s = mask & odd, mask & ~odd
        canary_values = values[c] + (1.0 if colour == "blue" else 0.0)
        expected = unpaired_difference(
            ToyRecipe().primary(), truth[c], canary_values, truth[s], values[s], level=each_of(2)
        )
        g = by_group[colour]
        assert (g.rows, g.other_rows) == (int(c.sum()), int(s.sum()))
        assert g.difference == expected.difference
    text = render(joined, [], "truth.csv", [found]).splitlines()
    assert text[1] == "toy canary v2:   per group, each at 97.5% (Bonferroni over 2 groups: 95% together)"
    assert text[2] == f"toy canary v2:   color: {by_group['blue'].describe()}; {by_group['red'].describe()}"
    assert f", {by_group['blue'].rows:,} against {by_group['blue'].other_rows:,}) worse" in text[2]


def test_a_canary_comparison_is_logged_on_the_canary_version_and_printed_by_mlp_promote(
    mlflow_client: Any,
) -> None:
    groups = (
        evaluation.GroupComparison(
            "color", "blue", 150, Interval(0.3, 0.2, 0.4, 0.975), "worse", other_rows=140
        ),
        evaluation.GroupComparison(
            "color", "red", 160, Interval(0.01, -0.05, 0.07, 0.975), "within the noise", other_rows=150
        ),
    )
    compared = evaluation.CanaryComparison(
        "canaried", "2", "1", "mae", None, canary_rows=310, stable_rows=290,
        difference=Interval(0.15, 0.08, 0.22), verdict="worse", groups=groups,
    )  # fmt: skip
    registered(mlflow_client, "canaried", 2)
    run_id = evaluation.log_canary_run(mlflow_client, compared, "captures/")
    run = mlflow_client.get_run(run_id)
    assert run.data.tags[evaluation.KIND_TAG] == evaluation.CANARY_KIND
    assert (run.data.tags["model.version"], run.data.tags["canary.stable_version"]) == ("2", "1")
    assert run.data.metrics == {
        "canary.rows": 310,
        "canary.stable_rows": 290,
        "canary.mae_minus_stable": 0.15,
        "canary.mae_minus_stable_ci_low": 0.08,
        "canary.mae_minus_stable_ci_high": 0.22,
        "canary.groups_worse": 1,
        "canary.groups_level": 0.975,
        "canary.color.blue.rows": 150,
        "canary.color.blue.other_rows": 140,
        "canary.color.blue.mae_minus_stable": 0.3,
        "canary.color.blue.mae_minus_stable_ci_low": 0.2,
        "canary.color.blue.mae_minus_stable_ci_high": 0.4,
        "canary.color.red.rows": 160,
        "canary.color.red.other_rows": 150,
        "canary.color.red.mae_minus_stable": 0.01,
        "canary.color.red.mae_minus_stable_ci_low": -0.05,
        "canary.color.red.mae_minus_stable_ci_high": 0.07,
    }
    tags = mlflow_client.get_model_version("canaried", "2").tags
    assert tags["canary.comparison"] == "mae +0.1500 (+0.0800 to +0.2200) against v1 on 310 and 290, worse"
    assert tags["canary.groups_worse"] == (
        "color blue +0.3000 (+0.2000 to +0.4000, 150 against 140) worse; "
        "each at 97.5% (Bonferroni over 2 groups: 95% together)"
    )
    assert tags["canary.run"] == run_id
    assert live_evidence("2", tags) == (
        f"v2 on live traffic: as a canary: {tags['canary.comparison']}; "
        f"as a canary, worse beyond the noise for: {tags['canary.groups_worse']}"
    )


def test_mlp_evaluate_logs_a_canary_compared_with_its_stable_version(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "canaryflow"
    monkeypatch.setattr(cli.registry, "get_service", lambda _: replace(TOY, name=name))
    registered(mlflow_client, name, 2)
    rows, answers, truth = served
    lines = [
        capture_line(
            f"r{i:04d}", 0, row, answer, *(("canary",) if i % 2 else ()), name=name, version=str(1 + i % 2)
        )
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    frame = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(truth))], "y": truth})
    frame.to_csv(tmp_path / "truth.csv", index=False)
    argv = ["evaluate", name, str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]
    assert cli.main([*argv, "--log", "--tracking-uri", mlflow_client._registry_uri]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^{name} canary v2: logged as run \w+ \(and the version's canary\.\* tags", out, re.M)
    tags = mlflow_client.get_model_version(name, "2").tags
    assert tags["canary.comparison"].endswith(" against v1 on 150 and 150, within the noise")
    assert tags["canary.groups_worse"] == "none"


def test_a_run_stopped_before_its_figures_are_in_is_marked_failed_not_left_running(
    mlflow_client: Any,
) -> None:
    """SIGTERM (``Terminated``) or a registry error between the run's creation and its figures."""
    from servekit.evaluation import recording
    from servekit.termination import Terminated

    class StoppedWhileLogging:
        def __getattr__(self, name: str) -> Any:
            return getattr(mlflow_client, name)

        def log_batch(self, *args: Any, **kwargs: Any) -> None:
            raise Terminated()

    with pytest.raises(Terminated):
        recording._logged(StoppedWhileLogging(), "stopped", "stopped-v1-live", {}, {"mae": 0.2})
    experiment = mlflow_client.get_experiment_by_name("stopped")
    (run,) = mlflow_client.search_runs([experiment.experiment_id])
    assert (run.info.status, run.data.metrics) == ("FAILED", {})
    run_id = recording._logged(mlflow_client, "stopped", "stopped-v1-live", {}, {"mae": 0.2})
    finished = mlflow_client.get_run(run_id)
    assert (finished.info.status, finished.data.metrics) == ("FINISHED", {"mae": 0.2})
