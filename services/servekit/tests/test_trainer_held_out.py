"""The held-out figures of a registered version, as mlp train logs them and a service serves them:
over the held-out rows a request can be, its groups in the recipe's order, from a registry version
or a run alike."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import mean_absolute_error
from toy import TOY, ToyRecipe

from servekit import loading
from servekit.card import render
from servekit.loading import load_artifact
from servekit.testing import new_tracking_database
from servekit.training import baselines, champion, segments, splitting, trainer

#: Groups of x in the recipe's order, which is not their sorted one; "10 or more" no request can
#: reach (the request schema allows x up to 10).
X_BANDS = ("under 5", "5-10", "10 or more")


class BandedRecipe(ToyRecipe):
    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        bands = pd.cut(features["x"], bins=(0, 5, 10, float("inf")), labels=X_BANDS, right=False)
        return {"x_band": bands, "color": features["color"]}


BANDED = dataclasses.replace(TOY, recipe=BandedRecipe())


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Toy version 1 trained on a file where a fifth of the rows have an x the API refuses (12 to
    15) and fares far worse there, as ChicagoTaxi's real trips without miles do."""
    directory = tmp_path_factory.mktemp("held-out")
    uri = new_tracking_database(directory / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(directory / "artifacts")
    )
    rows = BANDED.recipe.generate(2000, seed=4)
    out = np.random.default_rng(4).random(len(rows)) < 0.2
    rows.loc[out, "x"] = 12 + 3 * np.random.default_rng(5).random(out.sum())
    rows.loc[out, "y"] = np.random.default_rng(6).normal(0, 20, out.sum())  # unlearnable
    path = directory / "rows.csv"
    rows.to_csv(path, index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
        result = trainer.train(BANDED, uri, path, seed=1)
    data = splitting.split(BANDED, BANDED.recipe.load(path, 1)[0], 1)
    asked = data.x_test["x"].le(10).to_numpy()
    yield {"uri": uri, "path": path, "result": result, "data": data, "asked": asked}
    mlflow.set_tracking_uri(None)


def test_the_held_out_figures_are_over_the_rows_a_request_can_be(registered: dict[str, Any]) -> None:
    """ChicagoTaxi's MAE, its card and GET /model counted the 31 % of held-out trips the API refuses
    (0.71 USD, 95 % CI 0.64 to 0.78); over the trips it answers it is 0.54, outside that interval."""
    result, data, asked = registered["result"], registered["data"], registered["asked"]
    assert 0 < asked.sum() < len(asked)
    artifact = load_artifact("toy", "models:/toy/1", registered["uri"])
    predicted = artifact.pipeline.predict(data.x_test[asked])
    mae = mean_absolute_error(data.y_test[asked], predicted)
    assert result.metrics["mae"] == pytest.approx(mae)
    assert artifact.training_metrics["mae"] == pytest.approx(mae)
    assert artifact.training_metrics["mae_ci_low"] < mae < artifact.training_metrics["mae_ci_high"]
    every_row = mean_absolute_error(data.y_test, artifact.pipeline.predict(data.x_test))
    assert every_row > artifact.training_metrics["mae_ci_high"]  # what was reported before
    # mlp evaluate holds live answers against the same rows.
    client = mlflow.MlflowClient(registered["uri"])
    answers = json.loads(
        Path(client.download_artifacts(artifact.run_id, "held_out_answers.json")).read_text(encoding="utf-8")
    )
    assert len(answers["target"]) == asked.sum()
    # The data says how many rows were trained on, held out, scored, and why the others were not.
    described = BANDED.model(artifact).describe()
    left = int((~asked).sum())
    assert (
        described["data"]
        | {
            "training_rows": len(data.y_train),
            "held_out_rows": len(data.y_test),
            "held_out_scored_rows": int(asked.sum()),
            "held_out_scored": baselines.REQUESTABLE,
            "held_out_left_out": f"the request schema refuses them (x: {left:,}), so no request "
            "can be one of them",
        }
        == described["data"]
    )


def test_the_card_says_which_held_out_rows_its_figures_are_over(registered: dict[str, Any]) -> None:
    data, asked = registered["data"], registered["asked"]
    artifact = load_artifact("toy", "models:/toy/1", registered["uri"])
    card = render(BANDED, BANDED.model(artifact).describe())
    left = int((~asked).sum())
    assert (
        f"## Held-out performance\n\nOver the {asked.sum():,} held-out rows a request can be. The "
        f"other {left:,} of the {len(asked):,} held out are left out: the request schema refuses them "
        f"(x: {left:,}), so no request can be one of them.\n\n| metric | value |"
    ) in card
    assert (
        f"| rows loaded (after the recipe's cleaning, if any) | {len(data.y_train) + len(asked):,} |" in card
    )
    assert f"| rows trained on | {len(data.y_train):,} |" in card
    assert f"| rows held out | {len(asked):,} |" in card
    assert f"| held-out rows scored | {asked.sum():,} |" in card
    # No group is shown that no request can reach.
    served = BANDED.model(artifact).describe()["segments"]
    assert "10 or more" not in served["x_band"]
    assert "| 10 or more |" not in card
    # The card logged with the run is the one the service serves.
    client = mlflow.MlflowClient(registered["uri"])
    logged = Path(client.download_artifacts(artifact.run_id, "model_card.md")).read_text(encoding="utf-8")
    assert logged == card


def test_the_groups_are_served_in_the_recipes_order(registered: dict[str, Any]) -> None:
    """The MLmodel file sorts its keys: the served card listed ChicagoTaxi's trip bands as "1-5, 15
    or more, 5-15, not recorded, under 1", the run's card as the recipe orders them."""
    artifact = load_artifact("toy", "models:/toy/1", registered["uri"])
    described = BANDED.model(artifact).describe()
    assert list(described["segments"]) == ["x_band", "color"]
    assert list(described["segments"]["x_band"]) == ["under 5", "5-10"]
    assert list(described["parity"]) == ["x_band", "color"]
    assert list(described["parity"]["x_band"]["groups"]) == ["under 5", "5-10"]
    card = render(BANDED, described)
    assert card.index("| under 5 |") < card.index("| 5-10 |")
    assert card.index("**x_band**") < card.index("**color**")


def test_a_model_trained_before_the_order_was_kept_is_served_as_it_was() -> None:
    groups = {"b": {"z": {"rows": 1}, "a": {"rows": 2}}, "a": {"y": {"rows": 3}}}
    old = yaml.safe_load(yaml.safe_dump({"segments": groups}))
    assert segments.in_recipe_order(old) == old
    order = [{"dimension": "b", "groups": ["z", "a"]}, {"dimension": "a", "groups": ["y"]}]
    kept = {"segments": groups, segments.ORDER: order}
    restored = segments.in_recipe_order(yaml.safe_load(yaml.safe_dump(kept)))
    assert list(restored["segments"]) == ["b", "a"]
    assert list(restored["segments"]["b"]) == ["z", "a"]


def test_a_model_served_from_its_run_has_the_runs_figures(registered: dict[str, Any]) -> None:
    """A canary served as runs:/<run_id>/model showed run_id '', no training metrics and no held-out
    section on its card."""
    run_id = registered["result"].run_id
    assert loading.run_of(f"runs:/{run_id}/model") == run_id
    assert loading.run_of("models:/toy/1") == loading.run_of("s3://bucket/model") == ""
    artifact = load_artifact("toy", f"runs:/{run_id}/model", registered["uri"])
    assert artifact.run_id == run_id
    assert artifact.version == "unregistered"  # not the champion's version: a canary of it is routed
    assert artifact.training_metrics["mae"] == pytest.approx(registered["result"].metrics["mae"])
    card = render(BANDED, BANDED.model(artifact).describe())
    assert f"| training run | `{run_id}` |" in card
    assert "## Held-out performance" in card


def test_a_champion_is_compared_on_the_rows_a_request_can_be(
    registered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both versions scored on the same rows, those a request can be, whatever the champion's own
    figures were over; the decision says which rows."""
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    asked = registered["asked"]
    second = trainer.train(BANDED, registered["uri"], registered["path"], seed=1)
    assert (
        f"vs champion v1 {registered['result'].metrics['mae']:.4f} on the same held-out split "
        f"(the {asked.sum():,} of its {len(asked):,} rows a request can be); difference"
    ) in second.decision, second.decision


def test_the_card_labels_the_uris_and_masks_the_tracking_server() -> None:
    described = {
        "name": "toy",
        "version": "3",
        "uri": "models:/toy@champion",
        "registry_uri": "https://mlflow.example/?token=s3cret",
    }
    card = render(TOY, described)
    assert "| model URI | `models:/toy@champion` |" in card
    assert "| tracking server | `https://mlflow.example/?token=***` |" in card
    assert "s3cret" not in card
    assert "registry URI" not in card


def test_a_threshold_chosen_on_training_rows_is_no_held_out_figure() -> None:
    """BankChurn's recipe logs its threshold beside its metrics; the card listed it under "Held-out
    performance" while saying it is never chosen on the held-out rows."""
    metrics = {"roc_auc": 0.86, "f1": 0.6, "threshold": 0.317}
    card = render(TOY, {"name": "toy", "version": "1", "training_metrics": metrics, "threshold": 0.317})
    headline = card.split("## Held-out performance\n\n")[1].split("\n\n")[0]
    assert "threshold" not in headline
    assert (
        "## Decision threshold\n\nA prediction is labelled positive from a probability of 0.317, "
        "chosen on out-of-fold predictions of the training rows, never on the held-out rows."
    ) in card


def test_a_card_of_a_model_trained_before_the_rows_were_counted_still_renders() -> None:
    described = {
        "name": "toy",
        "version": "1",
        "training_metrics": {"mae": 0.7},
        "data": {"rows": 10000, "sha256": "ab"},
    }
    card = render(TOY, described)
    assert "| rows loaded (after the recipe's cleaning, if any) | 10,000 |" in card
    assert "| sha256 | ab |" in card
    # Its figures count every held-out row, said as its input drift baseline was not recorded.
    assert "## Held-out performance\n\nOver every held-out row (trained before held-out figures" in card
    assert "held-out rows scored" not in card


def _registry(directory: Path) -> str:
    uri = new_tracking_database(directory / "mlflow.db")
    mlflow.MlflowClient(uri, registry_uri=uri).create_experiment(
        "toy", artifact_location=str(directory / "artifacts")
    )
    return uri


def test_too_few_held_out_requests_score_every_held_out_row_and_never_move_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """ChicagoTaxi's real file with miles on 8 trips: its figures were over the one held-out trip a
    request could be (MAE 8.6917, CI 8.6917 to 8.6917, r2 nan), and a version trained on it was
    promoted on that one row. Fewer than 100 such rows: the figures are over every held-out row, as
    when none passes, mlp train says so, and a comparison on them never moves the champion."""
    from servekit import cli

    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    monkeypatch.setattr(cli.registry, "get_service", lambda name: BANDED)
    uri = _registry(tmp_path)
    good = tmp_path / "good.csv"
    BANDED.recipe.generate(300, seed=3).to_csv(good, index=False)
    assert cli.main(["train", "toy", "--data", str(good), "--tracking-uri", uri]) == 0
    rows = BANDED.recipe.generate(2000, seed=4)
    out = np.random.default_rng(4).random(len(rows)) < 0.985  # x the API refuses on all but ~30
    rows.loc[out, "x"] = 12 + 3 * np.random.default_rng(5).random(out.sum())
    rows.loc[out, "y"] = np.random.default_rng(6).normal(0, 20, out.sum())
    path = tmp_path / "nearly_all_refused.csv"
    rows.to_csv(path, index=False)
    capsys.readouterr()
    assert cli.main(["train", "toy", "--data", str(path), "--tracking-uri", uri]) == 0
    said = capsys.readouterr().out

    data = splitting.split(BANDED, BANDED.recipe.load(path, 42)[0], 42)  # mlp train's default seed
    asked = data.x_test["x"].le(10).to_numpy()
    assert 0 < asked.sum() < champion.MIN_JUDGED_ROWS
    artifact = load_artifact("toy", "models:/toy/2", uri)
    every_row = mean_absolute_error(data.y_test, artifact.pipeline.predict(data.x_test))
    assert artifact.training_metrics["mae"] == pytest.approx(every_row)
    assert artifact.training_metrics["mae_ci_low"] < artifact.training_metrics["mae_ci_high"]
    few = (
        f"only {asked.sum():,} of the {len(asked):,} held-out rows pass toy's request schema, fewer "
        "than the 100 a held-out figure needs"
    )
    assert (
        f"toy: {few}: the held-out figures and the champion comparison are over every held-out row, "
        f"the {(~asked).sum():,} the request schema refuses included (x: {(~asked).sum():,})"
    ) in said, said
    described = BANDED.model(artifact).describe()["data"]
    assert described["held_out_scored_rows"] == described["held_out_rows"] == len(asked)
    assert described["held_out_scored"].startswith(f"every held-out row: {few}")
    assert f"## Held-out performance\n\nOver every held-out row: {few}" in render(
        BANDED, BANDED.model(artifact).describe()
    )
    # The input drift baseline and the warm-up rows stay on the rows a request can be.
    assert artifact.metadata["input_baseline"]["rows"] == asked.sum()
    assert all(row["x"] <= 10 for row in artifact.metadata["input_example"])
    # Better on every held-out row, most of which no request is: compared and said, not promoted.
    decision = said.splitlines()[-1]
    assert decision.startswith("toy: kept champion v1: mae "), decision
    assert decision.endswith(f"; not promoted: {few}; `mlp promote toy 2` makes it champion by hand"), (
        decision
    )
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    assert str(client.get_registered_model("toy").aliases["champion"]) == "1"
    mlflow.set_tracking_uri(None)


def test_a_comparison_on_too_few_held_out_rows_never_moves_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version better on 60 held-out rows was promoted on the point estimate, while the decision
    said there were too few to tell a difference from noise."""
    monkeypatch.setattr(trainer, "model_requirements", lambda service: ["servekit"])
    uri = _registry(tmp_path)
    weak, small = tmp_path / "weak.csv", tmp_path / "small.csv"
    TOY.recipe.generate(40, seed=5).to_csv(weak, index=False)
    TOY.recipe.generate(300, seed=6).to_csv(small, index=False)
    assert trainer.train(TOY, uri, weak, seed=1).promoted  # no champion yet: nothing to compare
    second = trainer.train(TOY, uri, small, seed=1)
    assert not second.promoted
    assert "too few to tell a difference from noise" in second.decision
    assert second.decision.endswith(
        "; not promoted: too few held-out rows (60 held-out rows) to move the champion; "
        "`mlp promote toy 2` makes it champion by hand"
    ), second.decision
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    assert str(client.get_registered_model("toy").aliases["champion"]) == "1"
    mlflow.set_tracking_uri(None)


def test_a_held_out_split_under_100_rows_keeps_the_rows_a_request_can_be() -> None:
    """55 of 60 held-out rows requests: the figures were over all 60, with advice to train on a
    file with more rows the request schema accepts, when every row is too few as well. Over 2,000
    held out with 55 requests, every row still is."""
    for held_out, every_row in ((60, False), (champion.MIN_JUDGED_ROWS, True), (2000, True)):
        rows = TOY.recipe.generate(held_out, seed=7)
        data = splitting.Split(rows[["x"]].head(0), rows.drop(columns="y"), rows["y"].head(0), rows["y"])
        mask = np.zeros(held_out, dtype=bool)
        mask[:55] = True
        asked = baselines.Requestable(mask, baselines.REQUESTABLE, {"x": held_out - 55})
        requests = splitting.Split(data.x_train, data.x_test[mask], data.y_train, data.y_test[mask])
        scored, counted, few = trainer.scored_rows("toy", data, requests, asked)
        assert len(scored.y_test) == (held_out if every_row else 55), held_out
        assert bool(counted.mask.all()) is every_row
        assert bool(few) is every_row
        if not every_row:
            assert counted is asked
            assert trainer.too_few_requests_note(few, asked) == ""
