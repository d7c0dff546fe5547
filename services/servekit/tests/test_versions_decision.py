"""`mlp versions`' decision column: a keep the comparison did not decide is marked, and why is said."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from toy import TOY

from servekit.training import versions

DECIDED = "kept champion v1: mae 1.0 vs champion v1 0.9 on the same held-out split; difference +0.1"
UNDECIDED = (
    f"{DECIDED}; not decided by this comparison: v1 logged no training rows (trained before mlp "
    "train logged them), which would inflate its mae; `mlp promote toy 2` makes it champion by hand"
)
NOT_PROMOTED = (
    f"{DECIDED}; not promoted: too few held-out rows (40 held-out rows) to move the champion; "
    "`mlp promote toy 2` makes it champion by hand"
)
TOO_FEW = (
    "kept champion v1: mae 1.0 vs champion v1 0.9; difference +0.1, on 40 held-out rows: too few to "
    "tell a difference from noise"
)


@pytest.mark.parametrize(
    ("decision", "shown"),
    [
        (DECIDED, "kept champion v1"),
        (UNDECIDED, "kept champion v1 (not decided)"),
        (NOT_PROMOTED, "kept champion v1 (better, not promoted)"),
        (TOO_FEW, "kept champion v1 (too few rows to tell)"),
        ("promoted to champion: mae 0.9 vs champion v1 1.0", "promoted to champion"),
        ("not compared: champion v1 cannot be loaded (gone)", "not compared"),
        ("promoted by hand", "promoted by hand"),
    ],
)
def test_each_kind_of_decision_is_told_apart(decision: str, shown: str) -> None:
    """A keep the comparison did not decide read `kept champion v1`, as one it decided does."""
    assert versions.decision_summary(decision) == shown


def test_why_a_comparison_did_not_decide_is_said_under_the_table() -> None:
    rows = [
        versions.VersionRow(
            version=version,
            aliases=(),
            registered=datetime(2026, 12, 6, tzinfo=UTC),
            metric=1.0,
            ci_low=0.9,
            ci_high=1.1,
            data="",
            decision=versions.decision_summary(decision),
            undecided=versions.undecided_why(decision),
        )
        for version, decision in (("3", NOT_PROMOTED), ("2", UNDECIDED), ("1", DECIDED))
    ]
    shown = versions.render(TOY, rows, "sqlite:///mlflow.db").splitlines()
    assert shown[-2:] == [
        "v3 better, not promoted: too few held-out rows (40 held-out rows) to move the champion; "
        "`mlp promote toy 2` makes it champion by hand",
        "v2 not decided: v1 logged no training rows (trained before mlp train logged them), which would "
        "inflate its mae; `mlp promote toy 2` makes it champion by hand",
    ]
    assert versions.undecided_why(DECIDED) == ""
