"""Cleaning the ChicagoTaxi file for training and evaluation: the numbered rules below.

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
from typing import Any, Final

import numpy as np
import pandas as pd

from chicagotaxi.data import (
    AREA_MAX,
    AREA_MIN,
    FEATURES,
    LAT_MAX,
    LAT_MIN,
    LON_MAX,
    LON_MIN,
    MAX_MILES,
    MAX_SECONDS,
    METER_FLAG_FALL,
    METER_PER_36_SECONDS,
    METER_PER_MILE,
    OTHER_PAYMENT_TYPE,
    TARGET,
    TIMESTAMP_FIELD,
    coerce_types,
    haversine_miles,
    haversine_miles_of,
    normalise_payment_type,
    require_columns,
)
from servekit.datasets import DatasetError

logger = logging.getLogger(__name__)

#: Extras a fare may carry on top of the meter (extra passengers, airport fee, tolls).
FARE_EXTRAS_ALLOWANCE: Final = 25.0
#: Highest plausible average speed of a city cab trip; above it miles or seconds is wrong.
MAX_SPEED_MPH: Final = 80.0
#: Tolerance of rule 13 for coordinates being centroids rather than exact points.
STRAIGHT_LINE_SLACK_MILES: Final = 2.0
#: Rule 14's ceiling at its highest, for the longest and slowest trip a request can be: a fare
#: over it is over every trip's (``TaxiFareRecipe.truth``, which has no trip to bound it by).
MAX_FARE: Final = (
    METER_FLAG_FALL
    + METER_PER_MILE * MAX_MILES
    + METER_PER_36_SECONDS * MAX_SECONDS / 36.0
    + FARE_EXTRAS_ALLOWANCE
)

#: Most of the input the outlier rules (10) may drop, real trips outside the serving domain.
MAX_OUTLIER_FRACTION: Final = 0.02
#: Most of the input that may not be a valid trip or fare (rules 8, 9, 14) before the file is broken.
MAX_EXCLUDED_FRACTION: Final = 0.10


# The cross-field rules as functions of values, not of a frame: ``clean`` applies them to columns
# and the request model (``chicagotaxi.schema``) to one trip, so the service refuses exactly what
# training treats as an error. Each takes scalars or arrays (numpy/pandas); missing is NaN.


def half_pair(latitude: Any, longitude: Any) -> Any:
    """Rule 4's broken pair: one half of a coordinate pair missing, the other given (per row of
    two columns, or of one trip, whose missing half is None: a validated request has no NaN)."""
    if not isinstance(latitude, pd.Series):  # one trip: pd.isna on two scalars costs 1.2 us
        return (latitude is None) != (longitude is None)
    return pd.isna(latitude) != pd.isna(longitude)


def speed_mph(miles: Any, seconds: Any) -> Any:
    """The average speed miles in seconds imply (rule 12); infinite for a duration too short to
    divide by (a column divides so, a single trip's float would raise)."""
    hours = seconds / 3600.0
    if isinstance(hours, float) and hours == 0.0:
        return math.inf
    return miles / hours


def too_fast(miles: Any, seconds: Any) -> Any:
    """Rule 12: miles and seconds imply more than ``MAX_SPEED_MPH``, so one of them is wrong."""
    return speed_mph(miles, seconds) > MAX_SPEED_MPH


def straight_line_miles(
    pickup_latitude: Any, pickup_longitude: Any, dropoff_latitude: Any, dropoff_longitude: Any
) -> Any:
    """Rule 13's straight line between the (centroid) endpoints; NaN where a coordinate is missing."""
    points = (pickup_latitude, pickup_longitude, dropoff_latitude, dropoff_longitude)
    if all(isinstance(x, float) for x in points):  # one trip, all four given
        return haversine_miles_of(*points)
    return haversine_miles(*points)


def below_straight_line(miles: Any, straight: Any) -> Any:
    """Rule 13: miles shorter than the straight line, less the centroids' slack (under-recorded)."""
    return miles < straight - STRAIGHT_LINE_SLACK_MILES


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


_OUTLIER_RULE_COLUMNS: Final[dict[str, str]] = {
    "trip_miles_out_of_range": "trip_miles",
    "trip_seconds_out_of_range": "trip_seconds",
    "trip_start_timestamp_missing": TIMESTAMP_FIELD,
}


def _pct(n: int, total: int) -> float:
    return 100.0 * n / total if total else 0.0


def clean(df: pd.DataFrame, *, log: bool = True) -> CleanResult:
    """Apply the numbered cleaning rules of the module docstring; returns frame + report.

    Accepts raw text (as read from CSV) or already typed frames; the input is not changed.
    ``log=False`` leaves the report unlogged, for a caller that cleans trial slices and logs
    (``log_report``) only the one it keeps.
    """
    require_columns(df, (*FEATURES, TARGET))  # rule 1
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
        usable = lat.between(LAT_MIN, LAT_MAX) & lon.between(LON_MIN, LON_MAX) & ~half_pair(lat, lon)
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
    inconsistent = too_fast(frame["trip_miles"], frame["trip_seconds"])
    repaired["miles_seconds_inconsistent_to_missing"] = int(inconsistent.sum())
    frame.loc[inconsistent, ["trip_miles", "trip_seconds"]] = np.nan

    # Rule 13: miles shorter than the straight line between the (centroid) endpoints.
    straight = pd.Series(
        straight_line_miles(
            frame["pickup_latitude"],
            frame["pickup_longitude"],
            frame["dropoff_latitude"],
            frame["dropoff_longitude"],
        ),
        index=frame.index,
    )
    too_short = below_straight_line(frame["trip_miles"], straight)
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
    if log:
        log_report(report)
    return CleanResult(frame=frame.reset_index(drop=True), report=report)


def log_report(report: CleanReport) -> None:
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
