"""The feature step of a fitted pipeline, read into one :class:`Block` per TF-IDF vectorizer.

Only vectorizers whose analysis the package reproduces exactly are accepted
(:func:`_check_vectorizer`); anything else is an :class:`UnsupportedPipelineError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nlpinsight.explain.arrays import FloatArray
from nlpinsight.explain.results import UnsupportedPipelineError
from nlpinsight.model import Normalizer, normalizer_of


@dataclass(frozen=True, slots=True)
class Block:
    """One TF-IDF vectorizer of the feature union, reduced to what ``x`` needs."""

    analyzer: str  # "word" or "char_wb"
    ngram_range: tuple[int, int]
    token_pattern: re.Pattern[str] | None
    stop_words: frozenset[str] | None
    vocabulary: dict[str, int]  # term -> GLOBAL column of the union
    idf: FloatArray | None  # indexed by GLOBAL column
    sublinear_tf: bool
    binary: bool
    norm: str | None
    weight: float
    #: char_wb n-grams of a word: (column, begin, end) within the word. Words recur across
    #: texts, and the n-gram loop is most of the cost of a prediction; bounded by WORD_CACHE_SIZE
    #: (:mod:`nlpinsight.explain.ngrams`, which fills it).
    word_ngrams: dict[str, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)


def _vectorizers(features: Any) -> list[tuple[Any, float]]:
    """``(vectorizer, weight)`` per block, in the column order of the features step."""
    transformer_list = getattr(features, "transformer_list", None)
    if transformer_list is None:
        return [(features, 1.0)]
    weights = getattr(features, "transformer_weights", None) or {}
    return [(t, float(weights.get(name, 1.0))) for name, t in transformer_list]


def vocabularies(features: Any) -> list[object]:
    return [getattr(v, "vocabulary_", None) for v, _ in _vectorizers(features)]


def preprocessors(features: Any) -> list[object]:
    return [getattr(v, "preprocessor", None) for v, _ in _vectorizers(features)]


def normalizer(features: Any) -> Normalizer:
    """The one normalisation every vectorizer holds (``_check_vectorizer`` has vouched for each)."""
    found = {normalizer_of(v.preprocessor) for v, _ in _vectorizers(features)}
    if len(found) != 1:
        versions = ", ".join(sorted(n.version for n in found if n is not None))
        raise UnsupportedPipelineError(
            f"cannot explain exactly: the vectorizers normalise differently ({versions})"
        )
    (normalizer,) = found
    assert normalizer is not None
    return normalizer


def blocks(features: Any) -> list[Block]:
    blocks: list[Block] = []
    offset = 0
    for vectorizer, weight in _vectorizers(features):
        _check_vectorizer(vectorizer)
        vocabulary = {term: offset + int(i) for term, i in vectorizer.vocabulary_.items()}
        width = len(vocabulary)
        idf: FloatArray | None = None
        if vectorizer.use_idf:
            idf = np.zeros(offset + width, dtype=np.float64)
            idf[offset:] = np.asarray(vectorizer.idf_, dtype=np.float64)
        stop = vectorizer.get_stop_words()
        blocks.append(
            Block(
                analyzer=vectorizer.analyzer,
                ngram_range=(int(vectorizer.ngram_range[0]), int(vectorizer.ngram_range[1])),
                token_pattern=(
                    re.compile(vectorizer.token_pattern) if vectorizer.analyzer == "word" else None
                ),
                stop_words=frozenset(stop) if stop is not None else None,
                vocabulary=vocabulary,
                idf=idf,
                sublinear_tf=bool(vectorizer.sublinear_tf),
                binary=bool(vectorizer.binary),
                norm=vectorizer.norm,
                weight=weight,
            )
        )
        offset += width
    return blocks


def _check_vectorizer(vectorizer: Any) -> None:
    """Only settings whose analysis this package reproduces exactly are accepted."""
    problems = []
    if not hasattr(vectorizer, "vocabulary_") or not hasattr(vectorizer, "sublinear_tf"):
        problems.append("not a fitted TfidfVectorizer")
    else:
        if vectorizer.analyzer not in ("word", "char_wb"):
            problems.append(f"analyzer {vectorizer.analyzer!r} (need 'word' or 'char_wb')")
        if normalizer_of(vectorizer.preprocessor) is None:
            problems.append("preprocessor is none of nlpinsight.model's normalisations (NORMALIZERS)")
        if vectorizer.tokenizer is not None:
            problems.append("a custom tokenizer")
        if vectorizer.input != "content":
            problems.append(f"input={vectorizer.input!r}")
        if vectorizer.norm not in ("l1", "l2", None):
            problems.append(f"norm={vectorizer.norm!r}")
        if vectorizer.analyzer == "word":
            pattern = re.compile(vectorizer.token_pattern)
            # Empty tokens would have no characters to attribute to.
            if pattern.groups > 1 or pattern.fullmatch("") is not None:
                problems.append("a token_pattern with groups or matching the empty string")
    if problems:
        raise UnsupportedPipelineError("cannot explain exactly: " + "; ".join(problems))
