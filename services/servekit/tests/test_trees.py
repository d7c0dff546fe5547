"""LightGBM's pred_contrib is exact TreeSHAP: it agrees with shap.TreeExplainer and adds up."""

import numpy as np
import shap
from toy import ToyModel

from servekit.model import ModelArtifact
from servekit.models.trees import TreeEnsemble
from servekit.testing import request_rows
from servekit.training.splitting import Split


def test_field_contributions_add_up_to_the_output(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    trees = TreeEnsemble(artifact.pipeline)
    rows = request_rows(data, 200)
    values = trees.shap(rows)
    np.testing.assert_allclose(values.outputs, trees.raw_scores(rows), rtol=1e-6)
    np.testing.assert_allclose(
        values.base_values + values.contributions.sum(axis=1), values.outputs, rtol=1e-9
    )


def test_derived_columns_are_summed_back_to_their_field(
    toy_trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data = toy_trained
    trees = TreeEnsemble(artifact.pipeline)
    rows = request_rows(data, 50)
    per_column = trees.booster.predict(trees.matrix(rows), pred_contrib=True)
    values = trees.shap(rows)
    assert values.fields == ["x", "color"]
    # columns: x, color, x_squared (from x)
    np.testing.assert_allclose(values.contributions[:, 0], per_column[:, 0] + per_column[:, 2])
    np.testing.assert_allclose(values.contributions[:, 1], per_column[:, 1])


def test_agrees_with_shap_tree_explainer(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    trees = TreeEnsemble(artifact.pipeline)
    matrix = trees.matrix(request_rows(data, 100))
    reference = shap.TreeExplainer(trees.booster).shap_values(matrix)
    ours = trees.booster.predict(matrix, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(ours, reference, rtol=1e-6, atol=1e-9)


def test_explanations_state_their_scale(toy_trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = toy_trained
    explanation = ToyModel(artifact).explain(request_rows(data, 1))[0]
    assert explanation.scale == "units"
    total = explanation.base_value + sum(explanation.contributions.values())
    assert np.isclose(total, explanation.output_value, rtol=1e-9)
    assert explanation.attributions == explanation.contributions
