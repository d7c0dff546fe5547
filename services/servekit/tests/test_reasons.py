"""The principal reasons of an answer: its strongest inputs either way, off its exact explanation."""

from __future__ import annotations

from servekit.reasons import MAX_REASONS, principal_reasons, reasons_problem


def test_the_strongest_inputs_either_way_come_first_each_with_its_value() -> None:
    contributions = {"Age": 0.4, "Balance": -0.9, "Tenure": 0.4, "Gender": 0.0}
    record = {"Age": 42, "Balance": 83807.86, "Tenure": 1, "Gender": "Female"}
    assert principal_reasons(contributions, record, 3) == [
        {"field": "Balance", "value": 83807.86, "contribution": -0.9},
        # A tie is broken by the name, so the same row always gives the same reasons.
        {"field": "Age", "value": 42, "contribution": 0.4},
        {"field": "Tenure", "value": 1, "contribution": 0.4},
    ]
    # A contribution to no field of the row (a word of NLPInsight's text) has no value.
    words = principal_reasons({"boosts": 1.78, "Reuters": -0.15}, {"text": "Exxon boosts dividend"}, 1)
    assert words == [{"field": "boosts", "value": None, "contribution": 1.78}]
    # No more reasons than the model has inputs.
    assert principal_reasons({"text": 1.5}, {"text": "up"}, 2) == [
        {"field": "text", "value": "up", "contribution": 1.5}
    ]


def test_a_count_of_reasons_is_a_json_integer_from_0_to_the_limit() -> None:
    assert [reasons_problem(count) for count in (0, 3, MAX_REASONS)] == [None, None, None]
    assert [reasons_problem(bad) for bad in (-1, MAX_REASONS + 1, 1.5, "3", True, None)] == [
        f"{bad!r} is not an integer from 0 to 50" for bad in (-1, 51, 1.5, "3", True, None)
    ]
