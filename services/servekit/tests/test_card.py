"""The model card: rendered from what GET /model says, served as Markdown."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from toy import TOY, ToyRecipe

from servekit.card import render
from servekit.model import ModelArtifact
from servekit.rest import create_app
from servekit.settings import load_settings
from servekit.testing import wait_loaded
from servekit.training.parity import group_parity
from servekit.training.splitting import Split


def test_the_served_card_is_rendered_from_get_model(toy_client: TestClient) -> None:
    response = toy_client.get("/model/card")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/markdown; charset=utf-8"
    card = response.text
    assert card == render(TOY, toy_client.get("/model").json())
    assert card.startswith("# Model card: toy version ")
    metrics = toy_client.get("/model").json()["training_metrics"]
    assert f"| **mae** | {metrics['mae']:.4g} |" in card
    assert "## How a prediction is explained" in card
    assert f"## Intended use\n\n{TOY.intended_use}\n\nNot for:\n\n- answering anyone" in card


def test_groups_without_a_figure_say_why(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = toy_trained
    segments = {
        "color": {
            "red": {"rows": 400, "mae": 0.5, "mae_ci_low": 0.4, "mae_ci_high": 0.6},
            "blue": {"rows": 12, "note": "fewer than 100 held-out rows"},
        }
    }
    with_groups = dataclasses.replace(artifact, metadata={**artifact.metadata, "segments": segments})
    card = render(TOY, TOY.model(with_groups).describe())
    assert "| red | 400 | 0.5 (0.4 to 0.6) |" in card
    assert "| blue | 12 | no figure: fewer than 100 held-out rows |" in card


def test_no_card_before_the_model_is_loaded() -> None:
    def never() -> ModelArtifact:
        raise OSError("registry unreachable")

    app = create_app(TOY, load_settings("toy", load_retry_initial_seconds=60), source=never)
    with TestClient(app) as client:
        response = client.get("/model/card")
    assert response.status_code == 503
    assert "model not ready" in response.json()["message"]


def test_during_a_rollout_the_canarys_card_is_served_on_request(
    toy_trained: tuple[ModelArtifact, Split], toy_client: TestClient
) -> None:
    artifact, _ = toy_trained
    candidate = dataclasses.replace(artifact, version="9", run_id="run-9")
    app = create_app(TOY, load_settings("toy"), source=lambda: artifact, canary_source=lambda: candidate)
    with TestClient(app) as client:
        wait_loaded(client, client.app.state.canary.runtime)  # type: ignore[attr-defined]
        stable = client.get("/model/card").text
        canary = client.get("/model/card", params={"variant": "canary"}).text
    assert stable.startswith(f"# Model card: toy version {artifact.version}\n")
    assert canary.startswith("# Model card: toy version 9\n")
    assert "`run-9`" in canary
    # Without a canary, asking for its card names the parameter; an unknown variant is a 422.
    missing = toy_client.get("/model/card", params={"variant": "canary"})
    assert missing.status_code == 404
    assert missing.json()["fields"][0]["field"] == "query.variant"
    assert toy_client.get("/model/card", params={"variant": "blue"}).status_code == 422


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/model/card", "varient=canary", "query.varient"),
        ("/model/card", "variant=canary&variant=stable", "query.variant"),
        ("/model", "variant=canary", "query.variant"),
    ],
)
def test_a_mistyped_or_repeated_parameter_is_refused_not_answered_for_the_stable_model(
    toy_client: TestClient, path: str, query: str, field: str
) -> None:
    """During a rollout, a reviewer who mistyped ``variant`` read the champion's card as the
    canary's: FastAPI drops a parameter it does not know and keeps the last of one repeated."""
    response = toy_client.get(f"{path}?{query}")
    assert response.status_code == 422, response.text
    assert [problem["field"] for problem in response.json()["fields"]] == [field]


def test_the_probes_and_the_scrape_take_any_query(toy_client: TestClient) -> None:
    """A load balancer's or a scraper's own parameters must not fail a probe or a scrape."""
    for path in ("/healthz", "/readyz", "/metrics"):
        assert toy_client.get(f"{path}?source=lb").status_code == 200


def test_the_decisions_per_group_are_set_out_with_their_gaps(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    groups = {
        "red": {"rows": 400, "mean_error": 0.25, "mean_error_ci_low": 0.1, "mean_error_ci_high": 0.4},
        "blue": {"rows": 300, "mean_error": -0.5, "mean_error_ci_low": -0.7, "mean_error_ci_high": -0.3},
        "green": {"rows": 12, "note": "fewer than 100 held-out rows"},
    }
    gap = {"highest": "red", "lowest": "blue", "gap": 0.75, "ci_low": 0.5, "ci_high": 1.0}
    parity = {"color": {"groups": groups, "gaps": {"mean_error": gap}}}
    with_parity = dataclasses.replace(artifact, metadata={**artifact.metadata, "parity": parity})
    described = TOY.model(with_parity).describe()
    assert described["parity"] == parity
    card = render(TOY, described)
    assert "## Decisions and errors per group of held-out rows" in card
    assert "above 0 the model over-estimates the group's rows" in card
    assert "| group | rows | mean signed error (95 % CI) | why no figure |" in card
    assert "| blue | 300 | -0.5 (-0.7 to -0.3) |  |" in card
    assert "| green | 12 | - | fewer than 100 held-out rows |" in card
    assert "- mean signed error: red minus blue, +0.75 (95 % CI +0.5 to +1)" in card
    # A binary model's card states the threshold its rates are taken at.
    flagged = {
        "rows": 400,
        "positive_share": 0.25,
        "flagged_share": 0.3,
        "flagged_share_ci_low": 0.2,
        "flagged_share_ci_high": 0.4,
    }
    fewer = {**flagged, "flagged_share": 0.15}
    share_gap = {"highest": "a", "lowest": "b", "gap": 0.15, "ci_low": 0.05, "ci_high": 0.25, "ratio": 0.5}
    binary = {"g": {"groups": {"a": flagged, "b": fewer}, "gaps": {"flagged_share": share_gap}}}
    decided = dataclasses.replace(
        artifact, metadata={**artifact.metadata, "parity": binary, "threshold": 0.34}
    )
    card = render(TOY, TOY.model(decided).describe())
    assert "At the decision threshold (0.34): the share of each group whose truth is positive" in card
    assert "| group | rows | positive in truth | share flagged (95 % CI) |" in card
    assert "| a | 400 | 0.25 | 0.3 (0.2 to 0.4) |" in card
    assert "- share flagged: a minus b, +0.15 (95 % CI +0.05 to +0.25); b's share is 0.5 of a's" in card
    assert "b's share is 0.5 of a's, under the four-fifths rule's 0.8\n" in card
    share_gap["ratio"] = 0.85
    assert "b's share is 0.85 of a's\n" in render(TOY, TOY.model(decided).describe())
    # A binary model's rates without a threshold in its metadata (flagged from 0.5) read as rates.
    untuned = dataclasses.replace(artifact, metadata={**artifact.metadata, "parity": binary})
    card = render(TOY, TOY.model(untuned).describe())
    assert "At the decision threshold: the share of each group whose truth is positive" in card
    assert "mean signed error (prediction minus truth)" not in card


def test_a_multiclass_models_decisions_per_group_are_each_labels_share_and_recall(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = toy_trained
    groups = pd.Series(["long"] * 200 + ["short"] * 150 + ["tiny"] * 10)
    truth = np.array(["bearish", "neutral"] * 100 + ["neutral"] * 160, dtype=object)
    given = np.array(["bearish", "bearish", "bearish", "neutral"] * 50 + ["neutral"] * 160, dtype=object)
    rates = group_parity("multiclass", {"length": groups}, truth, given)
    card = render(
        TOY,
        TOY.model(dataclasses.replace(artifact, metadata={**artifact.metadata, "parity": rates})).describe(),
    )
    assert "For each label: the share of each group given it, and its recall" in card
    assert (
        "| group | rows | labels in truth | share labelled bearish (95 % CI) "
        "| share labelled neutral (95 % CI) "
        "| recall of bearish (95 % CI) | recall of neutral (95 % CI) | why no figure |"
    ) in card
    long = rates["length"]["groups"]["long"]
    interval = f"({long['recall.neutral_ci_low']:.4g} to {long['recall.neutral_ci_high']:.4g})"
    assert "| long | 200 | bearish 0.5, neutral 0.5 | 0.75 (" in card
    assert f"| 0.5 {interval} |" in card
    assert "| short | 150 | bearish 0, neutral 1 | 0 (0 to 0) | 1 (1 to 1) | - | 1 (1 to 1) |" in card
    assert "no bearish in truth among its held-out rows: no recall of bearish |" in card
    assert "| tiny | 10 | - | - | - | - | - | fewer than 100 held-out rows |" in card
    assert "- share labelled bearish: long minus short, +0.75 (95 % CI" in card
    assert "four-fifths" not in card  # no label is the favourable decision


def test_the_card_states_the_range_of_each_column_over_the_training_rows(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, split = toy_trained
    card = render(TOY, TOY.model(artifact).describe())
    x = split.x_train["x"]
    assert "## Range of the training rows" in card
    assert f"| x | x | {x.min():.10g} | {x.max():.10g} |" in card
    assert f"| x_squared | x | {x.min() ** 2:.10g} | {x.max() ** 2:.10g} |" in card
    # A model without ranges (a text model) has no such section.
    described = TOY.model(artifact).describe()
    described["baselines"]["training_ranges"] = {}
    assert "## Range of the training rows" not in render(TOY, described)


def test_the_headline_table_holds_the_headline_metrics_only() -> None:
    """Each group's figures are in the sections below it: dozens of them in the headline table (a
    group's row count, a gap per label) would bury the figures a reviewer reads first."""
    metrics = {
        "mae": 0.7,
        "mae_ci_low": 0.6,
        "mae_ci_high": 0.8,
        "r2": 0.9,
        "segment.payment_type.Dispute.rows": 2.0,
        "segment.payment_type.Cash.mae": 0.5,
        "parity.link.recall.bullish.gap": 0.1,
    }
    card = render(TOY, {"name": "toy", "version": "1", "training_metrics": metrics})
    headline = card.split("## Held-out performance\n\n")[1].split("\n\n")[0]
    assert headline.splitlines() == [
        "| metric | value |",
        "|---|---|",
        "| **mae** | 0.7 (95 % CI 0.6 to 0.8) |",
        "| r2 | 0.9 |",
    ]
    # Nothing but group figures: no headline table at all, rather than an empty one.
    only_groups = {"segment.payment_type.Cash.rows": 400.0}
    assert "## Held-out performance" not in render(
        TOY, {"name": "toy", "version": "1", "training_metrics": only_groups}
    )


def test_the_card_names_the_code_that_trained_the_version() -> None:
    """A reviewer traces a version to its commit (servekit.provenance), and is told when the tree
    had changes the commit does not hold, or when nothing was recorded."""

    def identity(code: object) -> str:
        card = render(TOY, {"name": "toy", "version": "1", "code": code})
        return next(line for line in card.splitlines() if line.startswith("| trained with code |"))

    packages = {"servekit": "0.1.0", "toy": "0.2.0"}
    assert identity({"revision": "0123abc", "modified": False, "packages": packages}) == (
        "| trained with code | commit `0123abc`; servekit 0.1.0, toy 0.2.0 |"
    )
    assert identity({"revision": "0123abc", "modified": True, "packages": packages}) == (
        "| trained with code | commit `0123abc` with changes not committed; servekit 0.1.0, toy 0.2.0 |"
    )
    assert identity({"revision": None, "modified": None, "packages": packages}) == (
        "| trained with code | no git commit known; servekit 0.1.0, toy 0.2.0 |"
    )
    assert identity(None) == (
        "| trained with code | not recorded (a version older than the record of its code) |"
    )


class BinaryToy(ToyRecipe):
    """The toy as a classifier's card sees it: promoted on ROC AUC."""

    task = "binary"
    primary_metric = "roc_auc"


def test_a_binary_models_groups_on_the_card_show_their_calibration() -> None:
    entry = {
        "rows": 584,
        "roc_auc": 0.799,
        "roc_auc_ci_low": 0.742,
        "roc_auc_ci_high": 0.853,
        "mean_predicted": 0.079,
        "positive_share": 0.111,
        "calibration_gap": -0.032,
        "calibration_gap_ci_low": -0.058,
        "calibration_gap_ci_high": -0.007,
    }
    segments = {"age_band": {"18-34": entry, "50-100": {"rows": 90, "note": "fewer than 100 held-out rows"}}}
    classifier = dataclasses.replace(TOY, recipe=BinaryToy())
    card = render(classifier, {"name": "toy", "version": "1", "segments": segments})
    table = card.split("**age_band**\n\n")[1].split("\n\n")[0].splitlines()
    assert table == [
        "| group | rows | roc_auc (95 % CI) | mean predicted | positive | gap (95 % CI) |",
        "|---|---|---|---|---|---|",
        "| 18-34 | 584 | 0.799 (0.742 to 0.853) | 0.079 | 0.111 | -0.032 (-0.058 to -0.007) |",
        "| 50-100 | 90 | no figure: fewer than 100 held-out rows |",
    ]
    assert "below zero the model under-states the group's probability" in card
