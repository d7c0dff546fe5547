"""A shadow's answers paired with the served ones to the same requests, compared by a paired
bootstrap, overall and per group, and logged on its version."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from evaluation_logs import (
    ByColour,
    capture_line,
    shadowed_log,
)
from toy import TOY, ToyRecipe, registered

from servekit import cli, evaluation
from servekit.evaluation import (
    Grouper,
    Quality,
    join,
    render,
)
from servekit.replay.capture_lines import read_lines
from servekit.training.uncertainty import Interval, each_of, paired_difference
from servekit.training.versions import list_versions, live_evidence
from servekit.training.versions import render as render_versions


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
        "v2 on live traffic: as served: mae 0.2200 on 400, within the noise of its own held-out figure; "
        "as a shadow: mae -0.0400 "
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
