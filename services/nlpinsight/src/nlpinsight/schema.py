"""Request and response of the NLPInsight service: the ``text`` column of the real file."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from nlpinsight.text import MAX_TEXT_CHARS, text_problem

EXAMPLES: list[dict[str, str]] = [
    {"text": "$NFLX - Netflix plunges 12% after subscriber growth misses estimates https://t.co/aBc123XyZ"},
    {"text": "Nvidia upgraded to Buy at Goldman Sachs, price target raised to $300"},
    {"text": "Ford to hold annual shareholder meeting on May 12"},
]

#: Units of a token's offsets: what a client slices the text it sent with.
OFFSETS_NOTE = (
    "Token offsets of an explanation index into the text as sent, leading whitespace included: "
    "start/end count Unicode code points (Python, Rust chars), start_utf16/end_utf16 count UTF-16 "
    "code units (JavaScript, Java, C#)."
)


def _check_text(text: str) -> str:
    # Kept as sent, not stripped: explanations point into it (OFFSETS_NOTE).
    problem = text_problem(text)
    if problem:
        raise ValueError(problem)
    return text


Text = Annotated[
    str,
    AfterValidator(_check_text),
    Field(
        description=(
            "A short financial text (a tweet or a headline), at most 5,000 characters as sent, "
            "whitespace included, and as the model reads it (in Unicode compatibility form, NFKC); "
            "a text with no visible character "
            f"(blank, or only zero-width or control characters) is rejected. {OFFSETS_NOTE}"
        ),
        # Enforced by _check_text on the stripped text; stated for generated clients.
        json_schema_extra={"minLength": 1, "maxLength": MAX_TEXT_CHARS},
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


Label = Literal["bearish", "bullish", "neutral"]


class TokenBody(BaseModel):
    """One occurrence of a word (or of punctuation a feature touched) in the text, with its share."""

    token: str = Field(description="The token as written: text[start:end] of the text as sent")
    start: int = Field(ge=0, description="Offset of its first character, in Unicode code points")
    end: int = Field(ge=0, description="Offset just past its last character, in Unicode code points")
    start_utf16: int = Field(
        ge=0, description="start in UTF-16 code units: JavaScript's text.slice(start_utf16, end_utf16)"
    )
    end_utf16: int = Field(ge=0, description="end in UTF-16 code units")
    contribution: float = Field(
        description="Its share of output_value - base_value; positive favours the label"
    )


class SentimentExplanation(BaseModel):
    """Exact token attributions of the predicted label's centered logit (``GET /model``'s
    explanation_method says how); the fields of every service's explanation, and the tokens."""

    scale: str = Field(description="centered logit of the predicted label")
    base_value: float = Field(
        description=(
            "The label's centered intercept, b_label - mean over the labels of b: the output for a "
            "text with no known feature, where the contributions start from (not an average output)"
        )
    )
    output_value: float = Field(
        description="log p(label) - mean over the labels of log p; base_value + sum(contributions)"
    )
    contributions: dict[str, float] = Field(
        description=(
            "Contribution per word, summed over its occurrences; occurrences that differ only in "
            "case or Unicode form (UP, up, a fullwidth or bold up) are one word, under its first spelling"
        )
    )
    label: Label = Field(description="The explained label: the predicted one")
    tokens: list[TokenBody] = Field(description=f"Every occurrence, in text order. {OFFSETS_NOTE}")


class SentimentPrediction(BaseModel):
    #: The explanation's schema in the OpenAPI document (``servekit.rest.schemas.explanation_body``).
    explanation_model: ClassVar[type[BaseModel]] = SentimentExplanation

    label: Label = Field(description="The most probable sentiment")
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
