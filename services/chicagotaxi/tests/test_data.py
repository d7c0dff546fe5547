"""Tests of chicagotaxi.data: the schema, the types every column is read as (cleaning rules
1-3), timestamps, and reading the real file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from taxi_trips import TS_2015_03_01_10H, cleaned, frame, require_real_csv, trip

from chicagotaxi import data
from chicagotaxi.cleaning import clean
from chicagotaxi.data import (
    FEATURES,
    PAYMENT_TYPES,
    RAW_COLUMNS,
    TARGET,
    DatasetError,
    coerce_types,
    load_csv,
    parse_timestamp,
)

# ------------------------------------------------------------------- rule 1: schema


@pytest.mark.parametrize("column", [*FEATURES, TARGET])
def test_missing_required_column_raises_naming_it(column: str) -> None:
    df = frame(trip()).drop(columns=[column])
    with pytest.raises(DatasetError, match=column):
        clean(df)


def test_load_csv_missing_column_raises_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "trips.csv"
    frame(trip()).drop(columns=["trip_seconds"]).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="trip_seconds"):
        load_csv(path)


def test_a_missing_column_names_the_files_near_match(tmp_path: Path) -> None:
    """A header with a space after it, or in another case, is named beside the column it holds."""
    path = tmp_path / "trips.csv"
    frame(trip()).rename(columns={"trip_seconds": "Trip_Seconds "}).to_csv(path, index=False)
    with pytest.raises(DatasetError) as missing:
        load_csv(path)
    assert str(missing.value) == "missing column(s): trip_seconds (the file has 'Trip_Seconds ')"


def test_non_feature_columns_are_optional_and_not_returned() -> None:
    df = frame(trip()).drop(columns=["tips", "pickup_census_tract", "trip_start_hour"])
    result = clean(df)
    assert list(result.frame.columns) == [*FEATURES, TARGET]


# ------------------------------------------------------------- rules 2-3: blanks, types


def test_blanks_and_null_tokens_become_missing() -> None:
    result = cleaned(
        trip(company="   ", dropoff_latitude="", dropoff_longitude=" "),
        trip(company="NULL", pickup_community_area="NA", dropoff_community_area="nan"),
    )
    out = result.frame
    assert out["company"].isna().all()
    assert out.loc[0, ["dropoff_latitude", "dropoff_longitude"]].isna().all()
    assert out.loc[1, ["pickup_community_area", "dropoff_community_area"]].isna().all()


def test_types_are_coerced() -> None:
    out = cleaned(trip(), trip(company=" Blue  Ribbon Taxi Association Inc. ")).frame
    assert out["trip_start_timestamp"].dtype == "Int64"
    assert out["pickup_community_area"].dtype == "Int64"
    for column in data.NUMERIC_FIELDS:
        assert out[column].dtype == np.float64, column
    assert out[TARGET].dtype == np.float64
    assert pd.api.types.is_string_dtype(out["company"])
    assert out.loc[0, "trip_miles"] == pytest.approx(3.2)
    # Rule 7: whitespace is collapsed.
    assert out.loc[1, "company"] == "Blue Ribbon Taxi Association Inc."


def test_typed_input_is_accepted() -> None:
    typed = coerce_types(frame(trip()))
    assert clean(typed).frame.equals(cleaned(trip()).frame)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("trip_miles", "3,2"),
        ("fare", "$11"),
        ("pickup_latitude", "north"),
        ("pickup_community_area", "Loop"),
        ("pickup_community_area", "8.5"),
        ("trip_start_timestamp", "yesterday"),
        ("trip_start_timestamp", "1425204000000"),  # milliseconds
    ],
)
def test_unparseable_value_raises_naming_column(column: str, value: str) -> None:
    with pytest.raises(DatasetError, match=column):
        cleaned(trip(**{column: value}))


def test_a_file_s_unparseable_numbers_are_named_by_their_lines(tmp_path: Path) -> None:
    """The message named no line (``column 'fare': 1 non-numeric value(s), e.g. 'abc'``)."""
    path = tmp_path / "trips.csv"
    frame(trip(), trip(fare="abc"), trip(fare="twelve"), trip()).to_csv(path, index=False)
    with pytest.raises(DatasetError) as error:
        load_csv(path)
    assert str(error.value) == "column 'fare': 2 non-numeric value(s) at line(s) 3, 4, e.g. 'abc'"
    frame(trip(), trip(company="Taxi\nAffiliation"), trip(trip_start_hour="10.5")).to_csv(path, index=False)
    with pytest.raises(DatasetError) as error:
        load_csv(path)  # row 2 starts on line 5: row 1's company spans lines 3 and 4
    assert str(error.value) == "column 'trip_start_hour': 1 non-integer value(s) at line(s) 5, e.g. '10.5'"


def test_a_file_s_bad_timestamps_are_named_by_their_lines(tmp_path: Path) -> None:
    """The message named the first bad value alone, so a user searched a million lines for it."""
    path = tmp_path / "trips.csv"
    millis = "1425204000000"
    trips = [trip(), trip(trip_start_timestamp="yesterday"), trip(), trip(trip_start_timestamp=millis)]
    frame(*trips, trip(trip_start_timestamp="soon")).to_csv(path, index=False)
    with pytest.raises(DatasetError) as error:
        load_csv(path)
    assert str(error.value).startswith("column 'trip_start_timestamp': 'yesterday' is neither Unix seconds")
    assert str(error.value).endswith("(Chicago time) or 2015-03-01T16:00:00Z; line(s) 3, 5, 6")
    frame(trip(company="Taxi\nAffiliation"), trip(trip_start_timestamp=millis)).to_csv(path, index=False)
    with pytest.raises(DatasetError) as error:
        load_csv(path)  # row 2 starts on line 4: row 1's company spans lines 2 and 3
    assert str(error.value) == (
        "column 'trip_start_timestamp': '1425204000000' is not Unix seconds between 2000 and 2100 "
        "(not milliseconds); line(s) 4"
    )


def test_infinite_values_become_missing() -> None:
    out = cleaned(trip(trip_miles="inf"), trip(fare="-inf"), n_ordinary=98)
    assert np.isnan(out.frame.loc[0, "trip_miles"])
    assert out.report.excluded["invalid_fare"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (TS_2015_03_01_10H, TS_2015_03_01_10H),
        (float(TS_2015_03_01_10H) + 0.7, TS_2015_03_01_10H),
        (str(TS_2015_03_01_10H), TS_2015_03_01_10H),
        (np.int64(TS_2015_03_01_10H), TS_2015_03_01_10H),
        ("2015-03-01T10:00:00", TS_2015_03_01_10H),  # naive = Chicago wall clock
        ("2015-03-01 10:00", TS_2015_03_01_10H),
        ("2015-03-01T16:00:00Z", TS_2015_03_01_10H),  # UTC-6 in winter (CST)
        ("2015-03-01T11:00:00-05:00", TS_2015_03_01_10H),
        ("2015-07-01T15:00:00+00:00", 1435744800),  # 10:00 CDT (UTC-5) in summer
    ],
)
def test_parse_timestamp_accepts_unix_and_iso(value: object, expected: int) -> None:
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", [True, None, "", "nan", "2015-13-01", 12.0, float("inf")])
def test_parse_timestamp_rejects_garbage(value: object) -> None:
    with pytest.raises(DatasetError, match="trip_start_timestamp"):
        parse_timestamp(value)


@pytest.mark.parametrize("value", ["2015-03-01 10:00:00 UTC", "2015-03-01 10:00:00.250000 UTC"])
def test_bigquery_timestamp_text_is_refused_with_the_exports_that_fix_it(value: str) -> None:
    # Its hour is right read one way for one kind of table and the other way for the other.
    fixes = r"BigQuery TIMESTAMP written as text.*UNIX_SECONDS.*FORMAT_TIMESTAMP"
    with pytest.raises(DatasetError, match=fixes):
        parse_timestamp(value)
    with pytest.raises(DatasetError, match="BigQuery TIMESTAMP"):
        cleaned(trip(trip_start_timestamp=value))


def test_the_data_portals_timestamp_text_is_read_as_the_api_reads_it() -> None:
    """``03/01/2015 10:00:00 AM``, the City of Chicago portal's export: the loader and the API share
    ``parse_timestamp``, so a file exported from the portal trains as it scores."""
    assert parse_timestamp("03/01/2015 10:00:00 AM") == TS_2015_03_01_10H
    assert parse_timestamp("03/01/2015 12:00:00 AM") == TS_2015_03_01_10H - 10 * 3600
    out = cleaned(trip(trip_start_timestamp="03/01/2015 10:00:00 AM"), trip()).frame
    assert out["trip_start_timestamp"].tolist() == [TS_2015_03_01_10H] * 2
    with pytest.raises(DatasetError, match=r"hour must be in 01\.\.12"):
        parse_timestamp("03/01/2015 00:15:00 AM")


def test_iso_timestamps_in_a_file_are_parsed() -> None:
    out = cleaned(trip(trip_start_timestamp="2015-03-01T16:00:00Z"), trip()).frame
    assert out["trip_start_timestamp"].tolist() == [TS_2015_03_01_10H] * 2


def test_file_timestamps_match_the_files_calendar_columns() -> None:
    # The convention parse_timestamp keeps: the UTC reading of the number is local time.
    moment = pd.Timestamp(TS_2015_03_01_10H, unit="s")
    assert (moment.hour, moment.month, moment.day_name()) == (10, 3, "Sunday")


# ---------------------------------------------------------------- the real file


def test_require_real_csv_skips_without_ci_and_fails_with_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    absent = tmp_path / "absent.csv"
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        require_real_csv(absent)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_real_csv(absent)


@pytest.mark.realdata
def test_load_csv_reads_the_real_file(real_csv: Path) -> None:
    df = load_csv(real_csv)
    assert df.shape == (12002, 18)
    assert list(df.columns) == list(RAW_COLUMNS)
    assert df["pickup_census_tract"].isna().all()
    assert 0.30 < df["company"].isna().mean() < 0.37
    assert set(df["payment_type"]) == set(PAYMENT_TYPES) - {"other"}
    assert df["trip_start_timestamp"].notna().all()
    # The timestamp convention (module docstring): the UTC reading equals the file's hour.
    moments = pd.to_datetime(df["trip_start_timestamp"].astype("int64"), unit="s")
    assert (moments.dt.hour.to_numpy() == df["trip_start_hour"].to_numpy()).all()


@pytest.mark.realdata
def test_bounds_contain_every_real_coordinate(real_csv: Path) -> None:
    df = load_csv(real_csv)
    for end in ("pickup", "dropoff"):
        assert df[f"{end}_latitude"].dropna().between(data.LAT_MIN, data.LAT_MAX).all()
        assert df[f"{end}_longitude"].dropna().between(data.LON_MIN, data.LON_MAX).all()


def test_one_trips_straight_line_is_the_columns_formula() -> None:
    """The API measures one trip with ``haversine_miles_of``, the cleaning a column with
    ``haversine_miles``: the same miles, so both draw rule 13's line in the same place."""
    points = (41.979071, -87.90304, 41.880994, -87.632746)
    assert data.haversine_miles_of(*points) == pytest.approx(float(data.haversine_miles(*points)), rel=1e-12)
    assert data.haversine_miles_of(*points) == pytest.approx(15.5, abs=0.1)
