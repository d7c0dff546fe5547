"""Deterministic synthetic trips with the real file's schema: the service's default data."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from chicagotaxi.data import (
    LAT_MAX,
    LAT_MIN,
    LON_MAX,
    LON_MIN,
    METER_FLAG_FALL,
    METER_PER_36_SECONDS,
    METER_PER_MILE,
    RAW_COLUMNS,
    coerce_types,
    haversine_miles,
)

# Community-area centroids (lat, lon). Areas seen in the real file: median of its
# (tract-centroid) coordinates; 47-49, 52-54 and 62 never appear there and are placed
# from the city map.
_AREA_CENTROIDS: Final[dict[int, tuple[float, float]]] = {
    1: (42.010, -87.670), 2: (42.002, -87.695), 3: (41.966, -87.656), 4: (41.975, -87.688),
    5: (41.948, -87.684), 6: (41.944, -87.656), 7: (41.923, -87.649), 8: (41.893, -87.629),
    9: (42.008, -87.814), 10: (41.985, -87.805), 11: (41.979, -87.771), 12: (41.994, -87.758),
    13: (41.984, -87.724), 14: (41.968, -87.722), 15: (41.954, -87.763), 16: (41.954, -87.723),
    17: (41.947, -87.806), 18: (41.929, -87.798), 19: (41.927, -87.766), 20: (41.924, -87.735),
    21: (41.939, -87.711), 22: (41.923, -87.699), 23: (41.900, -87.721), 24: (41.901, -87.676),
    25: (41.891, -87.756), 26: (41.879, -87.730), 27: (41.879, -87.706), 28: (41.879, -87.643),
    29: (41.860, -87.717), 30: (41.839, -87.714), 31: (41.850, -87.668), 32: (41.881, -87.625),
    33: (41.859, -87.617), 34: (41.842, -87.634), 35: (41.835, -87.619), 36: (41.824, -87.602),
    37: (41.809, -87.632), 38: (41.813, -87.618), 39: (41.809, -87.596), 40: (41.792, -87.618),
    41: (41.794, -87.592), 42: (41.779, -87.595), 43: (41.762, -87.573), 44: (41.740, -87.616),
    45: (41.744, -87.586), 46: (41.741, -87.551), 47: (41.728, -87.597), 48: (41.729, -87.579),
    49: (41.709, -87.627), 50: (41.706, -87.598), 51: (41.691, -87.570), 52: (41.708, -87.534),
    53: (41.677, -87.638), 54: (41.660, -87.609), 55: (41.664, -87.541), 56: (41.786, -87.751),
    57: (41.811, -87.726), 58: (41.817, -87.699), 59: (41.834, -87.681), 60: (41.836, -87.649),
    61: (41.809, -87.659), 62: (41.794, -87.724), 63: (41.795, -87.696), 64: (41.780, -87.769),
    65: (41.770, -87.727), 66: (41.772, -87.696), 67: (41.776, -87.667), 68: (41.777, -87.642),
    69: (41.763, -87.616), 70: (41.746, -87.708), 71: (41.744, -87.656), 72: (41.713, -87.675),
    73: (41.717, -87.649), 74: (41.695, -87.713), 75: (41.690, -87.669), 76: (41.979, -87.903),
    77: (41.987, -87.663),
}  # fmt: skip

# Shares of the busiest areas in the real file; the rest is spread evenly over the others.
_PICKUP_AREA_SHARES: Final[dict[int, float]] = {
    8: 0.327, 32: 0.221, 28: 0.085, 6: 0.080, 7: 0.060, 76: 0.059, 24: 0.041, 33: 0.020,
    3: 0.018, 56: 0.017, 22: 0.012, 77: 0.011,
}  # fmt: skip
_DROPOFF_AREA_SHARES: Final[dict[int, float]] = {
    8: 0.294, 32: 0.190, 28: 0.099, 6: 0.077, 7: 0.071, 24: 0.052, 76: 0.036, 33: 0.029,
    3: 0.022, 22: 0.021, 77: 0.012, 56: 0.012,
}  # fmt: skip
_PAYMENT_SHARES: Final[dict[str, float]] = {
    "Cash": 0.659,
    "Credit Card": 0.3331,
    "No Charge": 0.0056,
    "Unknown": 0.0017,
    "Dispute": 0.0003,
    "Pcard": 0.0002,
}
# None = missing, as in a third of the real rows.
_COMPANY_SHARES: Final[dict[str | None, float]] = {
    None: 0.342,
    "Taxi Affiliation Services": 0.345,
    "Dispatch Taxi Affiliation": 0.111,
    "Blue Ribbon Taxi Association Inc.": 0.072,
    "Choice Taxi Association": 0.058,
    "Northwest Management LLC": 0.037,
    "KOAM Taxi Association": 0.016,
    "Top Cab Affiliation": 0.009,
    "Chicago Medallion Leasing INC": 0.002,
    "Chicago Elite Cab Corp.": 0.002,
    "Chicago Medallion Management": 0.002,
}
_N_OWNER_OPERATORS: Final = 40  # long tail of one-cab companies
_YEAR_SHARES: Final[dict[int, float]] = {2013: 0.291, 2014: 0.346, 2015: 0.307, 2016: 0.056}
# Trip starts per hour of day (local), from the real file.
_HOUR_SHARES: Final[tuple[float, ...]] = (
    0.041, 0.037, 0.029, 0.020, 0.014, 0.009, 0.012, 0.020, 0.035, 0.045, 0.047, 0.042,
    0.049, 0.046, 0.049, 0.048, 0.051, 0.054, 0.062, 0.065, 0.065, 0.055, 0.058, 0.047,
)  # fmt: skip

# Rates of the real file's defects the generator reproduces, so clean() has work to do:
# repaired ones are common like in the real file, dropped ones are kept small because the
# generated file must lose at most 2 % of its rows.
_P_DROPOFF_MISSING: Final = 0.033
_P_DROPOFF_TRACT_MISSING: Final = 0.26
_P_ZERO_MILES: Final = 0.05
_P_ZERO_SECONDS: Final = 0.01
_P_NO_TRIP: Final = 0.004
_P_ZERO_FARE: Final = 0.002
_P_MILES_OUTLIER: Final = 0.001
_P_SECONDS_OUTLIER: Final = 0.0005
_P_EXTRAS: Final = 0.08
_FARE_NOISE_SD: Final = 0.25
_COORD_JITTER_DEG: Final = 0.006
_TRIP_LENGTH_SCALE_MILES: Final = 1.5


def _choice(rng: np.random.Generator, shares: dict[Any, float], n: int) -> list[Any]:
    keys = list(shares)
    p = np.array(list(shares.values()), dtype=float)
    picked = rng.choice(len(keys), size=n, p=p / p.sum())
    return [keys[i] for i in picked]


def _area_shares(shares: dict[int, float]) -> npt.NDArray[np.float64]:
    """Shares of areas 1..77: the listed ones, the rest spread evenly."""
    rest = [a for a in _AREA_CENTROIDS if a not in shares]
    left = max(0.0, 1.0 - sum(shares.values()))
    full = np.array([shares.get(a, left / len(rest)) for a in range(1, 78)], dtype=np.float64)
    normalised: npt.NDArray[np.float64] = full / full.sum()
    return normalised


def _dropoff_areas(rng: np.random.Generator, pickup: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Dropoff areas by a gravity model: popular and near areas are likelier.

    Independent draws would make most trips cross-city; real trips are mostly short.
    """
    lat, lon = np.array([_AREA_CENTROIDS[a] for a in range(1, 78)], dtype=np.float64).T
    distance = haversine_miles(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    weights = _area_shares(_DROPOFF_AREA_SHARES)[None, :] * np.exp(-distance / _TRIP_LENGTH_SCALE_MILES)
    cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    # Inverse-CDF sampling, one row of the matrix per trip.
    picked = (rng.random(len(pickup))[:, None] > cdf[pickup - 1]).sum(axis=1)
    areas: npt.NDArray[np.int64] = np.minimum(picked, 76).astype(np.int64) + 1
    return areas


def generate(n_rows: int = 10000, seed: int = 0) -> pd.DataFrame:
    """Deterministic synthetic trips with the real file's 18 columns and dtypes.

    Timestamps 2013-2016 with the real hour-of-day profile (Chicago wall clock, 15-minute
    steps, same epoch convention as the file); community areas with the real shares and
    coordinates near their centroids; miles from the centroid distance times a detour
    factor; seconds from a lognormal speed that is slower at rush hour; fare = $3.25 +
    $2.25/mile + $0.25 per 36 s + noise (+$1-2 extras on 8 % of trips), in 5-cent steps;
    tips on card payments. A few percent of the real file's defects are reproduced (zero
    miles/seconds, missing dropoff, a handful of zero fares and outliers); ``clean`` drops
    under 1 % of the rows.
    """
    if n_rows < 1:
        raise ValueError(f"n_rows must be >= 1, got {n_rows}")
    rng = np.random.default_rng(seed)
    n = n_rows

    # Time: year, day in year, hour by profile, quarter hour; Chicago wall clock as epoch.
    years = np.array(_choice(rng, _YEAR_SHARES, n), dtype=np.int64)
    year_start = (years - 1970).astype("datetime64[Y]").astype("datetime64[s]").astype(np.int64)
    days_in_year = np.where(years % 4 == 0, 366, 365)
    day = np.floor(rng.random(n) * days_in_year).astype(np.int64)
    hour = np.array(_choice(rng, dict(enumerate(_HOUR_SHARES)), n), dtype=np.int64)
    quarter = rng.integers(0, 4, size=n)
    timestamp = year_start + day * 86400 + hour * 3600 + quarter * 900
    moments = pd.to_datetime(timestamp, unit="s")

    # Places.
    pickup_area = rng.choice(np.arange(1, 78), size=n, p=_area_shares(_PICKUP_AREA_SHARES))
    dropoff_area = _dropoff_areas(rng, pickup_area)
    centroids = np.array([_AREA_CENTROIDS[a] for a in range(1, 78)])

    def place(areas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        base = centroids[areas - 1]
        lat = base[:, 0] + rng.normal(0.0, _COORD_JITTER_DEG, n)
        lon = base[:, 1] + rng.normal(0.0, _COORD_JITTER_DEG, n)
        return np.clip(lat, LAT_MIN, LAT_MAX), np.clip(lon, LON_MIN, LON_MAX)

    p_lat, p_lon = place(pickup_area)
    d_lat, d_lon = place(dropoff_area)
    straight = haversine_miles(p_lat, p_lon, d_lat, d_lon)

    # Distance, duration, fare.
    detour = rng.uniform(1.15, 1.45, n)
    local_leg = rng.lognormal(np.log(0.5), 0.7, n)  # within-area driving
    true_miles = np.clip(straight * detour + local_leg, 0.1, 60.0)
    rush = np.isin(hour, (7, 8, 9, 16, 17, 18))
    night = hour <= 5
    speed = rng.lognormal(np.log(12.0), 0.35, n) * np.where(rush, 0.8, np.where(night, 1.3, 1.0))
    speed = np.clip(speed, 3.0, 45.0)
    true_seconds = np.maximum(60.0, true_miles / speed * 3600.0)
    extras = np.where(rng.random(n) < _P_EXTRAS, rng.choice([1.0, 2.0], size=n), 0.0)
    fare = (
        METER_FLAG_FALL
        + METER_PER_MILE * true_miles
        + METER_PER_36_SECONDS * true_seconds / 36.0
        + rng.normal(0.0, _FARE_NOISE_SD, n)
        + extras
    )
    fare = np.maximum(METER_FLAG_FALL, np.round(fare * 20) / 20)
    # The public data rounds miles to 0.1 and seconds to the minute.
    miles = np.round(true_miles, 1)
    seconds = np.round(true_seconds / 60.0) * 60.0

    payment = np.array(_choice(rng, _PAYMENT_SHARES, n), dtype=object)
    owner_operators = {
        f"{1000 + 37 * i:04d} - {20000 + 611 * i:05d} Owner Operator": 0.006 / _N_OWNER_OPERATORS
        for i in range(_N_OWNER_OPERATORS)
    }
    company = np.array(_choice(rng, {**_COMPANY_SHARES, **owner_operators}, n), dtype=object)
    card = payment == "Credit Card"
    tip_share = rng.uniform(0.15, 0.25, n) * (rng.random(n) > 0.1)
    tips = np.where(card, np.round(fare * tip_share, 2), 0.0)

    # Defects of the real file.
    u = rng.random(n)
    zero_miles = u < _P_ZERO_MILES
    zero_seconds = (u >= _P_ZERO_MILES) & (u < _P_ZERO_MILES + _P_ZERO_SECONDS)
    v = rng.random(n)
    no_trip = v < _P_NO_TRIP
    zero_fare = (v >= _P_NO_TRIP) & (v < _P_NO_TRIP + _P_ZERO_FARE)
    w = rng.random(n)
    miles_outlier = w < _P_MILES_OUTLIER
    seconds_outlier = (w >= _P_MILES_OUTLIER) & (w < _P_MILES_OUTLIER + _P_SECONDS_OUTLIER)
    miles = np.where(zero_miles | no_trip, 0.0, miles)
    seconds = np.where(zero_seconds | no_trip, 0.0, seconds)
    fare = np.where(no_trip, METER_FLAG_FALL, np.where(zero_fare, 0.0, fare))
    miles = np.where(miles_outlier, np.round(rng.uniform(150.0, 1700.0, n), 1), miles)
    seconds = np.where(seconds_outlier, np.round(rng.uniform(25000.0, 72000.0, n), -1), seconds)

    dropoff_missing = rng.random(n) < _P_DROPOFF_MISSING
    d_lat = np.where(dropoff_missing, np.nan, d_lat)
    d_lon = np.where(dropoff_missing, np.nan, d_lon)
    dropoff_area_col = np.where(dropoff_missing, np.nan, dropoff_area.astype(float))
    # Tract ids look like the real ones: 17031 + area-based six-digit tract code.
    tract = 17031_000000 + (dropoff_area * 100 + rng.integers(0, 100, n)) * 100
    tract_missing = dropoff_missing | (rng.random(n) < _P_DROPOFF_TRACT_MISSING)
    dropoff_tract = np.where(tract_missing, np.nan, tract.astype(float))

    frame = pd.DataFrame(
        {
            "pickup_community_area": pickup_area.astype(float),
            "fare": fare,
            "trip_start_month": moments.month.to_numpy(),
            "trip_start_hour": moments.hour.to_numpy(),
            # The file's day of week runs 1 = Sunday .. 7 = Saturday.
            "trip_start_day": (moments.day_of_week.to_numpy() + 1) % 7 + 1,
            "trip_start_timestamp": timestamp,
            "pickup_latitude": np.round(p_lat, 9),
            "pickup_longitude": np.round(p_lon, 9),
            "dropoff_latitude": np.round(d_lat, 9),
            "dropoff_longitude": np.round(d_lon, 9),
            "trip_miles": miles,
            "pickup_census_tract": np.full(n, np.nan),  # empty in the real file too
            "dropoff_census_tract": dropoff_tract,
            "payment_type": payment,
            "company": company,
            "trip_seconds": seconds,
            "dropoff_community_area": dropoff_area_col,
            "tips": tips,
        },
        columns=list(RAW_COLUMNS),
    )
    return coerce_types(frame)
