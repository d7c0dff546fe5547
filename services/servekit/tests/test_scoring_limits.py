"""``mlp score --max-rejected``: a count or a share of the rows read, and what each allows."""

from __future__ import annotations

import re

import pytest

from servekit.scoring.limits import RejectionLimit


@pytest.mark.parametrize(
    ("text", "rows", "allowed"),
    [
        ("0", 1_000, 0),
        ("12", 5, 12),
        (" 12 ", 1_000_000, 12),
        ("1%", 99, 0),  # a share is rounded down: 0.99 rows is none
        ("1%", 300, 3),  # not 2.9999... through float rounding
        ("0.5%", 12_002, 60),
        ("27.7 %", 12_002, 3_324),
        ("100%", 7, 7),
        ("0%", 7, 0),
    ],
)
def test_a_limit_allows_a_count_or_a_share_of_the_rows_read(text: str, rows: int, allowed: int) -> None:
    limit = RejectionLimit.parse(text)
    assert limit.allowed(rows) == allowed
    assert not limit.exceeded(allowed, rows)
    assert limit.exceeded(allowed + 1, rows)


def test_a_limit_says_what_it_is() -> None:
    assert str(RejectionLimit.parse("1200")) == "1,200 rows"
    assert str(RejectionLimit.parse("0.50%")) == "0.5% of the rows"
    assert str(RejectionLimit()) == "0 rows"
    assert str(RejectionLimit.parse("1")) == "1 row"  # "1 rows" before


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-1", "'-1' is neither a number of rows (12) nor a share of them (0.5%)"),
        ("1.5", "'1.5' is neither a number of rows"),
        ("", "'' is neither a number of rows"),
        ("half%", "'half%': 'half' is not a number"),
        ("101%", "'101%' is not a percentage from 0% to 100%"),
        ("-1%", "'-1%' is not a percentage"),
        ("nan%", "'nan%' is not a percentage"),
    ],
)
def test_a_limit_that_is_neither_is_refused_naming_it(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(problem)):
        RejectionLimit.parse(text)
