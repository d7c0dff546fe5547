"""The model card's "Decision threshold": where the threshold was chosen, and the recipe's own rule."""

from __future__ import annotations

import copy
import dataclasses

from toy import TOY

from servekit.card import render

DESCRIBED = {"name": "toy", "version": "1", "threshold": 0.34}
CHOSEN = (
    "A prediction is labelled positive from a probability of 0.34, chosen on out-of-fold "
    "predictions of the training rows, never on the held-out rows."
)


def section(card: str) -> str:
    """The text of the card's "Decision threshold" section."""
    return card.split("## Decision threshold\n\n", 1)[1].split("\n\n", 1)[0]


def test_a_recipe_without_a_rule_says_only_where_the_threshold_was_chosen() -> None:
    assert TOY.recipe.threshold_rule == ""
    assert section(render(TOY, DESCRIBED)) == CHOSEN


def test_the_recipes_rule_follows_in_the_same_paragraph() -> None:
    recipe = copy.copy(TOY.recipe)
    recipe.threshold_rule = "It maximises F1; the bands are fixed."
    card = render(dataclasses.replace(TOY, recipe=recipe), DESCRIBED)
    assert section(card) == f"{CHOSEN} It maximises F1; the bands are fixed."


def test_a_model_without_a_threshold_has_no_section_whatever_the_recipe_says() -> None:
    recipe = copy.copy(TOY.recipe)
    recipe.threshold_rule = "It maximises F1."
    card = render(dataclasses.replace(TOY, recipe=recipe), {"name": "toy", "version": "1"})
    assert "## Decision threshold" not in card
    assert "It maximises F1." not in card
