"""Tests of chicagotaxi.data: every cleaning rule on small hand-built frames, the real file,
and the synthetic generator."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from chicagotaxi import data
from chicagotaxi.data import (
    FEATURES,
    PAYMENT_TYPES,
    RAW_COLUMNS,
    TARGET,
    CleanResult,
    DatasetError,
    clean,
    coerce_types,
    generate,
    load_csv,
    normalise_payment_type,
    parse_timestamp,
)

REAL_CSV = Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets" / "chicagotaxi" / "data.csv"

# 2015-03-01 10:00 Chicago wall clock in the file's convention (wall clock read as UTC).
TS_2015_03_01_10H = 1425204000


def require_real_csv(path: Path) -> Path:
    """Skip when the shared file is absent on a developer machine; fail in CI."""
    if not path.is_file():
        if "CI" in os.environ:
            pytest.fail(f"real data file {path} is missing and CI is set")
        pytest.skip(f"real data file {path} not present (CI unset)")
    return path


@pytest.fixture
def real_csv() -> Path:
    return require_real_csv(REAL_CSV)


def trip(**overrides: Any) -> dict[str, Any]:
    """One ordinary Loop -> Lincoln Park trip, as text like in the CSV."""
    row: dict[str, Any] = {
        "pickup_community_area": "32",
        "fare": "11.25",
        "trip_start_month": "3",
        "trip_start_hour": "10",
        "trip_start_day": "1",
        "trip_start_timestamp": str(TS_2015_03_01_10H),
        "pickup_latitude": "41.880994471",
        "pickup_longitude": "-87.632746489",
        "dropoff_latitude": "41.922686284",
        "dropoff_longitude": "-87.649488729",
        "trip_miles": "3.2",
        "pickup_census_tract": "",
        "dropoff_census_tract": "17031070400",
        "payment_type": "Cash",
        "company": "Taxi Affiliation Services",
        "trip_seconds": "840",
        "dropoff_community_area": "7",
        "tips": "0.0",
    }
    row.update(overrides)
    return row


def frame(*rows: dict[str, Any], n_ordinary: int = 0) -> pd.DataFrame:
    """The given rows followed by ``n_ordinary`` ordinary trips (to stay under the caps)."""
    return pd.DataFrame([*rows, *(trip() for _ in range(n_ordinary))], columns=list(RAW_COLUMNS))


def cleaned(*rows: dict[str, Any], n_ordinary: int = 0) -> CleanResult:
    return clean(frame(*rows, n_ordinary=n_ordinary))


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


def test_iso_timestamps_in_a_file_are_parsed() -> None:
    out = cleaned(trip(trip_start_timestamp="2015-03-01T16:00:00Z"), trip()).frame
    assert out["trip_start_timestamp"].tolist() == [TS_2015_03_01_10H] * 2


def test_file_timestamps_match_the_files_calendar_columns() -> None:
    # The convention parse_timestamp keeps: the UTC reading of the number is local time.
    moment = pd.Timestamp(TS_2015_03_01_10H, unit="s")
    assert (moment.hour, moment.month, moment.day_name()) == (10, 3, "Sunday")


# --------------------------------------------------------------- rule 4: coordinates


@pytest.mark.parametrize(
    "override",
    [
        {"pickup_latitude": "0", "pickup_longitude": "0"},
        {"pickup_latitude": "41.5"},  # south of the box
        {"pickup_longitude": "-88.2"},  # west of the box
        {"pickup_longitude": ""},  # half a pair
    ],
)
def test_unusable_coordinates_become_missing_as_a_pair(override: dict[str, str]) -> None:
    result = cleaned(trip(**override), trip())
    first = result.frame.loc[0]
    assert np.isnan(first["pickup_latitude"])
    assert np.isnan(first["pickup_longitude"])
    assert first["dropoff_latitude"] == pytest.approx(41.922686284)
    assert result.report.n_output == 2
    assert result.report.repaired["coordinates_to_missing"] == 1


def test_bounds_contain_every_community_area_centroid() -> None:
    for lat, lon in data._AREA_CENTROIDS.values():
        assert data.LAT_MIN <= lat <= data.LAT_MAX
        assert data.LON_MIN <= lon <= data.LON_MAX


# ------------------------------------------------------------- rule 5: community areas


@pytest.mark.parametrize("value", ["0", "78", "-3", "999"])
def test_community_area_outside_1_to_77_becomes_missing(value: str) -> None:
    result = cleaned(trip(dropoff_community_area=value), trip())
    assert pd.isna(result.frame.loc[0, "dropoff_community_area"])
    assert result.frame.loc[1, "dropoff_community_area"] == 7
    assert result.report.repaired["community_area_to_missing"] == 1


# ---------------------------------------------------------------- rule 6: payment type


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cash", "Cash"),
        (" CASH ", "Cash"),
        ("credit card", "Credit Card"),
        ("Credit_Card", "Credit Card"),
        ("no-charge", "No Charge"),
        ("pcard", "Pcard"),
        ("Mobile", "other"),
        ("other", "other"),
        (None, "Unknown"),
        (float("nan"), "Unknown"),
        ("  ", "Unknown"),
    ],
)
def test_normalise_payment_type(raw: object, expected: str) -> None:
    assert normalise_payment_type(raw) == expected
    assert expected in PAYMENT_TYPES


def test_payment_types_are_normalised_and_counted() -> None:
    result = cleaned(
        trip(payment_type="CREDIT CARD"),
        trip(payment_type="Way2ride"),
        trip(payment_type=""),
        trip(),
    )
    assert result.frame["payment_type"].tolist() == ["Credit Card", "other", "Unknown", "Cash"]
    assert result.report.repaired["payment_type_unseen_to_other"] == 1
    assert result.report.repaired["payment_type_missing_to_unknown"] == 1


def test_payment_types_are_the_seen_values_plus_other() -> None:
    seen = ("Cash", "Credit Card", "No Charge", "Unknown", "Dispute", "Pcard")
    assert (*seen, "other") == PAYMENT_TYPES


# --------------------------------------------------------------------- rule 7: company


def test_missing_company_is_kept_as_missing() -> None:
    result = cleaned(trip(company=""), trip())
    assert result.report.n_output == 2
    assert pd.isna(result.frame.loc[0, "company"])
    assert result.frame.loc[1, "company"] == "Taxi Affiliation Services"


# -------------------------------------------------------------- rule 8: invalid fare


@pytest.mark.parametrize("fare", ["", "0", "3.24", "-5", "nan"])
def test_invalid_fare_is_excluded(fare: str) -> None:
    result = cleaned(trip(fare=fare), n_ordinary=19)
    assert result.report.excluded["invalid_fare"] == 1
    assert result.report.n_output == 19
    assert (result.frame[TARGET] >= data.METER_FLAG_FALL).all()


def test_flag_fall_fare_is_valid() -> None:
    result = cleaned(trip(fare="3.25", trip_miles="0.1", trip_seconds="60"))
    assert result.report.n_dropped == 0


# ---------------------------------------------------------- rule 9: no trip recorded


@pytest.mark.parametrize(("miles", "seconds"), [("0", "0"), ("0.0", ""), ("", "0"), ("", "")])
def test_no_distance_and_no_time_is_not_a_trip(miles: str, seconds: str) -> None:
    result = cleaned(trip(fare="3.25", trip_miles=miles, trip_seconds=seconds), n_ordinary=19)
    assert result.report.excluded["no_trip_recorded"] == 1
    assert result.report.n_output == 19


# ------------------------------------------------------------------ rule 10: outliers


@pytest.mark.parametrize(
    ("override", "rule"),
    [
        ({"trip_miles": "1710"}, "trip_miles_out_of_range"),
        ({"trip_miles": "100.1"}, "trip_miles_out_of_range"),
        ({"trip_miles": "-1"}, "trip_miles_out_of_range"),
        ({"trip_seconds": "72120"}, "trip_seconds_out_of_range"),
        ({"trip_seconds": "-60"}, "trip_seconds_out_of_range"),
        ({"trip_start_timestamp": ""}, "trip_start_timestamp_missing"),
    ],
)
def test_outlier_is_dropped_counted_and_logged(
    override: dict[str, str], rule: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="chicagotaxi.data"):
        result = cleaned(trip(**override), n_ordinary=99)
    assert result.report.outliers[rule] == 1
    assert result.report.n_outliers == 1
    assert result.report.n_output == 99
    assert any(rule in message and "1 rows" in message for message in caplog.messages)


def test_serving_domain_edges_are_kept() -> None:
    result = cleaned(trip(trip_miles="100", trip_seconds="21600", fare="300"))
    assert result.report.n_dropped == 0


def test_outliers_above_two_percent_raise_naming_the_column() -> None:
    rows = [trip(trip_miles="500") for _ in range(3)]
    with pytest.raises(DatasetError, match=r"3 of 100 rows.*column 'trip_miles': 3"):
        cleaned(*rows, n_ordinary=97)


def test_outlier_cap_is_on_the_total_of_the_rules() -> None:
    # Each rule alone stays under 2 %, together they do not.
    rows = [trip(trip_miles="500"), trip(trip_miles="500"), trip(trip_seconds="99999")]
    with pytest.raises(DatasetError, match=r"'trip_miles': 2.*'trip_seconds': 1"):
        cleaned(*rows, n_ordinary=97)


def test_outliers_at_two_percent_are_dropped() -> None:
    rows = [trip(trip_seconds="90000") for _ in range(2)]
    assert cleaned(*rows, n_ordinary=98).report.outlier_fraction == pytest.approx(0.02)


# ------------------------------------------------------------ rule 11: zero sentinels


def test_zero_miles_are_repaired_not_dropped_even_when_common() -> None:
    # 30 % zero-mile trips (the real file has 27 %): far over the 2 % cap, so they must be
    # repaired (set missing) and kept, not dropped and not an error.
    rows = [trip(trip_miles="0.0") for _ in range(30)]
    result = cleaned(*rows, n_ordinary=70)
    assert result.report.n_dropped == 0
    assert result.report.repaired["trip_miles_zero_to_missing"] == 30
    assert result.frame["trip_miles"].isna().sum() == 30
    assert result.frame["trip_seconds"].notna().all()


def test_zero_seconds_are_repaired() -> None:
    result = cleaned(trip(trip_seconds="0"), trip())
    assert result.report.repaired["trip_seconds_zero_to_missing"] == 1
    assert np.isnan(result.frame.loc[0, "trip_seconds"])
    assert result.frame.loc[0, "trip_miles"] == pytest.approx(3.2)


# ------------------------------------------------------- rule 12: speed contradiction


def test_impossible_speed_sets_miles_and_seconds_missing() -> None:
    # 22 miles in 9 minutes = 147 mph: one of the two is wrong.
    result = cleaned(trip(trip_miles="22", trip_seconds="540", fare="8.25"), trip())
    assert result.report.repaired["miles_seconds_inconsistent_to_missing"] == 1
    first = result.frame.loc[0]
    assert np.isnan(first["trip_miles"])
    assert np.isnan(first["trip_seconds"])
    assert result.report.n_output == 2


def test_fast_but_possible_trip_is_kept() -> None:
    # O'Hare -> Loop, 17 miles in 20 minutes = 51 mph.
    result = cleaned(
        trip(
            trip_miles="17",
            trip_seconds="1200",
            fare="45",
            pickup_latitude="41.979",
            pickup_longitude="-87.903",
        )
    )
    assert result.report.repaired["miles_seconds_inconsistent_to_missing"] == 0
    assert result.frame.loc[0, "trip_miles"] == 17


# ------------------------------------------------- rule 13: miles below straight line


def test_miles_shorter_than_straight_line_become_missing() -> None:
    # O'Hare (76) -> Loop (32) is ~14.6 miles as the crow flies; 0.7 miles is impossible.
    ohare = {"pickup_latitude": "41.979", "pickup_longitude": "-87.903"}
    result = cleaned(
        trip(trip_miles="0.7", trip_seconds="1500", fare="30.05", **ohare),
        trip(trip_miles="13.0", trip_seconds="1500", fare="30.05", **ohare),  # within slack
        trip(trip_miles="0.7", dropoff_latitude="", dropoff_longitude=""),  # can't check
    )
    assert result.report.repaired["trip_miles_below_straight_line_to_missing"] == 1
    assert result.frame["trip_miles"].isna().tolist() == [True, False, False]


# -------------------------------------------------------- rule 14: meter ceiling


def test_fare_above_meter_ceiling_is_excluded() -> None:
    # $700.07 for a 10-minute trip (real row); 10 min at 80 mph is 13.3 mi -> ceiling ~$62.
    result = cleaned(trip(fare="700.07", trip_miles="0", trip_seconds="600"), n_ordinary=19)
    assert result.report.excluded["fare_above_meter_ceiling"] == 1
    assert result.report.n_output == 19


def test_expensive_fare_explained_by_miles_is_kept() -> None:
    # Recorded seconds contradict the miles, but 19.4 miles explain $38.45.
    result = cleaned(trip(fare="38.45", trip_miles="19.4", trip_seconds="180"))
    assert result.report.n_dropped == 0
    # Long trip with unknown duration: 6 h of time charge plus the miles.
    result = cleaned(trip(fare="120", trip_miles="45", trip_seconds=""))
    assert result.report.n_dropped == 0


def test_fare_ceiling_with_miles_and_unknown_seconds() -> None:
    # 2 miles and no duration: ceiling = 3.25 + 2.25*2 + 0.25*600 + 25 = 182.75.
    kept = cleaned(trip(fare="182", trip_miles="2", trip_seconds=""))
    dropped = cleaned(trip(fare="183.5", trip_miles="2", trip_seconds=""), n_ordinary=19)
    assert kept.report.n_dropped == 0
    assert dropped.report.excluded["fare_above_meter_ceiling"] == 1


# ------------------------------------------------------------------- rule 15: guards


def test_too_many_invalid_fares_raise_naming_fare() -> None:
    rows = [trip(fare="0") for _ in range(11)]
    with pytest.raises(DatasetError, match="'fare'"):
        cleaned(*rows, n_ordinary=89)


def test_nothing_left_raises() -> None:
    with pytest.raises(DatasetError, match="fare"):
        clean(frame())


# ----------------------------------------------------------------- report, idempotence


def test_report_adds_up_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    rows = [
        trip(fare="0"),
        trip(trip_miles="0", trip_seconds="0"),
        trip(trip_miles="150"),
        trip(trip_miles="0"),
    ]
    with caplog.at_level(logging.INFO, logger="chicagotaxi.data"):
        result = cleaned(*rows, n_ordinary=96)
    report = result.report
    assert report.n_input == 100
    assert report.n_output == len(result.frame) == 97
    assert report.n_input == report.n_output + report.n_dropped
    assert report.excluded == {
        "invalid_fare": 1,
        "no_trip_recorded": 1,
        "fare_above_meter_ceiling": 0,
    }
    assert report.dropped_fraction == pytest.approx(0.03)
    assert "100 rows in, 97 out" in report.summary()
    assert any("97 out" in m and "1 outliers" in m for m in caplog.messages)
    assert result.frame.index.equals(pd.RangeIndex(97))


def test_clean_does_not_modify_its_input() -> None:
    df = frame(trip(trip_miles="0", payment_type="cash"), trip())
    before = df.copy()
    clean(df)
    pd.testing.assert_frame_equal(df, before)


def test_clean_is_idempotent() -> None:
    once = clean(generate(2000, seed=3)).frame
    twice = clean(once)
    assert twice.report.n_dropped == 0
    pd.testing.assert_frame_equal(twice.frame, once)


# ---------------------------------------------------------------- realdata: load_csv


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
def test_clean_real_file_counts(real_csv: Path) -> None:
    result = clean(load_csv(real_csv))
    report = result.report
    assert report.outlier_fraction <= data.MAX_OUTLIER_FRACTION
    assert report.outliers == {
        "trip_miles_out_of_range": 7,
        "trip_seconds_out_of_range": 3,
        "trip_start_timestamp_missing": 0,
    }
    assert report.excluded == {
        "invalid_fare": 32,
        "no_trip_recorded": 328,
        "fare_above_meter_ceiling": 1,
    }
    assert report.repaired["trip_miles_zero_to_missing"] == 2939
    assert report.n_output == 11631
    out = result.frame
    assert out[TARGET].between(data.METER_FLAG_FALL, 200).all()
    assert (out["trip_miles"].dropna() > 0).all()
    assert (out["trip_miles"].dropna() <= data.MAX_MILES).all()
    assert (out["trip_seconds"].dropna() > 0).all()
    assert (out["trip_seconds"].dropna() <= data.MAX_SECONDS).all()
    lat = out["pickup_latitude"].dropna()
    assert lat.between(data.LAT_MIN, data.LAT_MAX).all()


@pytest.mark.realdata
def test_bounds_contain_every_real_coordinate(real_csv: Path) -> None:
    df = load_csv(real_csv)
    for end in ("pickup", "dropoff"):
        assert df[f"{end}_latitude"].dropna().between(data.LAT_MIN, data.LAT_MAX).all()
        assert df[f"{end}_longitude"].dropna().between(data.LON_MIN, data.LON_MAX).all()


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
    centroids = fake["pickup_community_area"].astype("int64").map(data._AREA_CENTROIDS)
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
