"""A toy service built the way real services are: two fields, a LightGBM regressor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from pydantic import BaseModel, ConfigDict, Field
from sklearn.metrics import mean_absolute_error
from sklearn.pipeline import Pipeline

from servekit.features import Derived, FloatArray, RecordEncoder
from servekit.model import Record
from servekit.models.trees import TreeModel, TreeRecipe
from servekit.spec import ServiceSpec


class ToyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    x: float = Field(ge=0, le=10)
    color: Literal["red", "blue"]
    note: str | None = Field(default=None, max_length=20)


class ToyPrediction(BaseModel):
    value: float


def squared(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.asarray(values, dtype=float) ** 2


class ToyRecipe(TreeRecipe):
    target = "y"
    task = "regression"
    primary_metric = "mae"
    greater_is_better = False

    def load_csv(self, path: Path) -> pd.DataFrame:
        return pd.read_csv(path)

    def generate(self, n_rows: int, seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x = rng.uniform(0, 10, n_rows)
        color = rng.choice(["red", "blue"], n_rows)
        y = 2 * x + 0.1 * x**2 + 3 * (color == "red") + rng.normal(0, 0.1, n_rows)
        return pd.DataFrame({"x": x, "color": color, "note": None, "y": y})

    def build_pipeline(self, seed: int) -> Pipeline:
        encoder = RecordEncoder(
            numeric=("x",), categorical=("color",), derived=(Derived("x_squared", "x", squared),)
        )
        model = LGBMRegressor(n_estimators=50, num_leaves=8, random_state=seed, n_jobs=1, verbose=-1)
        return Pipeline([("encode", encoder), ("model", model)])

    def evaluate(
        self, pipeline: Any, features: pd.DataFrame, target: pd.Series, metadata: Mapping[str, Any]
    ) -> dict[str, float]:
        return {"mae": float(mean_absolute_error(target, pipeline.predict(features)))}

    def served_output(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["value"]


class ToyModel(TreeModel):
    explanation_scale = "units"

    def answers(self, raw_scores: FloatArray) -> list[dict[str, Any]]:
        return [{"value": float(v)} for v in raw_scores]

    def outcome(self, prediction: Mapping[str, Any]) -> str:
        return "high" if prediction["value"] >= 10 else "low"

    def scores(self, prediction: Mapping[str, Any]) -> Mapping[str, float]:
        return {"value": prediction["value"]}


#: FailingToy fails on this input, as a model with a bug would.
FAILING_X = 9.5


class FailingToy(ToyModel):
    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if any(record["x"] == FAILING_X for record in records):
            raise RuntimeError("lookup table is empty")
        return super().predict(records)


TOY = ServiceSpec(
    name="toy",
    title="Toy",
    description="A toy service for servekit's own tests.",
    request=ToyRequest,
    response=ToyPrediction,
    model=ToyModel,
    recipe=ToyRecipe(),
    local_port=8999,
    intended_use=(
        "Exercising servekit in its own tests: serving, explaining, monitoring and rolling out a "
        "model of made-up rows."
    ),
    not_for=("answering anyone: its rows are made up",),
)


def registered(client: Any, name: str, versions: int) -> None:
    """``name`` in the registry with ``versions`` versions, each of a run of the toy experiment."""
    experiment = client.get_experiment_by_name("toy").experiment_id
    client.create_registered_model(name)
    for _ in range(versions):
        run = client.create_run(experiment)
        client.create_model_version(name, "unused", run_id=run.info.run_id)
