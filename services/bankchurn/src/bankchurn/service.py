"""The BankChurn service as servekit sees it (the ``servekit.services`` entry point)."""

from bankchurn.model import ChurnModel, ChurnRecipe
from bankchurn.schema import ChurnPrediction, Customer
from servekit.spec import ServiceSpec

SERVICE = ServiceSpec(
    name="bankchurn",
    title="BankChurn",
    description=(
        "Probability that a bank customer leaves, with exact TreeSHAP explanations "
        "per input field on the log-odds scale (`?explain=true`)."
    ),
    request=Customer,
    response=ChurnPrediction,
    model=ChurnModel,
    recipe=ChurnRecipe(),
    local_port=8001,
)
