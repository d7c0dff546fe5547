"""Request and response of the ChicagoTaxi service: a row of the real file, minus identifiers and label.

Field names are the columns of ``data.csv``. Validation turns each request into what the
model was trained on: the timestamp becomes Chicago wall-clock epoch seconds (the file's
convention, see :mod:`chicagotaxi.data`), the payment type is normalised to one of
``PAYMENT_TYPES`` (an unseen value becomes ``"other"``, it is not rejected) and the
company's spacing is collapsed. The reasons of an answer show the values as sent
(``servekit.reasons.KeepsSentValues``).

A trip the training data's cleaning treats as an error is refused, naming the fields and the
likely cause, by the cleaning's own rules (``chicagotaxi.cleaning``): half a coordinate pair
(rule 4), miles and seconds that imply more than 80 mph (rule 12), miles shorter than the
straight line between the coordinates (rule 13). Training sets such values missing and learns
nothing from them; answering them would be a fare for a trip the model was never shown.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from chicagotaxi import cleaning, data
from servekit.fields import whole_number
from servekit.reasons import KeepsSentValues

EXAMPLE: dict[str, Any] = {
    "trip_start_timestamp": "2015-03-01T10:00:00",
    "trip_miles": 2.6,
    "trip_seconds": 720,
    "pickup_community_area": 8,
    "dropoff_community_area": 7,
    "pickup_latitude": 41.899602111,
    "pickup_longitude": -87.633308037,
    "dropoff_latitude": 41.922686284,
    "dropoff_longitude": -87.649488729,
    "payment_type": "Credit Card",
    "company": "Taxi Affiliation Services",
}
#: Same trip, Unix seconds instead of ISO 8601 (the file's form).
EXAMPLE_UNIX: dict[str, Any] = {**EXAMPLE, "trip_start_timestamp": 1425204000}

MAX_TIMESTAMP_TEXT = 40
MAX_PAYMENT_TYPE_TEXT = 40
MAX_COMPANY_TEXT = 100

#: Fare ranges counted in ``chicagotaxi_predictions_total{outcome}``: upper bound (exclusive, USD), label.
FARE_RANGES: tuple[tuple[float, str], ...] = (
    (10.0, "<10"),
    (20.0, "10-20"),
    (40.0, "20-40"),
    (80.0, "40-80"),
    (float("inf"), ">=80"),
)
FareRange = Literal["<10", "10-20", "20-40", "40-80", ">=80"]


def fare_range(fare: float) -> str:
    """The ``FARE_RANGES`` label of a fare in USD (lower bound inclusive)."""
    return next(label for upper, label in FARE_RANGES if fare < upper)


def _latitude(end: str) -> Any:
    return Field(
        default=None,
        ge=data.LAT_MIN,
        le=data.LAT_MAX,
        description=f"Latitude of the {end} (tract centroid in the file), {data.LAT_MIN}-{data.LAT_MAX}",
    )


def _longitude(end: str) -> Any:
    return Field(
        default=None,
        ge=data.LON_MIN,
        le=data.LON_MAX,
        description=f"Longitude of the {end}, {data.LON_MIN} to {data.LON_MAX}",
    )


#: A community area number; ``8.0`` is area 8 (the file's area columns read as floats: they have
#: gaps), a fraction or a string is refused.
CommunityArea = Annotated[int | None, BeforeValidator(whole_number)]


def _area(end: str) -> Any:
    return Field(
        default=None,
        ge=data.AREA_MIN,
        le=data.AREA_MAX,
        description=f"Chicago community area of the {end}, {data.AREA_MIN}-{data.AREA_MAX}",
    )


class TaxiTrip(KeepsSentValues):
    """One Chicago taxi trip; field names are the columns of the ChicagoTaxi data.csv."""

    # strict: "2.5" is not a distance; allow_inf_nan=False: NaN/Infinity are rejected, not predicted on.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [dict(EXAMPLE), dict(EXAMPLE_UNIX)]},
    )

    trip_start_timestamp: str | float = Field(
        description=(
            "Start of the trip: ISO 8601 (with an offset: converted to Chicago time; without: Chicago "
            "local time) or Unix seconds in the data set's convention (Chicago wall-clock time read as "
            "UTC); between 2000 and 2100"
        ),
        examples=["2015-03-01T10:00:00", "2015-03-01T16:00:00Z", 1425204000],
    )
    trip_miles: float = Field(gt=0, le=data.MAX_MILES, description="Distance driven, miles (0-100]")
    trip_seconds: float = Field(gt=0, le=data.MAX_SECONDS, description="Duration, seconds (0-21600]")
    pickup_community_area: CommunityArea = _area("pickup")
    dropoff_community_area: CommunityArea = _area("dropoff")
    pickup_latitude: float | None = _latitude("pickup")
    pickup_longitude: float | None = _longitude("pickup")
    dropoff_latitude: float | None = _latitude("dropoff")
    dropoff_longitude: float | None = _longitude("dropoff")
    payment_type: str = Field(
        max_length=MAX_PAYMENT_TYPE_TEXT,
        # Not min_length: pydantic's "at least 1 character" would answer "" before the validator
        # below says what to send. Stated for generated clients.
        json_schema_extra={"minLength": 1},
        description=(
            f"One of {', '.join(data.SEEN_PAYMENT_TYPES)} (case and spacing are normalised); any other "
            f"value is accepted and predicted as {data.OTHER_PAYMENT_TYPE!r}; a blank or null "
            f"token (N/A, null, ...) is refused: send {data.MISSING_PAYMENT_TYPE!r}"
        ),
        examples=list(data.SEEN_PAYMENT_TYPES),
    )
    company: str | None = Field(
        default=None,
        max_length=MAX_COMPANY_TEXT,
        description="Taxi company (free text); the ten most frequent in training are told apart",
    )

    @field_validator("trip_start_timestamp", mode="wrap")
    @classmethod
    def _wallclock_seconds(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> float:
        """Chicago wall-clock epoch seconds, the form the model was trained on (a float: a member of
        the declared union, so the dump needs no conversion)."""
        try:
            checked: str | float = handler(value)
        except ValidationError as exc:  # one problem for the field, not one per member of the union
            raise ValueError("expected an ISO 8601 string or Unix seconds (a finite number)") from exc
        if isinstance(checked, str) and len(checked) > MAX_TIMESTAMP_TEXT:
            raise ValueError(f"at most {MAX_TIMESTAMP_TEXT} characters")
        try:
            return float(data.parse_timestamp(checked))
        except data.TimestampError as exc:  # the training loader's words: the same rules
            raise ValueError(exc.problem) from exc

    @field_validator("payment_type")
    @classmethod
    def _normalise_payment_type(cls, value: str) -> str:
        # Training reads a blank ("" too) or a null token as no payment type ("Unknown"); the
        # field is required, so the API refuses them all, as it refuses null, and says what to send.
        if data.is_missing_text(value):
            raise ValueError(
                f"{value!r} means no payment type, and the field is required: send "
                f"{data.MISSING_PAYMENT_TYPE!r} if it is not known"
            )
        return data.normalise_payment_type(value)

    @field_validator("company")
    @classmethod
    def _collapse_spaces(cls, value: str | None) -> str | None:
        # A null token is no company, as training reads it: not a company called "N/A".
        if value is None or data.is_missing_text(value):
            return None
        return " ".join(value.split()) or None

    @model_validator(mode="after")
    def _consistent(self) -> TaxiTrip:
        """The cleaning's cross-field rules, on this trip: a 422 per broken rule, at the field
        most likely wrong, naming the other and the figure the two imply."""
        problems = [*self._half_pairs(), *self._speed(), *self._straight_line()]
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return self

    def _half_pairs(self) -> list[InitErrorDetails]:
        found = []
        for end in ("pickup", "dropoff"):
            latitude, longitude = getattr(self, f"{end}_latitude"), getattr(self, f"{end}_longitude")
            if cleaning.half_pair(latitude, longitude):
                given, missing = ("latitude", "longitude") if longitude is None else ("longitude", "latitude")
                found.append(
                    _problem(
                        f"{end}_{missing}",
                        None,
                        f"{end}_{missing} is missing while {end}_{given} is given: send both or neither "
                        "(the training data drops half a pair)",
                    )
                )
        return found

    def _speed(self) -> list[InitErrorDetails]:
        miles, seconds = self.trip_miles, self.trip_seconds
        if not cleaning.too_fast(miles, seconds):
            return []
        mph = cleaning.speed_mph(miles, seconds)
        # Past a million mph the figure says nothing more (a duration of 1e-300 s would be 300 digits).
        speed = f"{mph:,.0f} mph" if mph < 1e6 else "over 1,000,000 mph"
        # A duration in minutes is the common slip: say so when it would make a drivable trip.
        if seconds * 60 <= data.MAX_SECONDS and not cleaning.too_fast(miles, seconds * 60):
            cause = f"minutes sent as seconds? {seconds:g} minutes would be {mph / 60:,.0f} mph"
        else:
            cause = "one of the two is wrong"
        return [
            _problem(
                "trip_seconds",
                seconds,
                f"trip_miles {miles:g} in trip_seconds {seconds:g} is {speed}; the training data "
                f"treats trips over {cleaning.MAX_SPEED_MPH:g} mph as errors: {cause}",
            )
        ]

    def _straight_line(self) -> list[InitErrorDetails]:
        points = (self.pickup_latitude, self.pickup_longitude, self.dropoff_latitude, self.dropoff_longitude)
        if None in points:
            return []  # rule 13 needs both ends
        straight = float(cleaning.straight_line_miles(*points))
        if not cleaning.below_straight_line(self.trip_miles, straight):
            return []
        return [
            _problem(
                "trip_miles",
                self.trip_miles,
                f"trip_miles {self.trip_miles:g} is shorter than the {straight:.1f} miles in a straight "
                "line from pickup to dropoff; the training data treats miles more than "
                f"{cleaning.STRAIGHT_LINE_SLACK_MILES:g} miles under it as under-recorded: send the distance "
                "driven, or check the coordinates",
            )
        ]


def _problem(field: str, value: Any, message: str) -> InitErrorDetails:
    # The message goes in as context: a template would read braces in it as placeholders.
    return InitErrorDetails(
        type=PydanticCustomError("inconsistent_trip", "{message}", {"message": message}),
        loc=(field,),
        input=value,
    )


class FarePrediction(BaseModel):
    fare: float = Field(description="Predicted metered fare (USD, before tips)")
    # No default: every answer sends it, so the document marks it required and generated clients
    # need not type it as optional.
    currency: Literal["USD"] = Field(description="The currency of fare and fare_range: always USD")
    fare_range: FareRange = Field(
        description="Range of the predicted fare in USD, lower bound inclusive; the outcome label in metrics"
    )
