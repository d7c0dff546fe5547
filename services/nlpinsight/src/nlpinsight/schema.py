"""Request and response of the NLPInsight service: the ``text`` column of the real file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

#: Longest accepted text, in characters after stripping (the real tweets have at most ~300).
MAX_TEXT_CHARS = 5000

EXAMPLES: list[dict[str, str]] = [
    {"text": "$NFLX - Netflix plunges 12% after subscriber growth misses estimates https://t.co/aBc123XyZ"},
    {"text": "Nvidia upgraded to Buy at Goldman Sachs, price target raised to $300"},
    {"text": "Ford to hold annual shareholder meeting on May 12"},
]

Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS),
    Field(
        description=(
            "A short financial text (a tweet or a headline), 1-5,000 characters after "
            "leading and trailing whitespace is stripped; blank text is rejected. Token "
            "offsets of an explanation index into the stripped text."
        ),
    ),
]


class FinancialText(BaseModel):
    """One text to classify; the field name is the column of sent_train.csv."""

    # strict: a number is not a text; unknown fields are an error, not ignored.
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [dict(example) for example in EXAMPLES]},
    )

    text: Text


def _probability(label: str) -> object:
    return Field(ge=0, le=1, description=f"Probability that the text is {label}")


class ClassProbabilities(BaseModel):
    """One probability per label; they sum to 1."""

    bearish: float = _probability("bearish")  # type: ignore[assignment]
    bullish: float = _probability("bullish")  # type: ignore[assignment]
    neutral: float = _probability("neutral")  # type: ignore[assignment]


class SentimentPrediction(BaseModel):
    label: Literal["bearish", "bullish", "neutral"] = Field(description="The most probable sentiment")
    probabilities: ClassProbabilities = Field(description="Probability of each label")
    known_word_share: float = Field(
        ge=0,
        le=1,
        description=(
            "Share of the text's words the model has a word weight for (0 for a text with no word). "
            "Low, the label rests on character fragments alone: a topic, a language or a spelling "
            "the model never saw; treat such an answer with care"
        ),
    )
