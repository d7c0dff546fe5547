"""Data layer of the chicagotaxi service: schema, loading, cleaning and a synthetic generator.

The model predicts the metered ``fare`` (USD) of a Chicago taxi trip from the fields of a
serving request (``FEATURES``). The training file has the 18 columns of ``RAW_COLUMNS``;
``tips``, the census tracts and the month/hour/day columns are not request fields (tips is
paid after the fare is known, the others are identifiers or are derived from the
timestamp) and never reach the model: ``clean`` keeps only ``FEATURES`` and ``TARGET``.

Timestamps
----------
``trip_start_timestamp`` in the file is Unix seconds that encode Chicago *wall-clock* time as
if it were UTC: in all 12,002 rows the UTC reading of the number equals the file's
``trip_start_hour``/``trip_start_day``/``trip_start_month``, and the true Chicago reading
matches none. ``parse_timestamp`` therefore returns that convention: numbers are taken as
they are, ISO 8601 strings with an offset are converted to America/Chicago wall-clock time,
naive ISO strings are taken as Chicago wall-clock time. Time features derived from the
result with UTC calendar arithmetic are local hour, day and month.

Cleaning rules (``clean``), applied in this order
-------------------------------------------------
Each rule is counted in the ``CleanReport`` under the key in brackets and logged (module
logger, INFO). Rows are counted under the first rule that removes them. Three kinds:
*repairs* change values and keep the row; *exclusions* remove rows whose fare is not a valid
training/evaluation target or that are not real trips (counted, no 2 % cap, but more than
``MAX_EXCLUDED_FRACTION`` means the file is broken and raises); *outliers* remove real trips
outside the serving domain and may never remove more than ``MAX_OUTLIER_FRACTION`` (2 %) of
the input rows in total, else ``DatasetError``.

1. Schema: every column of ``FEATURES`` and ``TARGET`` must exist, else ``DatasetError``
   naming the missing column(s). Other columns are ignored and not returned.
2. Blanks: strings are stripped; empty strings and the null tokens ``NA``, ``N/A``, ``NaN``,
   ``null``, ``None`` (any case) become missing.
3. Types: numeric columns are parsed to float (integer-coded columns such as community areas
   to nullable ``Int64``); a non-empty value that does not parse raises ``DatasetError``
   naming the column, because a single unparseable cell means a shifted or wrong file, not a
   bad trip. ``+/-inf`` becomes missing. Timestamps: see above; unparseable or outside
   2000-2099 raises ``DatasetError`` naming the column (catches milliseconds).
4. Coordinates [``coordinates_to_missing``, repair]: a pickup or dropoff lat/lon pair with one
   half missing or outside ``LAT_MIN..LAT_MAX`` x ``LON_MIN..LON_MAX`` is set missing as a
   pair: coordinates are optional request fields and the service rejects points outside the
   box, so the trip stays and only the unusable location is dropped.
5. Community areas [``community_area_to_missing``, repair]: values outside 1..77 become
   missing (optional request fields, same reasoning).
6. Payment type [``payment_type_missing_to_unknown``, ``payment_type_unseen_to_other``,
   repair]: case, spacing, ``_`` and ``-`` are normalised to the spelling in
   ``PAYMENT_TYPES``; missing becomes ``"Unknown"`` (the file's own value for it); a value
   never seen in training becomes ``"other"``, as the service does.
7. Company: internal whitespace is collapsed; a missing company stays missing (NaN), it is a
   third of the real file and "no company" is information the model may use.
8. Invalid fare [``invalid_fare``, exclusion]: fare missing or below the flag fall
   (``METER_FLAG_FALL``, $3.25). No metered trip costs less; these are voided or test
   records and are not a target the model should learn or be scored on.
9. No trip recorded [``no_trip_recorded``, exclusion]: ``trip_miles`` and ``trip_seconds``
   both zero or missing. The meter measured neither distance nor time (the fare is usually
   exactly the flag fall), and no serving request can look like this since both fields are
   required and > 0.
10. Outside the serving domain [``trip_miles_out_of_range``, ``trip_seconds_out_of_range``,
    ``trip_start_timestamp_missing``, outlier]: miles < 0 or > ``MAX_MILES``, seconds < 0
    or > ``MAX_SECONDS`` (6 h), or no timestamp. Dropped, capped at 2 % of rows in total.
11. Zero sentinels [``trip_miles_zero_to_missing``, ``trip_seconds_zero_to_missing``,
    repair]: a zero left after rule 9 becomes missing. Zero is the recording system's "not
    measured" value, not a measurement: 27 % of the real rows have 0 miles with a normal
    fare and duration. Dropping them would break the 2 % cap and discard real fares, so the
    value is marked missing and the model learns to predict from the other fields (the
    service itself never sends a zero).
12. Speed contradiction [``miles_seconds_inconsistent_to_missing``, repair]: if miles and
    seconds imply more than ``MAX_SPEED_MPH`` (80 mph), one of them is wrong (the real file
    has 22-mile trips in 9 minutes and 19-mile trips in 3) and nothing but the fare tells
    which, so both are set missing rather than using the target to decide.
13. Miles below straight line [``trip_miles_below_straight_line_to_missing``, repair]: a
    cab cannot drive less than the straight-line distance between pickup and dropoff;
    coordinates are tract/area centroids, so ``STRAIGHT_LINE_SLACK_MILES`` (2 mi) of slack is
    allowed. Below that, miles is under-recorded (the real file has O'Hare-Loop trips of 0.7
    miles with $30 fares) and set missing, so the model does not learn that short trips are
    expensive while the service is sent true miles.
14. Fare above the meter ceiling [``fare_above_meter_ceiling``, exclusion]: fare above
    flag fall + per-mile rate x the largest distance the request allows (recorded miles, or
    ``MAX_SPEED_MPH`` x duration, at most ``MAX_MILES``) + per-36 s rate x duration (6 h if
    unknown) + ``FARE_EXTRAS_ALLOWANCE``. No request field can explain such a fare (e.g.
    $700.07 for a 10-minute trip); it is a data-entry error, not a target.
15. Guards: if exclusions remove more than ``MAX_EXCLUDED_FRACTION`` of the rows, or no row
    is left, ``DatasetError`` naming ``fare``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from servekit.datasets import DatasetError

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- schema

TARGET: Final = "fare"
TIMESTAMP_FIELD: Final = "trip_start_timestamp"

#: Request fields that are plain numbers.
NUMERIC_FIELDS: Final[tuple[str, ...]] = (
    "trip_miles",
    "trip_seconds",
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
)
#: Request fields that are categories. Community areas are integer codes 1-77 (``Int64``
#: after cleaning): their numeric order carries only rough north-south geography.
CATEGORICAL_FIELDS: Final[tuple[str, ...]] = (
    "pickup_community_area",
    "dropoff_community_area",
    "payment_type",
    "company",
)
#: All request fields, i.e. every column the model may derive features from.
FEATURES: Final[tuple[str, ...]] = (TIMESTAMP_FIELD, *NUMERIC_FIELDS, *CATEGORICAL_FIELDS)
#: Request fields the service requires; the others are optional (missing allowed).
REQUIRED_FIELDS: Final[tuple[str, ...]] = (
    TIMESTAMP_FIELD,
    "trip_miles",
    "trip_seconds",
    "payment_type",
)

#: The columns of the training file, in file order.
RAW_COLUMNS: Final[tuple[str, ...]] = (
    "pickup_community_area",
    "fare",
    "trip_start_month",
    "trip_start_hour",
    "trip_start_day",
    "trip_start_timestamp",
    "pickup_latitude",
    "pickup_longitude",
    "dropoff_latitude",
    "dropoff_longitude",
    "trip_miles",
    "pickup_census_tract",
    "dropoff_census_tract",
    "payment_type",
    "company",
    "trip_seconds",
    "dropoff_community_area",
    "tips",
)
#: File columns that are not request fields: identifiers, a post-fare amount, and
#: calendar columns that duplicate the timestamp.
NON_FEATURE_COLUMNS: Final[tuple[str, ...]] = tuple(
    c for c in RAW_COLUMNS if c not in FEATURES and c != TARGET
)

_FLOAT_COLUMNS: Final = frozenset(
    {"fare", "tips", "trip_miles", "trip_seconds"}
    | {f"{end}_{axis}" for end in ("pickup", "dropoff") for axis in ("latitude", "longitude")}
)
_INT_COLUMNS: Final = frozenset(
    {
        "pickup_community_area",
        "dropoff_community_area",
        "trip_start_month",
        "trip_start_hour",
        "trip_start_day",
        "pickup_census_tract",
        "dropoff_census_tract",
    }
)
_STRING_COLUMNS: Final = frozenset({"payment_type", "company"})

# ------------------------------------------------------------------ serving domain

#: Bounding box for coordinates: the real file's extremes (lat 41.664-42.016,
#: lon -87.914..-87.541) rounded outwards; it also covers the city limits
#: (41.645-42.023, -87.940..-87.524), so every community area fits.
LAT_MIN: Final = 41.64
LAT_MAX: Final = 42.03
LON_MIN: Final = -87.95
LON_MAX: Final = -87.52
AREA_MIN: Final = 1
AREA_MAX: Final = 77
MAX_MILES: Final = 100.0
MAX_SECONDS: Final = 21600.0

#: Payment types of the real file, then the bucket for values never seen in training.
SEEN_PAYMENT_TYPES: Final[tuple[str, ...]] = (
    "Cash",
    "Credit Card",
    "No Charge",
    "Unknown",
    "Dispute",
    "Pcard",
)
OTHER_PAYMENT_TYPE: Final = "other"
MISSING_PAYMENT_TYPE: Final = "Unknown"
PAYMENT_TYPES: Final[tuple[str, ...]] = (*SEEN_PAYMENT_TYPES, OTHER_PAYMENT_TYPE)

#: Chicago meter (flag fall, per mile, per 36 seconds), used by the generator and, as an
#: upper bound, by rule 14. The 2013-2016 file was metered at the lower 2012 per-mile rate,
#: so these are generous for it.
METER_FLAG_FALL: Final = 3.25
METER_PER_MILE: Final = 2.25
METER_PER_36_SECONDS: Final = 0.25
#: Extras a fare may carry on top of the meter (extra passengers, airport fee, tolls).
FARE_EXTRAS_ALLOWANCE: Final = 25.0
#: Highest plausible average speed of a city cab trip; above it miles or seconds is wrong.
MAX_SPEED_MPH: Final = 80.0
#: Tolerance of rule 13 for coordinates being centroids rather than exact points.
STRAIGHT_LINE_SLACK_MILES: Final = 2.0

MAX_OUTLIER_FRACTION: Final = 0.02
MAX_EXCLUDED_FRACTION: Final = 0.10

TIMEZONE: Final = "America/Chicago"
#: Accepted timestamp range (2000-01-01 .. 2100-01-01): outside it the unit is wrong.
MIN_TIMESTAMP: Final = 946_684_800
MAX_TIMESTAMP: Final = 4_102_444_800

_NULL_TOKENS: Final = frozenset({"", "na", "n/a", "nan", "null", "none"})
_EPOCH: Final = datetime(1970, 1, 1)
_EARTH_RADIUS_MILES: Final = 3958.8


# --------------------------------------------------------------------- scalar helpers


def normalise_payment_type(value: object) -> str:
    """Map a raw payment type to one of ``PAYMENT_TYPES`` (missing -> "Unknown")."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return MISSING_PAYMENT_TYPE
    key = _payment_key(str(value))
    if key in _NULL_TOKENS:
        return MISSING_PAYMENT_TYPE
    return _PAYMENT_BY_KEY.get(key, OTHER_PAYMENT_TYPE)


def _payment_key(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").split()).casefold()


_PAYMENT_BY_KEY: Final[dict[str, str]] = {_payment_key(p): p for p in SEEN_PAYMENT_TYPES}


def parse_timestamp(value: object, column: str = TIMESTAMP_FIELD) -> int:
    """Unix seconds or ISO 8601 -> Chicago wall-clock epoch seconds (see module docstring).

    Raises ``DatasetError`` naming ``column`` for anything else.
    """
    seconds: float
    if isinstance(value, bool):
        raise DatasetError(f"column {column!r}: {value!r} is not a timestamp")
    if isinstance(value, int | float | np.integer | np.floating):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _iso_to_wallclock_seconds(text, column)
    else:
        raise DatasetError(f"column {column!r}: {value!r} is not a timestamp")
    if not math.isfinite(seconds) or not MIN_TIMESTAMP <= seconds < MAX_TIMESTAMP:
        raise DatasetError(
            f"column {column!r}: {value!r} is not Unix seconds between 2000 and 2100 (milliseconds?)"
        )
    return math.floor(seconds)


def _iso_to_wallclock_seconds(text: str, column: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise DatasetError(f"column {column!r}: {text!r} is neither Unix seconds nor ISO 8601") from exc
    if moment.tzinfo is not None:
        # An explicit offset is an instant: express it as Chicago wall-clock time, the
        # convention of the training file.
        moment = moment.astimezone(ZoneInfo(TIMEZONE)).replace(tzinfo=None)
    return (moment - _EPOCH) / timedelta(seconds=1)


# --------------------------------------------------------------------- column coercion


def _blank_to_missing(values: pd.Series[Any]) -> pd.Series[Any]:
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        return values

    def fix(v: object) -> object:
        if isinstance(v, str):
            stripped = v.strip()
            return np.nan if stripped.casefold() in _NULL_TOKENS else stripped
        return v

    return values.astype(object).map(fix)


def _to_float(values: pd.Series[Any], column: str) -> pd.Series[float]:
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        result = values.astype("float64")
    else:
        result = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = values.notna() & result.isna()
        if bad.any():
            example = values[bad].iloc[0]
            raise DatasetError(f"column {column!r}: {int(bad.sum())} non-numeric value(s), e.g. {example!r}")
    # inf cannot be a measurement; treating it as missing lets the row rules handle it.
    return result.where(np.isfinite(result.to_numpy()))


def _to_int(values: pd.Series[Any], column: str) -> pd.Series[Any]:
    floats = _to_float(values, column)
    fractional = floats.notna() & (floats != floats.round())
    if fractional.any():
        example = floats[fractional].iloc[0]
        raise DatasetError(
            f"column {column!r}: {int(fractional.sum())} non-integer value(s), e.g. {example!r}"
        )
    return floats.astype("Int64")


def parse_timestamps(values: pd.Series[Any], column: str = TIMESTAMP_FIELD) -> pd.Series[Any]:
    """Vectorised ``parse_timestamp``; missing stays missing (``Int64``)."""
    values = _blank_to_missing(values)
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        needs_iso = values.notna() & numbers.isna()
        # Positional, so that duplicate index labels cannot mix rows up.
        for position in np.flatnonzero(needs_iso.to_numpy()).tolist():
            numbers.iloc[position] = float(parse_timestamp(values.iloc[position], column))
    # Like the float columns: a non-finite number is a missing value, not a timestamp.
    numbers = numbers.where(np.isfinite(numbers.to_numpy()))
    present = numbers.notna()
    outside = present & ((numbers < MIN_TIMESTAMP) | (numbers >= MAX_TIMESTAMP))
    if outside.any():
        parse_timestamp(numbers[outside].iloc[0], column)  # raises with the standard message
    return numbers.floordiv(1).astype("Int64")


def coerce_types(df: pd.DataFrame) -> pd.DataFrame:
    """Rules 2-3: blanks to missing and every known column to its type (copy).

    Floats are ``float64``, integer codes ``Int64``, the timestamp ``Int64`` epoch seconds
    (see ``parse_timestamp``), payment type and company pandas ``str`` with NaN for missing.
    Unknown columns are returned unchanged. Raises ``DatasetError`` naming the column.
    """
    out = df.copy()
    for column in out.columns:
        name = str(column)
        if name in _FLOAT_COLUMNS:
            out[name] = _to_float(_blank_to_missing(out[name]), name)
        elif name in _INT_COLUMNS:
            out[name] = _to_int(_blank_to_missing(out[name]), name)
        elif name == TIMESTAMP_FIELD:
            out[name] = parse_timestamps(out[name], name)
        elif name in _STRING_COLUMNS:
            out[name] = _blank_to_missing(out[name]).astype("str")
    return out


def _require_columns(df: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(f"missing required column(s): {', '.join(map(repr, missing))}")


def load_csv(path: str | Path) -> pd.DataFrame:
    """Read a file with the real schema and coerce its types (no rows are removed).

    Every value is read as text first so that blanks and unparseable cells are seen (pandas'
    own NA guessing would hide them). Raises ``DatasetError`` for a missing request field
    or target column and for unparseable values; ``FileNotFoundError`` passes through.
    """
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise DatasetError(f"{path}: empty file, no columns") from exc
    _require_columns(raw, (*FEATURES, TARGET))
    return coerce_types(raw)


# --------------------------------------------------------------------------- cleaning


@dataclass(frozen=True)
class CleanReport:
    """What ``clean`` did: rows removed per rule (exclusions, outliers), values repaired."""

    n_input: int
    n_output: int
    excluded: dict[str, int] = field(default_factory=dict)
    outliers: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)

    @property
    def n_excluded(self) -> int:
        return sum(self.excluded.values())

    @property
    def n_outliers(self) -> int:
        return sum(self.outliers.values())

    @property
    def n_dropped(self) -> int:
        return self.n_excluded + self.n_outliers

    @property
    def dropped_fraction(self) -> float:
        return self.n_dropped / self.n_input if self.n_input else 0.0

    @property
    def outlier_fraction(self) -> float:
        return self.n_outliers / self.n_input if self.n_input else 0.0

    def summary(self) -> str:
        parts = [f"{self.n_input} rows in, {self.n_output} out"]
        for kind, counts in (
            ("excluded", self.excluded),
            ("outlier", self.outliers),
            ("repaired", self.repaired),
        ):
            parts += [f"{kind} {rule}={n}" for rule, n in counts.items()]
        return "; ".join(parts)


@dataclass(frozen=True)
class CleanResult:
    """The cleaned frame (``FEATURES`` + ``TARGET``, fresh index) and its report."""

    frame: pd.DataFrame
    report: CleanReport


def _haversine_miles(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance in miles; NaN where a coordinate is missing."""
    phi1 = np.radians(np.asarray(lat1, dtype=np.float64))
    phi2 = np.radians(np.asarray(lat2, dtype=np.float64))
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1)) / 2
    h = np.sin(half_dphi) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(half_dlambda) ** 2
    distance: npt.NDArray[np.float64] = 2 * _EARTH_RADIUS_MILES * np.arcsin(np.sqrt(h))
    return distance


_OUTLIER_RULE_COLUMNS: Final[dict[str, str]] = {
    "trip_miles_out_of_range": "trip_miles",
    "trip_seconds_out_of_range": "trip_seconds",
    "trip_start_timestamp_missing": TIMESTAMP_FIELD,
}


def _pct(n: int, total: int) -> float:
    return 100.0 * n / total if total else 0.0


def clean(df: pd.DataFrame) -> CleanResult:
    """Apply the numbered cleaning rules of the module docstring; returns frame + report.

    Accepts raw text (as read from CSV) or already typed frames; the input is not changed.
    """
    _require_columns(df, (*FEATURES, TARGET))  # rule 1
    # Rules 2-3. A fresh index keeps the boolean masks below aligned whatever the input's.
    frame = coerce_types(df.loc[:, [*FEATURES, TARGET]]).reset_index(drop=True)
    n_input = len(frame)
    repaired: dict[str, int] = {}
    excluded: dict[str, int] = {}
    outliers: dict[str, int] = {}

    # Rule 4: unusable coordinates become missing, as a pair.
    n_coords = 0
    for end in ("pickup", "dropoff"):
        lat, lon = frame[f"{end}_latitude"], frame[f"{end}_longitude"]
        usable = lat.between(LAT_MIN, LAT_MAX) & lon.between(LON_MIN, LON_MAX)
        unusable = ~usable & (lat.notna() | lon.notna())
        n_coords += int(unusable.sum())
        frame.loc[~usable, [f"{end}_latitude", f"{end}_longitude"]] = np.nan
    repaired["coordinates_to_missing"] = n_coords

    # Rule 5: community areas outside 1..77 become missing.
    n_areas = 0
    for column in ("pickup_community_area", "dropoff_community_area"):
        area = frame[column]
        bad_area = area.notna() & ~area.between(AREA_MIN, AREA_MAX)
        n_areas += int(bad_area.sum())
        frame[column] = area.mask(bad_area)
    repaired["community_area_to_missing"] = n_areas

    # Rule 6: payment types.
    payment = frame["payment_type"]
    normalised = payment.map(normalise_payment_type).astype("str")
    repaired["payment_type_missing_to_unknown"] = int(payment.isna().sum())
    repaired["payment_type_unseen_to_other"] = int(
        (payment.notna() & (normalised == OTHER_PAYMENT_TYPE)).sum()
    )
    frame["payment_type"] = normalised

    # Rule 7: company spacing; missing stays missing.
    company = frame["company"]
    frame["company"] = company.str.replace(r"\s+", " ", regex=True)

    keep = pd.Series(True, index=frame.index)

    def remove(counts: dict[str, int], rule: str, mask: pd.Series[bool]) -> None:
        nonlocal keep
        counts[rule] = int((mask & keep).sum())
        keep = keep & ~mask

    fare = frame[TARGET]
    miles = frame["trip_miles"]
    seconds = frame["trip_seconds"]
    # Rule 8: not a valid fare.
    remove(excluded, "invalid_fare", fare.isna() | (fare < METER_FLAG_FALL))
    # Rule 9: the meter recorded neither distance nor time.
    no_miles = miles.isna() | (miles == 0)
    no_seconds = seconds.isna() | (seconds == 0)
    remove(excluded, "no_trip_recorded", no_miles & no_seconds)
    # Rule 10: outside the serving domain (real trips, so capped).
    remove(outliers, "trip_miles_out_of_range", (miles < 0) | (miles > MAX_MILES))
    remove(outliers, "trip_seconds_out_of_range", (seconds < 0) | (seconds > MAX_SECONDS))
    remove(outliers, "trip_start_timestamp_missing", frame[TIMESTAMP_FIELD].isna())
    n_outliers = sum(outliers.values())
    if n_input and n_outliers / n_input > MAX_OUTLIER_FRACTION:
        detail = ", ".join(
            f"column {_OUTLIER_RULE_COLUMNS[rule]!r}: {n} ({rule})" for rule, n in outliers.items() if n
        )
        raise DatasetError(
            f"outlier rules would drop {n_outliers} of {n_input} rows "
            f"({_pct(n_outliers, n_input):.1f}% > {MAX_OUTLIER_FRACTION:.0%}): {detail}; "
            "refusing to drop that many real trips: check the column's unit or repair it"
        )
    frame = frame.loc[keep].copy()
    keep = keep.loc[keep]

    # Rule 11: zero is "not measured".
    for column in ("trip_miles", "trip_seconds"):
        zero = frame[column] == 0
        repaired[f"{column}_zero_to_missing"] = int(zero.sum())
        frame[column] = frame[column].mask(zero)

    # Rule 12: contradictory miles/seconds pairs.
    speed_mph = frame["trip_miles"] / (frame["trip_seconds"] / 3600.0)
    too_fast = speed_mph > MAX_SPEED_MPH
    repaired["miles_seconds_inconsistent_to_missing"] = int(too_fast.sum())
    frame.loc[too_fast, ["trip_miles", "trip_seconds"]] = np.nan

    # Rule 13: miles shorter than the straight line between the (centroid) endpoints.
    straight = pd.Series(
        _haversine_miles(
            frame["pickup_latitude"],
            frame["pickup_longitude"],
            frame["dropoff_latitude"],
            frame["dropoff_longitude"],
        ),
        index=frame.index,
    )
    too_short = frame["trip_miles"] < straight - STRAIGHT_LINE_SLACK_MILES
    repaired["trip_miles_below_straight_line_to_missing"] = int(too_short.sum())
    frame["trip_miles"] = frame["trip_miles"].mask(too_short)

    # Rule 14: fare no request field can explain.
    miles, seconds = frame["trip_miles"], frame["trip_seconds"]
    duration = seconds.fillna(MAX_SECONDS)
    reachable = np.minimum(MAX_MILES, MAX_SPEED_MPH * duration / 3600.0)
    distance = miles.where(seconds.isna(), np.maximum(miles.fillna(0.0), reachable))
    distance = distance.fillna(MAX_MILES)
    ceiling = (
        METER_FLAG_FALL
        + METER_PER_MILE * distance
        + METER_PER_36_SECONDS * duration / 36.0
        + FARE_EXTRAS_ALLOWANCE
    )
    remove(excluded, "fare_above_meter_ceiling", frame[TARGET] > ceiling)
    frame = frame.loc[keep]

    # Rule 15: guards.
    n_excluded = sum(excluded.values())
    if n_input and n_excluded / n_input > MAX_EXCLUDED_FRACTION:
        raise DatasetError(
            f"column {TARGET!r}: {n_excluded} of {n_input} rows "
            f"({_pct(n_excluded, n_input):.1f}%) are not valid trips/fares "
            f"(> {MAX_EXCLUDED_FRACTION:.0%}): {excluded}"
        )
    if frame.empty:
        raise DatasetError(f"column {TARGET!r}: no row with a valid fare left after cleaning")

    report = CleanReport(
        n_input=n_input,
        n_output=len(frame),
        excluded=excluded,
        outliers=outliers,
        repaired=repaired,
    )
    _log_report(report)
    return CleanResult(frame=frame.reset_index(drop=True), report=report)


def _log_report(report: CleanReport) -> None:
    n = report.n_input
    for kind, counts in (
        ("excluded (invalid target / not a trip)", report.excluded),
        ("dropped as outlier", report.outliers),
        ("repaired (values set missing/normalised, rows kept)", report.repaired),
    ):
        for rule, count in counts.items():
            logger.info("clean: %s: %s: %d rows (%.2f%%)", rule, kind, count, _pct(count, n))
    logger.info(
        "clean: %d rows in, %d out: %d excluded, %d outliers (%.2f%%, cap %.0f%%)",
        n,
        report.n_output,
        report.n_excluded,
        report.n_outliers,
        100 * report.outlier_fraction,
        100 * MAX_OUTLIER_FRACTION,
    )


# -------------------------------------------------------------------------- generator

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
    distance = _haversine_miles(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
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
    year_start = np.array(
        [(datetime(int(y), 1, 1) - _EPOCH) // timedelta(seconds=1) for y in years],
        dtype=np.int64,
    )
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
    straight = _haversine_miles(p_lat, p_lon, d_lat, d_lon)

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
