"""The ChicagoTaxi service as servekit sees it (the ``servekit.services`` entry point)."""

from chicagotaxi.model import TaxiFareModel, TaxiFareRecipe
from chicagotaxi.schema import FarePrediction, TaxiTrip
from servekit.spec import ServiceSpec

SERVICE = ServiceSpec(
    name="chicagotaxi",
    title="ChicagoTaxi",
    description=(
        "Metered fare (USD) of a Chicago taxi trip, with exact TreeSHAP explanations per input "
        "field in USD (`?explain=true`); time-of-day, weekday, month and year all count towards "
        "`trip_start_timestamp`."
    ),
    request=TaxiTrip,
    response=FarePrediction,
    model=TaxiFareModel,
    recipe=TaxiFareRecipe(),
    local_port=8003,
    intended_use=(
        "Estimates the metered fare (before tips) of a Chicago taxi trip from its start, "
        "distance, duration and areas: a quote before the trip, or a check of recorded fares "
        "that stand out, each with what made it dear."
    ),
    not_for=(
        "other cities, ride-hailing, or years far from its 2013-2016 trips without retraining: "
        "fares follow each city's and year's rates",
        "settling a dispute with a rider or a driver: an estimate is not the meter",
    ),
)
