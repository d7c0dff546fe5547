"""Request and response of the BankChurn service: a row of the real file, minus identifiers and label."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bankchurn.data import BOUNDS
from servekit.fields import WholeNumber

EXAMPLE: dict[str, int | float | str] = {
    "CreditScore": 619,
    "Geography": "France",
    "Gender": "Female",
    "Age": 42,
    "Tenure": 2,
    "Balance": 0.0,
    "NumOfProducts": 1,
    "HasCrCard": 1,
    "IsActiveMember": 1,
    "EstimatedSalary": 101348.88,
}


def _bounded(column: str, description: str) -> object:
    low, high = BOUNDS[column]
    return Field(ge=low, le=high, description=description)


class Customer(BaseModel):
    """One bank customer; field names are the columns of Churn_Modelling.csv."""

    # strict: "42" is not an age; allow_inf_nan=False: NaN/Infinity are rejected, not predicted on.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        allow_inf_nan=False,
        json_schema_extra={"examples": [dict(EXAMPLE)]},
    )

    CreditScore: WholeNumber = _bounded("CreditScore", "Credit score, 300-850")  # type: ignore[assignment]
    Geography: Literal["France", "Germany", "Spain"] = Field(description="Country of the customer")
    Gender: Literal["Female", "Male"]
    Age: WholeNumber = _bounded("Age", "Age in years, 18-100")  # type: ignore[assignment]
    Tenure: WholeNumber = _bounded("Tenure", "Years as a customer, 0-10")  # type: ignore[assignment]
    Balance: float = _bounded("Balance", "Account balance, >= 0")  # type: ignore[assignment]
    NumOfProducts: WholeNumber = _bounded("NumOfProducts", "Products held, 1-4")  # type: ignore[assignment]
    # Integers from 0 to 1, not Literal[0, 1]: pydantic takes false and true for the literals 0
    # and 1, where the schema's integers are no booleans.
    HasCrCard: WholeNumber = _bounded("HasCrCard", "1 if the customer has a credit card, else 0")  # type: ignore[assignment]
    IsActiveMember: WholeNumber = _bounded("IsActiveMember", "1 if the customer is active, else 0")  # type: ignore[assignment]
    EstimatedSalary: float = _bounded("EstimatedSalary", "Estimated yearly salary, >= 0")  # type: ignore[assignment]


class ChurnPrediction(BaseModel):
    churn_probability: float = Field(ge=0, le=1, description="Probability that the customer leaves")
    label: Literal["churn", "stay"] = Field(description="churn when probability >= threshold")
    threshold: float = Field(description="Decision threshold chosen at training (max F1)")
    risk_band: Literal["low", "medium", "high"] = Field(
        description="low < 0.25 <= medium < 0.5 <= high, on the probability"
    )
