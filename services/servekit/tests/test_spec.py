"""``ServiceSpec``: a service that does not say what its model is for, and not for, is refused
where it is declared (its model card opens with both)."""

from __future__ import annotations

import dataclasses

import pytest
from toy import TOY

from servekit.spec import INTENDED_USE_MIN_CHARS, ServiceSpec


def test_a_stated_use_is_accepted() -> None:
    assert len(TOY.intended_use) > INTENDED_USE_MIN_CHARS
    assert dataclasses.replace(TOY, not_for=("a", "b")).not_for == ("a", "b")


@pytest.mark.parametrize("field", ["intended_use", "not_for"])
def test_both_are_required(field: str) -> None:
    arguments = {f.name: getattr(TOY, f.name) for f in dataclasses.fields(TOY)}
    del arguments[field]
    with pytest.raises(TypeError, match=f"missing 1 required positional argument: '{field}'"):
        ServiceSpec(**arguments)


@pytest.mark.parametrize("intended_use", ["", "Churn prediction.", " " * 200, "x" * INTENDED_USE_MIN_CHARS])
def test_an_intended_use_of_a_sentence_or_less_is_refused(intended_use: str) -> None:
    with pytest.raises(
        ValueError, match=r"service 'toy': intended_use must say .* \(more than 80 characters"
    ):
        dataclasses.replace(TOY, intended_use=intended_use)


@pytest.mark.parametrize(
    ("not_for", "rule"),
    [((), "not_for must name at least one use"), (("trading on it", " "), "not_for must hold no blank use")],
)
def test_a_use_it_must_not_be_put_to_is_required(not_for: tuple[str, ...], rule: str) -> None:
    with pytest.raises(ValueError, match=f"service 'toy': {rule}"):
        dataclasses.replace(TOY, not_for=not_for)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(ValueError, match=r"intended_use must .*; not_for must"):
        dataclasses.replace(TOY, intended_use="", not_for=())
