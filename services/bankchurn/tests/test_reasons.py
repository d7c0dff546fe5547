"""BankChurn's principal reasons: the inputs that argued for the label each customer was given."""

import pytest

from bankchurn.service import SERVICE
from servekit.inference import run_model
from servekit.model import ModelArtifact
from servekit.testing import request_rows, train_in_memory
from servekit.training.splitting import Split


@pytest.fixture(scope="module")
def trained() -> tuple[ModelArtifact, Split]:
    return train_in_memory(SERVICE, rows=4000, seed=3)


def test_a_label_s_reasons_are_the_inputs_that_moved_the_log_odds_its_way(
    trained: tuple[ModelArtifact, Split],
) -> None:
    """A churn label's reasons raised the log-odds of churn, a stay's lowered them, strongest first:
    an input that argued against the label is in the explanation, never among its reasons."""
    artifact, data = trained
    model = SERVICE.model(artifact)
    answers = run_model(model, request_rows(data, 300), explain=True, reasons=3)
    against = 0
    for answer in answers:
        toward = 1 if answer["label"] == "churn" else -1
        contributions = answer["explanation"]["contributions"]
        for_it = sorted(
            (f for f, c in contributions.items() if c * toward > 0), key=lambda f: -abs(contributions[f])
        )
        assert [r["field"] for r in answer["reasons"]] == for_it[:3]
        against += any(c * toward < 0 for c in contributions.values())
    assert {a["label"] for a in answers} == {"churn", "stay"}
    assert against > 0  # else the rule was never put to the test
