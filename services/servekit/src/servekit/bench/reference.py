"""The explainers a tree service's model choice is measured against, in the same run.

* ``shap.TreeExplainer`` on the served LightGBM booster: the same TreeSHAP
  algorithm through the shap package (what servekit avoids by calling
  LightGBM's built-in ``pred_contrib``).
* A 100-tree random forest of unlimited depth on the same features, explained
  by ``shap.TreeExplainer``: the model class the anchor project served.
* ``shap.KernelExplainer`` on that forest with a 100-row background: the
  anchor project's explainer (model-agnostic sampling, one row only: seconds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from servekit.bench.stats import Latency
from servekit.model import Record
from servekit.models.trees import TreeModel
from servekit.training.recipe import Task

#: Rows explained per reference; the forest takes tens of milliseconds a row.
REFERENCE_ROWS = 30


def _per_row(explain: Callable[[Any], Any], matrix: Any, rows: int) -> Latency:
    explain(matrix[:1])
    samples = []
    for i in range(min(rows, len(matrix))):
        start = time.perf_counter()
        explain(matrix[i : i + 1])
        samples.append(time.perf_counter() - start)
    return Latency.of(samples)


def tree_references(
    model: TreeModel,
    train_records: Sequence[Record],
    train_target: Any,
    records: Sequence[Record],
    *,
    task: Task,
    kernel_rows: int = 1,
) -> dict[str, Latency]:
    import shap
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    x_train = model.trees.matrix(train_records)
    x = model.trees.matrix(records)
    y = np.asarray(train_target)
    figures = {"shap.TreeExplainer(LightGBM)": _per_row(shap.TreeExplainer(model.trees.booster), x, 200)}

    forest_class = RandomForestRegressor if task == "regression" else RandomForestClassifier
    forest = forest_class(n_estimators=100, max_depth=None, n_jobs=1, random_state=0)
    forest.fit(np.nan_to_num(x_train, nan=-1.0), y)
    x_forest = np.nan_to_num(x, nan=-1.0)
    tree_explainer = shap.TreeExplainer(forest)
    figures["RandomForest(100) TreeExplainer"] = _per_row(
        tree_explainer.shap_values, x_forest, REFERENCE_ROWS
    )

    def forest_output(matrix: Any) -> Any:
        if task == "regression":
            return forest.predict(matrix)
        return forest.predict_proba(matrix)[:, -1]

    background = shap.sample(np.nan_to_num(x_train, nan=-1.0), 100, random_state=0)
    kernel = shap.KernelExplainer(forest_output, background)
    figures["RandomForest(100) KernelExplainer"] = _per_row(
        lambda row: kernel.shap_values(row, silent=True), x_forest, kernel_rows
    )
    return figures
