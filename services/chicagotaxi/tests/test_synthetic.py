"""Tests of chicagotaxi.synthetic: the generated trips have the real schema, are
deterministic, pass cleaning and look like the real file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from chicagotaxi import data, synthetic
from chicagotaxi.cleaning import clean
from chicagotaxi.data import (
    PAYMENT_TYPES,
    RAW_COLUMNS,
    TARGET,
    load_csv,
)
from chicagotaxi.synthetic import generate


def test_bounds_contain_every_community_area_centroid() -> None:
    for lat, lon in synthetic._AREA_CENTROIDS.values():
        assert data.LAT_MIN <= lat <= data.LAT_MAX
        assert data.LON_MIN <= lon <= data.LON_MAX


@pytest.mark.realdata
def test_generate_has_the_real_schema(real_csv: Path) -> None:
    real = load_csv(real_csv)
    fake = generate(500)
    assert list(fake.columns) == list(pd.read_csv(real_csv, nrows=0).columns)
    pd.testing.assert_series_equal(fake.dtypes, real.dtypes)


# ------------------------------------------------------------------------- generator


def test_generate_is_deterministic() -> None:
    pd.testing.assert_frame_equal(generate(800, seed=7), generate(800, seed=7))
    assert not generate(800, seed=7).equals(generate(800, seed=8))


def test_generate_schema_and_csv_round_trip(tmp_path: Path) -> None:
    fake = generate(300, seed=1)
    assert list(fake.columns) == list(RAW_COLUMNS)
    assert len(fake) == 300
    path = tmp_path / "fake.csv"
    fake.to_csv(path, index=False)
    pd.testing.assert_frame_equal(load_csv(path), fake, check_exact=False)


def test_generate_rejects_empty() -> None:
    with pytest.raises(ValueError, match="n_rows"):
        generate(0)


@pytest.fixture(scope="module")
def fake() -> pd.DataFrame:
    return generate()


def test_generate_passes_clean_with_at_most_two_percent_dropped(fake: pd.DataFrame) -> None:
    report = clean(fake).report
    assert report.n_input == 10000
    assert report.dropped_fraction <= 0.02
    # ... and still exercises the rules.
    assert report.n_outliers > 0
    assert report.repaired["trip_miles_zero_to_missing"] > 0


def test_generate_is_realistic(fake: pd.DataFrame) -> None:
    years = pd.to_datetime(fake["trip_start_timestamp"].astype("int64"), unit="s").dt.year
    assert set(years) == {2013, 2014, 2015, 2016}
    assert 0.30 < fake["company"].isna().mean() < 0.38
    assert 0.60 < (fake["payment_type"] == "Cash").mean() < 0.72
    assert set(fake["payment_type"]) <= set(PAYMENT_TYPES)
    assert 0.02 < fake["dropoff_latitude"].isna().mean() < 0.05
    assert fake["pickup_census_tract"].isna().all()
    assert fake["pickup_community_area"].between(1, 77).all()
    assert (fake["pickup_community_area"] == 8).mean() > 0.25  # Near North is busiest
    miles = fake["trip_miles"][fake["trip_miles"].between(0.05, 100)]
    assert 1.0 < miles.median() < 4.0
    seconds = fake["trip_seconds"][fake["trip_seconds"].between(1, 21600)]
    assert 300 < seconds.median() < 900
    # Tips only on card payments.
    assert (fake.loc[fake["payment_type"] != "Credit Card", "tips"] == 0).all()
    # The calendar columns agree with the timestamp.
    moments = pd.to_datetime(fake["trip_start_timestamp"].astype("int64"), unit="s")
    assert (moments.dt.hour.to_numpy() == fake["trip_start_hour"].to_numpy()).all()
    assert (moments.dt.month.to_numpy() == fake["trip_start_month"].to_numpy()).all()


def test_generated_coordinates_are_tied_to_the_areas(fake: pd.DataFrame) -> None:
    centroids = fake["pickup_community_area"].astype("int64").map(synthetic._AREA_CENTROIDS)
    lat = np.array([c[0] for c in centroids])
    lon = np.array([c[1] for c in centroids])
    off_lat = np.abs(fake["pickup_latitude"].to_numpy() - lat)
    off_lon = np.abs(fake["pickup_longitude"].to_numpy() - lon)
    assert np.median(off_lat) < 0.01
    assert np.median(off_lon) < 0.01
    for end in ("pickup", "dropoff"):
        assert fake[f"{end}_latitude"].dropna().between(data.LAT_MIN, data.LAT_MAX).all()
        assert fake[f"{end}_longitude"].dropna().between(data.LON_MIN, data.LON_MAX).all()


def test_generated_fare_follows_the_meter(fake: pd.DataFrame) -> None:
    out = clean(fake).frame.dropna(subset=["trip_miles", "trip_seconds"])
    design = np.column_stack([np.ones(len(out)), out["trip_miles"], out["trip_seconds"] / 36.0])
    (flag_fall, per_mile, per_36s), *_ = np.linalg.lstsq(design, out[TARGET], rcond=None)
    assert per_mile == pytest.approx(data.METER_PER_MILE, abs=0.05)
    assert per_36s == pytest.approx(data.METER_PER_36_SECONDS, abs=0.02)
    # Flag fall plus the mean extras (8 % x $1.5) and rounding.
    assert flag_fall == pytest.approx(data.METER_FLAG_FALL + 0.12, abs=0.3)
