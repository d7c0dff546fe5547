"""The Churn Modelling data set: loader of the real file and a synthetic generator.

Both produce the same validated frame: the ten feature columns and ``Exited``.
The identifiers ``RowNumber``, ``CustomerId`` and ``Surname`` are dropped: they
carry no signal a model should learn, and a surname must not drive a decision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# DatasetError is what a bad file raises: callers (and the tests) name it here, as before the
# checks moved to servekit.datasets.validate_table.
from servekit.datasets import DatasetError, read_csv, validate_table  # noqa: F401

TARGET = "Exited"
IDENTIFIERS = ("RowNumber", "CustomerId", "Surname")
GEOGRAPHIES = ("France", "Germany", "Spain")
GENDERS = ("Female", "Male")
NUMERIC = (
    "CreditScore",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    "EstimatedSalary",
)
CATEGORICAL = ("Geography", "Gender")
FEATURES = (
    "CreditScore",
    "Geography",
    "Gender",
    "Age",
    "Tenure",
    "Balance",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    "EstimatedSalary",
)
#: Inclusive domain of each numeric column; the request schema uses the same bounds.
BOUNDS: dict[str, tuple[float, float]] = {
    "CreditScore": (300, 850),
    "Age": (18, 100),
    "Tenure": (0, 10),
    "Balance": (0, 1_000_000),
    "NumOfProducts": (1, 4),
    "HasCrCard": (0, 1),
    "IsActiveMember": (0, 1),
    "EstimatedSalary": (0, 1_000_000),
    TARGET: (0, 1),
}
INTEGER_COLUMNS = (
    "CreditScore",
    "Age",
    "Tenure",
    "NumOfProducts",
    "HasCrCard",
    "IsActiveMember",
    TARGET,
)
ALLOWED = {"Geography": GEOGRAPHIES, "Gender": GENDERS}


def load_csv(path: Path) -> pd.DataFrame:
    """Read and validate a file with the real ``Churn_Modelling.csv`` schema."""
    return validate_frame(read_csv(path), path)


def validate_frame(raw: pd.DataFrame, path: Path | None = None) -> pd.DataFrame:
    """Features + target with checked types and domains; identifiers dropped.

    A bad value is refused naming its column, the value and the first lines it is on: those of
    the CSV file at ``path`` that ``raw`` was read from (without, row ``i`` is line ``i + 2``).
    """
    return validate_table(
        raw,
        columns=(*FEATURES, TARGET),
        numeric_bounds={column: BOUNDS[column] for column in (*NUMERIC, TARGET)},
        integers=INTEGER_COLUMNS,
        allowed=ALLOWED,
        path=path,
    )


_SURNAMES = (
    "Hargrave",
    "Hill",
    "Onio",
    "Boni",
    "Mitchell",
    "Chu",
    "Bartlett",
    "Obinna",
    "He",
    "Bearce",
)


def generate_raw(n_rows: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Synthetic customers in the real file's 14-column schema.

    Marginals follow the published data (≈50% France, ≈55% male, ages around 39,
    ≈36% zero balances, mostly one or two products); churn is drawn from a
    logistic model of plausible drivers (middle age, inactivity, three or more
    products, Germany, a non-zero balance) calibrated to a rate near 20%.
    """
    rng = np.random.default_rng(seed)
    geography = rng.choice(GEOGRAPHIES, size=n_rows, p=[0.5, 0.25, 0.25])
    gender = rng.choice(GENDERS, size=n_rows, p=[0.45, 0.55])
    age = np.clip(np.round(rng.lognormal(np.log(37), 0.25, n_rows)), 18, 92).astype(int)
    credit = np.clip(np.round(rng.normal(650, 97, n_rows)), 350, 850).astype(int)
    tenure = rng.integers(0, 11, n_rows)
    has_balance = rng.random(n_rows) < np.where(geography == "Germany", 0.99, 0.52)
    balance = np.where(has_balance, np.clip(rng.normal(119_800, 30_000, n_rows), 3_000, 250_000), 0.0)
    products = rng.choice([1, 2, 3, 4], size=n_rows, p=[0.508, 0.459, 0.027, 0.006])
    has_card = (rng.random(n_rows) < 0.706).astype(int)
    active = (rng.random(n_rows) < 0.515).astype(int)
    salary = np.round(rng.uniform(11.58, 199_992.48, n_rows), 2)

    age_effect = 0.11 * (age - 40) - 0.0028 * np.maximum(age - 55, 0) ** 2
    logit = (
        -1.25
        + age_effect
        - 0.95 * active
        + np.select([products == 2, products == 3, products == 4], [-1.4, 2.1, 4.0], 0.0)
        + 0.75 * (geography == "Germany")
        + 0.45 * (gender == "Female")
        + 0.25 * has_balance
        - 0.0009 * (credit - 650)
        + 0.015 * (5 - tenure) * (1 - active)
    )
    exited = (rng.random(n_rows) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "RowNumber": np.arange(1, n_rows + 1),
            "CustomerId": 15_565_701 + rng.permutation(n_rows),
            "Surname": rng.choice(_SURNAMES, size=n_rows),
            "CreditScore": credit,
            "Geography": geography,
            "Gender": gender,
            "Age": age,
            "Tenure": tenure,
            "Balance": np.round(balance, 2),
            "NumOfProducts": products,
            "HasCrCard": has_card,
            "IsActiveMember": active,
            "EstimatedSalary": salary,
            TARGET: exited,
        }
    )


def generate(n_rows: int = 10_000, seed: int = 0) -> pd.DataFrame:
    """Synthetic data through the same validation as the real file."""
    return validate_frame(generate_raw(n_rows, seed))
