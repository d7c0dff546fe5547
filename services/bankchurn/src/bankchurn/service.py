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
    intended_use=(
        "Ranks a retail bank's customers by their risk of closing their accounts, so that a "
        "retention team chooses whom to contact first and reads why (the principal reasons). It "
        "is meant for customers like its training rows' (one bank's, in France, Germany and "
        "Spain; the card's data section says which rows this version learned from, real or "
        "synthetic); a person decides what to offer."
    ),
    not_for=(
        "credit, pricing or any decision that refuses a customer a product: its inputs include "
        "gender and country, which such decisions may not rest on (the US Equal Credit "
        "Opportunity Act, the EU's equal-treatment directives)",
        "customers of another bank or country, without retraining and checking it on theirs",
        "acting on a customer automatically, without a person reading the reasons",
    ),
)
