"""A canary judged against the stable version on the same traffic, overall and per group, and
its comparison logged on its version."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evaluation_logs import (
    START,
    ByColour,
    at,
    canary_log,
    capture_line,
    judged,
)
from toy import TOY, ToyRecipe, registered

from servekit import cli, evaluation
from servekit.cli.captures import EVALUATE_WORSE
from servekit.evaluation import (
    Grouper,
    assess,
    join,
    render,
)
from servekit.local import free_port
from servekit.replay.capture_lines import read_lines
from servekit.routing import ASKED, DRAWN, FALLBACK
from servekit.training.uncertainty import Interval, each_of, unpaired_difference
from servekit.training.versions import live_evidence


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


def test_a_worse_verdict_exits_apart_from_an_unreachable_registry(
    served: tuple[list[dict[str, Any]], list[dict[str, Any]], Any],
    mlflow_client: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The live-evaluation Job fails at once on a verdict (running it again repeats it) and retries
    a registry that did not answer (MLflow restarting on a deploy): the two exit statuses must differ,
    and neither may be 2, a run that cannot start."""
    name = "worsened"
    monkeypatch.setattr(cli.registry, "get_service", lambda _: replace(TOY, name=name))
    registered(mlflow_client, name, 2)
    rows, answers, truth = served
    lines = [
        # The canary's answers, every other request, are 5 off: worse beyond any noise.
        capture_line(
            f"r{i:04d}",
            0,
            row,
            {"value": answer["value"] + 5.0} if i % 2 else answer,
            *(("canary",) if i % 2 else ()),
            name=name,
            version=str(1 + i % 2),
        )
        for i, (row, answer) in enumerate(zip(rows, answers, strict=True))
    ]
    (tmp_path / "captures.log").write_text("\n".join(lines) + "\n")
    frame = pd.DataFrame({"request_id": [f"r{i:04d}" for i in range(len(truth))], "y": truth})
    frame.to_csv(tmp_path / "truth.csv", index=False)
    argv = ["evaluate", name, str(tmp_path / "captures.log"), "--truth", str(tmp_path / "truth.csv")]

    assert cli.main([*argv, "--tracking-uri", mlflow_client._registry_uri]) == EVALUATE_WORSE == 3
    assert re.search(rf"^{name} canary v2 against stable v1 .*, worse", capsys.readouterr().out, re.M)

    nobody = f"http://127.0.0.1:{free_port()}"
    assert cli.main([*argv, "--log", "--job", "worsened-live-evaluation-1", "--tracking-uri", nobody]) == 1
    assert capsys.readouterr().err.startswith(f"mlp: no MLflow tracking server answers at {nobody} (")
