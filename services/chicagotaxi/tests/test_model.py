"""The fare model: quality on the real file, exact USD explanations, timestamp features, training figures."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pytest

from chicagotaxi import cleaning, data
from chicagotaxi.model import (
    CLEAN_ATTR,
    DERIVED,
    NOT_RECORDED,
    TRIP_BAND_LABELS,
    TaxiFareModel,
    calendar_year,
    clean_synthetic,
    day_of_week,
    hour_of_day,
    is_listed,
    month_of_year,
    wallclock_seconds,
)
from chicagotaxi.schema import EXAMPLE, TaxiTrip, fare_range
from chicagotaxi.service import SERVICE
from servekit.datasets import shared_file
from servekit.model import ModelArtifact
from servekit.models.trees import TreeEnsemble
from servekit.testing import assert_explanations_add_up, fit_in_memory, request_rows
from servekit.training.baselines import requestable
from servekit.training.segments import segment_metrics
from servekit.training.splitting import Split, to_records

# 2015-03-01 (a Sunday) 10:00 Chicago wall clock, in the file's convention.
TS_2015_03_01_10H = 1425204000


def validated(**overrides: Any) -> dict[str, Any]:
    """A request as the service hands it to the model (validated, then dumped)."""
    return TaxiTrip.model_validate({**EXAMPLE, **overrides}).model_dump()


@pytest.fixture(scope="module")
def real_held_out() -> tuple[ModelArtifact, Split, dict[str, Any]]:
    """The model `mlp train --data data.csv` fits (seed-42 split), fitted once for the real-data
    tests below, its split, and the cleaning figures of the file."""
    frame = SERVICE.recipe.load_csv(shared_file("chicagotaxi", "data.csv"))
    artifact, data_split = fit_in_memory(SERVICE, frame, seed=42, version="real")
    return artifact, data_split, {**frame.attrs[CLEAN_ATTR], "rows_loaded": len(frame)}


@pytest.mark.realdata
def test_quality_on_the_real_data_held_out_split(
    real_held_out: tuple[ModelArtifact, Split, dict[str, Any]],
) -> None:
    """MAE and R² on the held-out 20% of data.csv (seed 42), as `mlp train --data` reports them.

    Held-out rows are those with a valid fare (``clean`` excludes the others from training
    and evaluation alike).
    """
    artifact, data_split, figures = real_held_out
    print("chicagotaxi real-data cleaning:", figures)
    assert figures["rows_dropped_outliers_fraction"] <= cleaning.MAX_OUTLIER_FRACTION
    assert figures["rows_raw"] - figures["rows_dropped"] == figures["rows_loaded"]
    pipeline, metadata = artifact.pipeline, artifact.metadata
    metrics = SERVICE.recipe.evaluate(pipeline, data_split.x_test, data_split.y_test, metadata)
    print(
        f"chicagotaxi real-data held-out ({len(data_split.y_test)} rows): "
        f"MAE {metrics['mae']:.3f} USD, R² {metrics['r2']:.4f}, RMSE {metrics['rmse']:.3f}"
    )
    assert metrics["mae"] <= 1.50
    assert metrics["r2"] >= 0.85
    # MAE per group of held-out trips: the bands in order, the missing distance a band of its own.
    segments = segment_metrics(
        SERVICE.recipe, data_split.x_test, data_split.y_test, pipeline.predict(data_split.x_test)
    )
    print("chicagotaxi real-data held-out MAE per group:", segments)
    assert list(segments["trip_miles_band"]) == [*TRIP_BAND_LABELS, NOT_RECORDED]
    for groups in segments.values():
        assert sum(entry["rows"] for entry in groups.values()) == len(data_split.x_test)
    assert segments["payment_type"]["Cash"]["mae"] <= 1.50


@pytest.mark.realdata
def test_explanations_add_up_in_usd_on_the_real_held_out_rows(
    real_held_out: tuple[ModelArtifact, Split, dict[str, Any]],
) -> None:
    """Additivity on the real model (the quality test's), not only on synthetic rows: on all 2,327
    held-out trips, base_value + the contributions is the output, and the output is the fare.

    base_value is the mean fare the trees give over all 9,304 training rows, the 3,001 without a
    distance among them, which the API refuses (a request cannot be one): $11.86, where the mean
    over the 6,281 rows a request can be is $11.94 (README, Explanations)."""
    artifact, data_split, _ = real_held_out
    model = TaxiFareModel(artifact)
    rows = request_rows(data_split, len(data_split.x_test))
    assert len(rows) >= 2000
    assert model.explanation_scale == "USD"
    explanations = assert_explanations_add_up(model, rows, lambda answer: answer["fare"])
    training_rows = to_records(data_split.x_train)
    fares = model.trees.raw_scores(training_rows)
    base = explanations[0].base_value
    assert {e.base_value for e in explanations} == {base}
    assert base == pytest.approx(fares.mean(), rel=1e-9)
    asked = requestable(training_rows, SERVICE)
    requestable_mean = float(fares[asked.mask].mean())
    print(
        f"chicagotaxi real base_value {base:.3f} over {len(fares)} training rows; "
        f"{requestable_mean:.3f} over the {int(asked.mask.sum())} a request can be; refused {asked.refused}"
    )
    assert asked.refused["trip_miles"] > 1000
    assert requestable_mean - base > 0.05
    assert "(those a request could not be too)" in model.explanation_method


def test_mae_is_the_lower_is_better_primary_metric() -> None:
    assert SERVICE.recipe.primary_metric == "mae"
    assert SERVICE.recipe.greater_is_better is False
    assert SERVICE.recipe.task == "regression"


def test_learns_the_synthetic_meter(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = trained
    metrics = artifact.training_metrics
    assert set(metrics) >= {"mae", "rmse", "r2"}
    assert metrics["mae"] <= 1.0
    assert metrics["r2"] >= 0.9


def test_explanations_add_up_in_usd_on_many_rows(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data_split = trained
    model = TaxiFareModel(artifact)
    rows = request_rows(data_split, 400)
    assert model.explanation_scale == "USD"
    # One entry per request field: derived columns are summed back to their field.
    assert set(rows[0]) == set(data.FEATURES)
    assert_explanations_add_up(model, rows, lambda answer: answer["fare"])


def test_timestamp_features_sum_back_to_the_timestamp(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data_split = trained
    trees = TreeEnsemble(artifact.pipeline)
    rows = request_rows(data_split, 200)
    per_column = trees.booster.predict(trees.matrix(rows), pred_contrib=True)[:, :-1]
    names = trees.encoder.feature_names
    time_columns = [names.index(d.name) for d in DERIVED if d.field == data.TIMESTAMP_FIELD]
    assert len(time_columns) == 4
    explanations = TaxiFareModel(artifact).explain(rows)
    for i, explanation in enumerate(explanations):
        expected = float(per_column[i, time_columns].sum())
        assert explanation.contributions[data.TIMESTAMP_FIELD] == pytest.approx(expected, abs=1e-9)
        assert not {d.name for d in DERIVED} & set(explanation.contributions)
    # The time of day matters on the synthetic data (slower rush hours), so the sum is not all zero.
    assert any(abs(e.contributions[data.TIMESTAMP_FIELD]) > 1e-6 for e in explanations)


def test_unseen_payment_type_is_accepted_as_other(trained: tuple[ModelArtifact, Split]) -> None:
    assert validated(payment_type="Bitcoin")["payment_type"] == "other"
    assert validated(payment_type="credit_card")["payment_type"] == "Credit Card"
    assert validated(payment_type="  CASH ")["payment_type"] == "Cash"
    model = TaxiFareModel(trained[0])
    fare = model.predict([validated(payment_type="Bitcoin")])[0]["fare"]
    assert math.isfinite(fare)
    assert fare == model.predict([validated(payment_type="other")])[0]["fare"]


@pytest.mark.parametrize(
    "timestamp",
    [
        "2015-03-01T10:00:00",
        "2015-03-01 10:00",
        "2015-03-01T10:00:00-06:00",  # CST (DST starts on 2015-03-08)
        "2015-03-01T16:00:00Z",
        "1425204000",
        1425204000.0,
    ],
)
def test_iso_and_unix_timestamps_give_the_same_prediction(
    trained: tuple[ModelArtifact, Split], timestamp: str | float
) -> None:
    model = TaxiFareModel(trained[0])
    unix = model.predict([validated(trip_start_timestamp=TS_2015_03_01_10H)])[0]
    assert validated(trip_start_timestamp=timestamp)["trip_start_timestamp"] == TS_2015_03_01_10H
    assert model.predict([validated(trip_start_timestamp=timestamp)])[0] == unix
    # The model itself also reads an unvalidated ISO string the same way.
    raw = {**validated(), "trip_start_timestamp": timestamp}
    assert model.predict([raw])[0] == unix


def test_time_features_are_chicago_wall_clock() -> None:
    ts = np.array([TS_2015_03_01_10H + 30 * 60, 1451606399, 946684800], dtype=np.int64)
    assert hour_of_day(ts).tolist() == pytest.approx([10.5, 23 + 59 / 60 + 59 / 3600, 0.0], abs=1e-12)
    assert day_of_week(ts).tolist() == [6.0, 3.0, 5.0]  # Sunday, Thursday, Saturday (Mon = 0)
    assert month_of_year(ts).tolist() == [3.0, 12.0, 1.0]
    assert calendar_year(ts).tolist() == [2015.0, 2015.0, 2000.0]
    mixed = np.array(["2015-03-01T10:30:00", None, TS_2015_03_01_10H], dtype=object)
    assert wallclock_seconds(mixed)[[0, 2]].tolist() == [TS_2015_03_01_10H + 1800, TS_2015_03_01_10H]
    for feature in (hour_of_day, day_of_week, month_of_year, calendar_year):
        assert np.isnan(feature(mixed)[1])


def test_company_listed_tells_missing_from_rare() -> None:
    values = np.array(["Taxi Affiliation Services", None, float("nan"), "0118 - 42111 Godfrey"], dtype=object)
    assert is_listed(values).tolist() == [1.0, 0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("fare", "label"),
    [(3.25, "<10"), (9.99, "<10"), (10.0, "10-20"), (20.0, "20-40"), (40.0, "40-80"), (80.0, ">=80")],
)
def test_fare_ranges(fare: float, label: str) -> None:
    assert fare_range(fare) == label


def test_outcome_shares_cover_the_fare_ranges(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = trained
    shares = artifact.metadata["outcome_shares"]
    assert set(shares) <= {"<10", "10-20", "20-40", "40-80", ">=80"}
    assert sum(shares.values()) == pytest.approx(1.0)
    model = TaxiFareModel(artifact)
    prediction = model.predict([validated()])[0]
    assert model.outcome(prediction) == prediction["fare_range"] == fare_range(prediction["fare"])


def test_synthetic_data_logs_one_cleaning_report_of_the_rows_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Each round of sizing the raw prefix logged its report: two reports of different totals per
    training, the first of rows that were not trained on."""
    with caplog.at_level(logging.INFO, logger="chicagotaxi.cleaning"):
        result = clean_synthetic(500, seed=5)
    report = result.report
    assert report.n_input > 500  # more than one round: the first cleans exactly 500 raw rows
    totals = [m for m in caplog.messages if " rows in, " in m]
    assert totals == [
        f"clean: {report.n_input} rows in, 500 out: {report.n_excluded} excluded, {report.n_outliers} "
        f"outliers ({100 * report.outlier_fraction:.2f}%, cap {100 * cleaning.MAX_OUTLIER_FRACTION:.0f}%)"
    ]
    per_rule = [m for m in caplog.messages if " rows in, " not in m]
    assert len(per_rule) == len(report.excluded) + len(report.outliers) + len(report.repaired)
    assert not cleaning.logger.disabled


def test_training_data_carries_and_logs_the_cleaning_figures(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="chicagotaxi"):
        frame = SERVICE.recipe.generate(2000, seed=5)
    figures = frame.attrs[CLEAN_ATTR]
    assert len(frame) == 2000  # exactly the rows asked for, after cleaning
    assert figures["rows_dropped"] > 0
    assert figures["rows_raw"] - figures["rows_dropped"] == len(frame)
    assert figures["rows_dropped_outliers_fraction"] <= cleaning.MAX_OUTLIER_FRACTION
    assert any("dropped" in r.getMessage() and r.name == "chicagotaxi.model" for r in caplog.records)
    described = SERVICE.recipe.describe_data(frame)
    assert described["clean.rows_dropped"] == figures["rows_dropped"]
    assert described["clean.rows_dropped_outliers"] == figures["rows_dropped_outliers"]
    # Model-friendly dtypes: no pandas NA reaches the encoder or MLflow's signature.
    for column in (data.TIMESTAMP_FIELD, "pickup_community_area", "dropoff_community_area"):
        assert str(frame[column].dtype) == "float64"


def test_drift_watches_the_hour_and_weekday_not_the_growing_timestamp(
    trained: tuple[ModelArtifact, Split],
) -> None:
    model = TaxiFareModel(trained[0])
    watched = {binning.feature for binning in model.input_bins}
    assert data.TIMESTAMP_FIELD not in watched
    assert {"trip_start_hour", "trip_start_day_of_week", "trip_miles", "company", "payment_type"} <= watched
    columns = model.monitored_inputs([validated(trip_start_timestamp=TS_2015_03_01_10H + 1800)])
    assert data.TIMESTAMP_FIELD not in columns
    assert columns["trip_start_hour"] == [10.5]
    assert columns["trip_start_day_of_week"] == [6.0]
    # A trip years after the training data is no drift in itself: its hour and weekday are usual.
    later = model.monitored_inputs([validated(trip_start_timestamp=TS_2015_03_01_10H + 10 * 364 * 86_400)])
    assert later["trip_start_day_of_week"] == [6.0]
