"""The principal reasons of an answer: its strongest inputs toward it (either way for a number), off its
exact explanation."""

from __future__ import annotations

from pydantic import field_validator

from servekit.reasons import MAX_REASONS, KeepsSentValues, SentRecord, principal_reasons, reasons_problem


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


def test_a_decision_s_reasons_are_the_inputs_that_argued_for_it_only() -> None:
    """A churn label's reasons raised the log-odds of churn (+1), a stay's lowered them (-1): a
    factor against the decision is no reason for it, however strong."""
    contributions = {"Age": 0.4, "Balance": -0.9, "Tenure": 0.1, "IsActiveMember": -0.2}
    record = {"Age": 42, "Balance": 83807.86, "Tenure": 1, "IsActiveMember": 1}
    assert principal_reasons(contributions, record, 3, toward=1) == [
        {"field": "Age", "value": 42, "contribution": 0.4},
        {"field": "Tenure", "value": 1, "contribution": 0.1},
    ]
    assert principal_reasons(contributions, record, 1, toward=-1) == [
        {"field": "Balance", "value": 83807.86, "contribution": -0.9}
    ]
    # A contribution of zero argued for nothing.
    assert principal_reasons({"Gender": 0.0}, {"Gender": "Male"}, 3, toward=1) == []


def test_a_count_of_reasons_is_a_json_integer_from_0_to_the_limit() -> None:
    assert [reasons_problem(count) for count in (0, 3, MAX_REASONS)] == [None, None, None]
    assert [reasons_problem(bad) for bad in (-1, MAX_REASONS + 1, 1.5, "3", True, None)] == [
        f"{bad!r} is not an integer from 0 to 50" for bad in (-1, 51, 1.5, "3", True, None)
    ]


class Payment(KeepsSentValues):
    kind: str
    amount: float

    @field_validator("kind")
    @classmethod
    def _bucket(cls, value: str) -> str:
        return value if value in ("Cash", "Credit Card") else "other"


def test_a_reason_shows_the_value_as_the_caller_sent_it_not_as_validated() -> None:
    """An adverse-action style reason names what the caller can check: "Mobile", not "other"."""
    record = Payment.model_validate_json('{"kind": "Mobile", "amount": 3}').model_dump()
    assert isinstance(record, SentRecord)
    assert record == {"kind": "other", "amount": 3.0}  # what the model is given
    assert principal_reasons({"kind": 0.5, "amount": -0.2}, record, 2) == [
        {"field": "kind", "value": "Mobile", "contribution": 0.5},
        {"field": "amount", "value": 3, "contribution": -0.2},
    ]
    # The same from Python objects, as ``mlp score`` validates its rows.
    assert Payment.model_validate({"kind": "Mobile", "amount": 3}).model_dump().sent == {
        "kind": "Mobile",
        "amount": 3,
    }
