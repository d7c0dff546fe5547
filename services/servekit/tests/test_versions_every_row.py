"""Figures of versions trained before held-out figures left out the rows no request can be, told
apart where they matter: ``mlp versions`` and the model card."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from toy import TOY

from servekit.card import render as render_card
from servekit.testing import new_tracking_database
from servekit.training.baselines import REQUESTABLE
from servekit.training.versions import list_versions
from servekit.training.versions import render as render_versions


def _registry(tmp_path: Path, runs: list[tuple[float, dict[str, str]]]) -> Any:
    """``toy`` with one version a run: its mae and its ``data.*`` params."""
    uri = new_tracking_database(tmp_path / "mlflow.db")
    client = mlflow.MlflowClient(uri, registry_uri=uri)
    experiment = client.create_experiment("toy", artifact_location=str(tmp_path / "artifacts"))
    client.create_registered_model("toy")
    for mae, params in runs:
        run = client.create_run(experiment).info.run_id
        client.log_metric(run, "mae", mae)
        for key, value in params.items():
            client.log_param(run, key, value)
        client.create_model_version("toy", "unused", run_id=run)
    return client


BEFORE = {"data.rows": "11632", "data.source": "taxi.csv", "data.sha256": "ab" * 32}
SINCE = BEFORE | {"data.held_out_rows": "2327", "data.held_out_scored_rows": "1598"}


def test_mlp_versions_marks_figures_over_every_held_out_row_beside_ones_that_leave_rows_out(
    tmp_path: Path,
) -> None:
    """ChicagoTaxi's same model read 0.7065 trained before, 0.5383 since: a 24 % gain no one made."""
    client = _registry(tmp_path, [(0.7065, BEFORE), (0.5383, SINCE)])
    listed = render_versions(TOY, list_versions(TOY, client, 5), "sqlite")
    lines = listed.splitlines()
    assert next(line for line in lines if line.startswith("1 ")).split()[4] == "0.7065*"
    assert next(line for line in lines if line.startswith("2 ")).split()[4] == "0.5383"
    assert lines[-1] == (
        "* over every held-out row, those no request can be included (trained before they were left "
        "out): not comparable with the versions' since, which leave them out (v2: 729 rows)"
    )
    mlflow.set_tracking_uri(None)


def test_mlp_versions_marks_nothing_where_no_version_leaves_a_row_out(tmp_path: Path) -> None:
    """BankChurn's request schema accepts every held-out row: its figures then and since are alike."""
    every = BEFORE | {"data.held_out_rows": "2000", "data.held_out_scored_rows": "2000"}
    client = _registry(tmp_path, [(0.86, BEFORE), (0.87, every)])
    listed = render_versions(TOY, list_versions(TOY, client, 5), "sqlite")
    assert "*" not in listed
    mlflow.set_tracking_uri(None)


def _described(input_baseline: dict[str, Any]) -> dict[str, Any]:
    """What GET /model gave of a version trained before the figures left rows out."""
    return {
        "name": "toy",
        "version": "1",
        "training_metrics": {"mae": 0.7065},
        "data": {"rows": 11632, "sha256": "ab"},
        "baselines": {"input_baseline": input_baseline},
    }


def test_the_card_of_a_version_trained_before_says_its_figures_count_rows_no_request_can_be() -> None:
    # Its input drift baseline was over the rows a request can be then too: it tells how many.
    baseline = {"rows": 1598, "held_out_rows": 2327, "rows_from": REQUESTABLE}
    card = render_card(TOY, _described(baseline))
    assert (
        "## Held-out performance\n\nOver every held-out row, the 729 of the 2,327 no request can be "
        "included (trained before held-out figures left out the rows no request can be): not "
        "comparable with the figures of a version trained since, which leave them out.\n\n| metric |"
    ) in card
    assert "held-out split (every row of it: trained before held-out figures left out" in card
    # Where every held-out row was one, its figures are what they would be now: nothing to say.
    alike = render_card(TOY, _described(baseline | {"rows": 2327}))
    assert "## Held-out performance\n\n| metric | value |" in alike
    assert "trained before" not in alike
    # Where that was not recorded, the card says what it can.
    unknown = render_card(TOY, _described({}))
    assert (
        "## Held-out performance\n\nOver every held-out row (trained before held-out figures left out "
        "the rows no request can be; how many of them a request can be was not recorded): a version "
        "trained since scores only those a request can be.\n\n| metric |"
    ) in unknown


#: What ChicagoTaxi's card is rendered from for a version trained now on its real trips: 116 of the
#: 2,000 held out have no miles, which no request can be, so its input baseline has 1,884 rows too.
TAXI_NOW = {
    "data": {
        "rows": 11631,
        "sha256": "ab",
        "training_rows": 9631,
        "held_out_rows": 2000,
        "held_out_scored_rows": 1884,
        "held_out_scored": REQUESTABLE,
        "held_out_left_out": "the request schema refuses them (trip_miles: 116), so no request can be "
        "one of them",
    },
    "baselines": {"input_baseline": {"rows": 1884, "held_out_rows": 2000, "rows_from": REQUESTABLE}},
}


def test_the_card_of_a_version_trained_since_that_leaves_rows_out_says_nothing_of_before() -> None:
    """Every fresh ChicagoTaxi card said its model was "trained before" the rows were left out: its
    input baseline has fewer rows than held out, which was all the card asked."""
    card = render_card(TOY, {**_described({}), **TAXI_NOW})
    assert "trained before" not in card
    assert "## Held-out performance\n\nOver the 1,884 held-out rows a request can be. The other 116" in card
    assert "one held-out split (its rows a request can be, where the data has others)" in card


def test_the_card_of_a_version_scored_on_every_row_as_too_few_are_requests_says_why() -> None:
    """The figures over every held-out row as only 55 of 2,000 are requests: the card's limits say
    so, not that the version was trained before the rows were counted."""
    every = (
        "every held-out row: only 55 of the 2,000 held-out rows pass toy's request schema, fewer than "
        "the 100 a held-out figure needs; the 1,945 no request can be may skew the figures"
    )
    data = TAXI_NOW["data"] | {"held_out_scored_rows": 2000, "held_out_scored": every}
    del data["held_out_left_out"]
    baseline = {"rows": 55, "held_out_rows": 2000, "rows_from": REQUESTABLE}
    card = render_card(TOY, {**_described(baseline), "data": data})
    assert "trained before" not in card
    assert f"## Held-out performance\n\nOver {every}.\n\n| metric |" in card
    assert f"- Every figure above comes from one held-out split ({every}); the intervals" in card


def test_mlp_versions_marks_figures_over_every_held_out_row_as_too_few_were_requests(
    tmp_path: Path,
) -> None:
    """A version whose figures fell back to every held-out row (55 of 2,000 requests) left none out,
    so it was listed beside the others unmarked."""
    every = (
        "every held-out row: only 55 of the 2,000 held-out rows pass toy's request schema, fewer than "
        "the 100 a held-out figure needs; the 1,945 no request can be may skew the figures"
    )
    fallback = BEFORE | {
        "data.held_out_rows": "2000",
        "data.held_out_scored_rows": "2000",
        "data.held_out_scored": every,
    }
    alike = BEFORE | {
        "data.held_out_rows": "2000",
        "data.held_out_scored_rows": "2000",
        "data.held_out_scored": REQUESTABLE,
    }
    client = _registry(tmp_path, [(0.5383, alike), (3.1, fallback)])
    lines = render_versions(TOY, list_versions(TOY, client, 5), "sqlite").splitlines()
    assert next(line for line in lines if line.startswith("1 ")).split()[4] == "0.5383"
    assert next(line for line in lines if line.startswith("2 ")).split()[4] == "3.1000*"
    assert lines[-1] == f"* v2: over {every}"
    mlflow.set_tracking_uri(None)
