"""What an explanation returns, and the error for a pipeline that cannot be explained exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


class UnsupportedPipelineError(ValueError):
    """The pipeline is not one this package can attribute exactly."""


@dataclass(frozen=True, slots=True)
class TokenContribution:
    """One token of the original text: ``text[start:end] == token``."""

    token: str
    start: int
    end: int
    contribution: float


@dataclass(frozen=True, slots=True)
class TextExplanation:
    """``base_value + sum(t.contribution for t in tokens) == output_value``.

    ``class_index`` indexes ``pipeline.classes_`` (for the nlpinsight model that
    is the label code into :data:`nlpinsight.data.LABELS`). Punctuation tokens
    appear only when some feature touches them.
    """

    class_index: int
    base_value: float
    output_value: float
    tokens: list[TokenContribution]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)
