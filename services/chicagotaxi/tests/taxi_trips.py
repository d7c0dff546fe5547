"""Trips for the ChicagoTaxi data tests: one ordinary trip as the CSV holds it, frames of
them, and the shared real file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from chicagotaxi.cleaning import CleanResult, clean
from chicagotaxi.data import RAW_COLUMNS

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
