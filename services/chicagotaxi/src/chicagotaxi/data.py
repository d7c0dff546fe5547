"""The chicagotaxi service's data: its schema, the serving domain, and reading the file.

The model predicts the metered ``fare`` (USD) of a Chicago taxi trip from the fields of a
serving request (``FEATURES``). The training file has the 18 columns of ``RAW_COLUMNS``;
``tips``, the census tracts and the month/hour/day columns are not request fields (tips is
paid after the fare is known, the others are identifiers or are derived from the
timestamp) and never reach the model: ``cleaning.clean`` keeps only ``FEATURES`` and
``TARGET``. The synthetic default data with the same schema is ``synthetic.generate``.

Timestamps
----------
``trip_start_timestamp`` in the file is Unix seconds that encode Chicago *wall-clock* time as
if it were UTC: in all 12,002 rows the UTC reading of the number equals the file's
``trip_start_hour``/``trip_start_day``/``trip_start_month``, and the true Chicago reading
matches none. ``parse_timestamp`` therefore returns that convention: numbers are taken as
they are, ISO 8601 strings with an offset are converted to America/Chicago wall-clock time,
naive ISO strings are taken as Chicago wall-clock time, and so is the City of Chicago data
portal's own text (``03/01/2015 10:00:00 AM``, its export's form). Time features derived from
the result with UTC calendar arithmetic are local hour, day and month.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from servekit.datasets import DatasetError, bad_lines, missing_columns, python_value, read_csv

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
#: upper bound, by cleaning rule 14. The 2013-2016 file was metered at the lower 2012 per-mile rate,
#: so these are generous for it.
METER_FLAG_FALL: Final = 3.25
METER_PER_MILE: Final = 2.25
METER_PER_36_SECONDS: Final = 0.25

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


def is_missing_text(text: str) -> bool:
    """A blank or a null token (``N/A``, ``null``, ...): what rule 2 of the cleaning reads as missing."""
    return text.strip().casefold() in _NULL_TOKENS


def _payment_key(text: str) -> str:
    return " ".join(text.replace("_", " ").replace("-", " ").split()).casefold()


_PAYMENT_BY_KEY: Final[dict[str, str]] = {_payment_key(p): p for p in SEEN_PAYMENT_TYPES}


class TimestampError(DatasetError):
    """A value ``parse_timestamp`` refuses; ``problem`` says what is wrong without the column, for
    a request's field error."""

    def __init__(self, column: str, problem: str) -> None:
        super().__init__(f"column {column!r}: {problem}")
        self.problem = problem


def parse_timestamp(value: object, column: str = TIMESTAMP_FIELD) -> int:
    """Unix seconds, ISO 8601 or the data portal's text -> Chicago wall-clock epoch seconds (see
    module docstring).

    Raises ``TimestampError`` (a ``DatasetError``) naming ``column`` and the problem for anything else.
    """
    seconds: float
    if isinstance(value, bool):
        raise TimestampError(column, f"{value!r} is not a timestamp")
    if isinstance(value, int | float | np.integer | np.floating):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            seconds = _text_to_wallclock_seconds(text, column)
            if not MIN_TIMESTAMP <= seconds < MAX_TIMESTAMP:
                raise TimestampError(column, f"{value!r} is not between 2000 and 2100") from None
    else:
        raise TimestampError(column, f"{value!r} is not a timestamp")
    if not math.isfinite(seconds) or not MIN_TIMESTAMP <= seconds < MAX_TIMESTAMP:
        raise TimestampError(
            column, f"{value!r} is not Unix seconds between 2000 and 2100 (not milliseconds)"
        )
    return math.floor(seconds)


#: The City of Chicago data portal's text for a timestamp (its CSV export and web view), Chicago
#: wall-clock time: ``03/01/2015 10:00:00 AM``. Always month first, and the 12-hour clock with
#: AM/PM marks the American order, so it is read rather than refused: a file exported from the
#: portal scores as it comes, and training reads it the same way (this function serves both).
_PORTAL_TEXT: Final = re.compile(
    r"(?P<month>\d{2})/(?P<day>\d{2})/(?P<year>\d{4}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<half>[AaPp][Mm])"
)
#: ISO 8601 dates Python does not read: ordinal (``2015-060``), which names a day of the year.
_ORDINAL_DATE: Final = re.compile(r"\d{4}-?\d{3}(?:[T ].*)?")


#: How BigQuery writes a TIMESTAMP as text (a CSV export, a cast to STRING): not ISO 8601.
_BIGQUERY_TIMESTAMP_TEXT: Final = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})? UTC")


def bigquery_text_problem(text: str) -> str | None:
    """What to do with a BigQuery TIMESTAMP written as text, or None if ``text`` is not one.

    Read as the instant it names, its hour would be off by Chicago's offset for the public
    ``chicago_taxi_trips`` table, which stores Chicago wall-clock times labelled UTC (the
    training file's seconds are that table's ``UNIX_SECONDS``); read as wall-clock time, it
    would be off for a table of true instants. Only the table's owner knows which, so the
    value is refused with both exports that say it.
    """
    if not _BIGQUERY_TIMESTAMP_TEXT.fullmatch(text):
        return None
    return (
        f"{text!r} is a BigQuery TIMESTAMP written as text, whose hour depends on what the table "
        "stores: export UNIX_SECONDS(trip_start_timestamp) if it holds Chicago wall-clock times "
        "labelled UTC (as the public chicago_taxi_trips table does), or "
        "FORMAT_TIMESTAMP('%FT%T%Ez', trip_start_timestamp) if it holds true instants"
    )


def _text_to_wallclock_seconds(text: str, column: str) -> float:
    portal = _PORTAL_TEXT.fullmatch(text)
    try:
        moment = _portal_moment(portal) if portal else datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(column, _text_problem(text, str(exc), portal is not None)) from exc
    if moment.tzinfo is not None:
        # An explicit offset is an instant: express it as Chicago wall-clock time, the
        # convention of the training file.
        try:
            moment = moment.astimezone(ZoneInfo(TIMEZONE)).replace(tzinfo=None)
        except OverflowError as exc:  # e.g. year 9999 with an offset
            raise TimestampError(column, f"{text!r} is not between 2000 and 2100") from exc
    return (moment - _EPOCH) / timedelta(seconds=1)


def _portal_moment(found: re.Match[str]) -> datetime:
    hour = int(found["hour"])
    if not 1 <= hour <= 12:
        raise ValueError("hour must be in 01..12 before AM/PM")
    # 12 AM is midnight, 12 PM noon.
    hour = hour % 12 + (12 if found["half"].upper() == "PM" else 0)
    return datetime(
        int(found["year"]),
        int(found["month"]),
        int(found["day"]),
        hour,
        int(found["minute"]),
        int(found["second"]),
    )


def _text_problem(text: str, reason: str, portal: bool) -> str:
    """What is wrong with a timestamp text neither ISO 8601 nor the portal's form reads, and what
    to send instead: the parser's own reason when the form is right but a part is not."""
    example = "e.g. 2015-03-01T10:00:00 (Chicago time) or 2015-03-01T16:00:00Z"
    bigquery = bigquery_text_problem(text)
    if bigquery:
        return bigquery
    if portal:
        return f"{text!r} is not a real time in the data portal's MM/DD/YYYY hh:mm:ss AM/PM form: {reason}"
    if _ORDINAL_DATE.fullmatch(text):
        return (
            f"{text!r} is an ordinal date (day of the year), which is not accepted: send the "
            f"calendar date, {example}"
        )
    if reason.startswith("Invalid isoformat string"):
        return (
            f"{text!r} is neither Unix seconds nor ISO 8601 nor the data portal's "
            f"MM/DD/YYYY hh:mm:ss AM/PM: send ISO 8601, {example}"
        )
    if reason.startswith("hour must be in 0..23") and re.search(r"[T ]24:", text):
        return f"{text!r} has hour 24, which is not accepted: send 00:00 of the next day"
    if reason.startswith("offset must be"):
        reason = "the UTC offset must be under 24 hours"
    return f"{text!r} is not a real time: {reason}"


# --------------------------------------------------------------------- column coercion


def _blank_to_missing(values: pd.Series[Any]) -> pd.Series[Any]:
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        return values

    def fix(v: object) -> object:
        if isinstance(v, str):
            return np.nan if is_missing_text(v) else v.strip()
        return v

    return values.astype(object).map(fix)


def _to_float(values: pd.Series[Any], column: str, path: str | Path | None = None) -> pd.Series[float]:
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        result = values.astype("float64")
    else:
        result = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = values.notna() & result.isna()
        if bad.any():
            example = values[bad].iloc[0]
            raise DatasetError(
                f"column {column!r}: {int(bad.sum())} non-numeric value(s) at {bad_lines(bad, path)}, "
                f"e.g. {example!r}"
            )
    # inf cannot be a measurement; treating it as missing lets the row rules handle it.
    return result.where(np.isfinite(result.to_numpy()))


def _to_int(values: pd.Series[Any], column: str, path: str | Path | None = None) -> pd.Series[Any]:
    floats = _to_float(values, column, path)
    fractional = floats.notna() & (floats != floats.round())
    if fractional.any():
        example = python_value(values[fractional.to_numpy()].iloc[0])  # as written: '10.5'
        raise DatasetError(
            f"column {column!r}: {int(fractional.sum())} non-integer value(s) at "
            f"{bad_lines(fractional, path)}, e.g. {example!r}"
        )
    return floats.astype("Int64")


def parse_timestamps(
    values: pd.Series[Any], column: str = TIMESTAMP_FIELD, path: str | Path | None = None
) -> pd.Series[Any]:
    """Vectorised ``parse_timestamp``; missing stays missing (``Int64``). A refusal names the
    first problem and the lines of every row refused for the same column (see ``bad_lines``)."""
    values = _blank_to_missing(values)
    refused = np.zeros(len(values), dtype=bool)
    first_problem = ""
    if is_numeric_dtype(values) and not is_bool_dtype(values):
        numbers = values.astype("float64")
    else:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64")
        needs_iso = values.notna() & numbers.isna()
        # Positional, so that duplicate index labels cannot mix rows up.
        for position in np.flatnonzero(needs_iso.to_numpy()).tolist():
            try:
                numbers.iloc[position] = float(parse_timestamp(values.iloc[position], column))
            except TimestampError as error:
                refused[position] = True
                first_problem = first_problem or error.problem
    # Like the float columns: a non-finite number is a missing value, not a timestamp.
    numbers = numbers.where(np.isfinite(numbers.to_numpy()))
    outside = (numbers.notna() & ((numbers < MIN_TIMESTAMP) | (numbers >= MAX_TIMESTAMP))).to_numpy()
    if outside.any():
        try:
            # As the file has it: '1425204000000', not 1.425204e12.
            parse_timestamp(python_value(values[outside].iloc[0]), column)
        except TimestampError as error:
            # The first problem in file order, whichever of the two it is.
            if not refused.any() or np.argmax(outside) < np.argmax(refused):
                first_problem = error.problem
            refused |= outside
    if refused.any():
        # Lines of the rows as they are in the file, however pandas indexed them.
        raise TimestampError(column, f"{first_problem}; {bad_lines(refused, path)}")
    return numbers.floordiv(1).astype("Int64")


def coerce_types(df: pd.DataFrame, path: str | Path | None = None) -> pd.DataFrame:
    """Rules 2-3: blanks to missing and every known column to its type (copy).

    Floats are ``float64``, integer codes ``Int64``, the timestamp ``Int64`` epoch seconds
    (see ``parse_timestamp``), payment type and company pandas ``str`` with NaN for missing.
    Unknown columns are returned unchanged. Raises ``DatasetError`` naming the column, and for
    a number that is not one the first lines it is on: those of the CSV file at ``path`` that
    ``df`` was read from (without, row ``i`` is line ``i + 2``).
    """
    out = df.copy()
    for column in out.columns:
        name = str(column)
        if name in _FLOAT_COLUMNS:
            out[name] = _to_float(_blank_to_missing(out[name]), name, path)
        elif name in _INT_COLUMNS:
            out[name] = _to_int(_blank_to_missing(out[name]), name, path)
        elif name == TIMESTAMP_FIELD:
            out[name] = parse_timestamps(out[name], name, path)
        elif name in _STRING_COLUMNS:
            out[name] = _blank_to_missing(out[name]).astype("str")
    return out


def require_columns(df: pd.DataFrame, required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DatasetError(missing_columns(missing, df.columns))


def load_csv(path: str | Path) -> pd.DataFrame:
    """Read a file with the real schema and coerce its types (no rows are removed).

    Every value is read as text first so that blanks and unparseable cells are seen (pandas'
    own NA guessing would hide them). Raises ``DatasetError`` for a missing request field
    or target column and for unparseable values; ``FileNotFoundError`` passes through.
    """
    raw = read_csv(path, dtype=str, keep_default_na=False)
    require_columns(raw, (*FEATURES, TARGET))
    return coerce_types(raw, path)


def haversine_miles(
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


def haversine_miles_of(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """``haversine_miles`` of one pair of points, in ``math``: a request's trip, at a fifth of
    numpy's cost on scalars (1 µs, not 6)."""
    half_dphi = math.radians(lat2 - lat1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    h = (
        math.sin(half_dphi) ** 2
        + math.cos(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.sin(half_dlambda) ** 2
    )
    return 2 * _EARTH_RADIUS_MILES * math.asin(math.sqrt(h))
