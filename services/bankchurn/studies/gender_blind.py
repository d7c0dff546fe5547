"""What does BankChurn's model do to men and women when it cannot see gender?

The model takes ``Gender`` as an input, and women who stayed are flagged three times as often as
men (README, "Model quality on the real data"). "Fairness through unawareness" drops the input;
this study measures what that buys on the real file: the held-out ROC AUC, and the decisions per
group (share flagged, true- and false-positive rates, with their gaps' intervals), where the
groups are still the customers' true genders and countries.

The blind model is the service's recipe, unchanged, fitted on the seed-42 split with ``Gender``
held at one value in every row, so that no split can use it; its threshold is tuned on its own
out-of-fold predictions, as the service's is. Nothing else changes.

Run from the repository root (about 10 seconds)::

    .venv/bin/python services/bankchurn/studies/gender_blind.py \\
        ../shared/datasets/bankchurn/Churn_Modelling.csv
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from bankchurn.service import SERVICE
from servekit.training import parity
from servekit.training.splitting import split
from servekit.training.trainer import fit

SEED = 42
DIMENSIONS = ("Gender", "Geography", "Geography_Gender")
FIGURES = ("flagged_share", "true_positive_rate", "false_positive_rate")


def decisions(frame: pd.DataFrame, seen: pd.DataFrame) -> tuple[float, float, dict[str, Any]]:
    """ROC AUC, threshold and decisions per true group of a model fitted on ``seen`` (``frame``'s
    rows, with what the model may see)."""
    truth, data = split(SERVICE, frame, SEED), split(SERVICE, seen, SEED)
    pipeline, metadata = fit(SERVICE, data, SEED)
    probability = pipeline.predict_proba(data.x_test)[:, 1]
    groups = SERVICE.recipe.segments(truth.x_test)
    target = truth.y_test.to_numpy()
    found = parity.group_parity(
        "binary", groups, target, probability, threshold=metadata["threshold"], seed=SEED
    )
    return float(roc_auc_score(target, probability)), float(metadata["threshold"]), found


def report(label: str, auc: float, threshold: float, found: dict[str, Any]) -> None:
    print(f"{label}: ROC AUC {auc:.4f}, threshold {threshold:.3f}")
    for dimension in DIMENSIONS:
        for figure in FIGURES:
            gap = found[dimension]["gaps"][figure]
            ratio = f", ratio {gap['ratio']:.2f}" if "ratio" in gap else ""
            print(
                f"  {dimension} {parity.meaning(figure)}: {gap['highest']} - {gap['lowest']} "
                f"{gap['gap']:+.3f} ({gap['ci_low']:+.3f} to {gap['ci_high']:+.3f}){ratio}"
            )
        for group, entry in found[dimension]["groups"].items():
            shown = ", ".join(f"{parity.meaning(f)} {entry[f]:.3f}" for f in FIGURES)
            print(f"    {group}: {shown}")


def main(path: str) -> None:
    frame = SERVICE.recipe.load_csv(Path(path))
    blind = frame.assign(Gender=np.full(len(frame), frame["Gender"].iloc[0]))
    report("with Gender (the service)", *decisions(frame, frame))
    report("without Gender (held at one value)", *decisions(frame, blind))


if __name__ == "__main__":
    main(sys.argv[1])
