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
)
