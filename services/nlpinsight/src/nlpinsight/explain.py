"""Exact, fast token attributions for the linear text pipeline of :mod:`nlpinsight.model`.

What is explained: the chosen class's CENTERED logit ``z_k - mean_j z_j`` with
``z = W @ x + b`` (the log-odds of class k against the geometric mean of all
classes). It is linear in the TF-IDF vector ``x``, so it splits exactly:

    output = (b_k - mean b) + sum_j (W_kj - mean_i W_ij) * x_j

Feature j's term is shared equally among the occurrences of its n-gram in the
text, and each occurrence's share goes to the original tokens its characters
cover, in proportion to the characters covered. Nothing is sampled or
approximated, so ``base_value + sum(contributions) == output_value`` up to
floating-point rounding (no SHAP KernelExplainer, no background data).

To know where each n-gram occurs, the vectorizers' analyzers are re-implemented
WITH character offsets (``word`` and ``char_wb`` analyzers, exactly as sklearn's
``_word_ngrams`` / ``_char_wb_ngrams`` enumerate them), on the normalised text
whose offsets map back into the original (the ``with_offsets`` of the normalisation the
vectorizers hold, :class:`~nlpinsight.model.Normalizer`, so offsets follow the model's own).
``x`` is recomputed from those counts the way ``TfidfTransformer`` does it, which
avoids sklearn's per-call validation overhead (~1 ms) and keeps one text well
under 2 ms. Tests prove the enumeration equals the vectorizer's nonzero features.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from nlpinsight.model import CASHTAG_PATTERN, URL_PATTERN, Normalizer, normalizer_of

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The words of the ORIGINAL text that receive attributions. Every non-space
#: character belongs to some token (the last alternative takes punctuation
#: runs), so every n-gram occurrence overlaps at least one token. A soft hyphen
#: or a zero-width character inside a word stays in it, as normalisation drops it.
TOKEN_PATTERN = re.compile(
    rf"(?P<url>{URL_PATTERN})"
    rf"|(?P<cashtag>{CASHTAG_PATTERN})"
    r"|[#@]\w+"  # hashtags, mentions
    r"|[$€£]?(?:(?<!\w)[+-])?\d+(?:[.,]\d+)*%?"  # $40, +3.5%, 49,000
    # words, Q4, don't (curly too), Tes<soft hyphen>la
    r"|\w+(?:(?:['\u2019]|[\u00ad\u200b-\u200d\u2060\ufeff]+)\w+)*"
    r"|(?P<punct>[^\w\s]+)"
)


class UnsupportedPipelineError(ValueError):
    """The pipeline is not one this module can attribute exactly."""


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


@dataclass(frozen=True, slots=True)
class _Block:
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
    #: texts, and the n-gram loop is most of the cost of a prediction; bounded by WORD_CACHE_SIZE.
    word_ngrams: dict[str, tuple[tuple[int, int, int], ...]] = field(default_factory=dict)


#: Distinct words whose char n-grams are kept per vectorizer (a few MB at most).
WORD_CACHE_SIZE = 50_000


@dataclass(slots=True)
class _Occurrences:
    """Known-feature occurrences of one block: global column and normalised span."""

    columns: list[int]
    begins: list[int]
    ends: list[int]


class LinearTextExplainer:
    """Precomputed state of one fitted pipeline; build once, call :meth:`explain` often."""

    def __init__(self, pipeline: Any) -> None:
        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) != 2:
            raise UnsupportedPipelineError("expected Pipeline([features, linear classifier])")
        features, classifier = steps[0][1], steps[1][1]
        self._blocks = _blocks(features)
        #: The normalisation the vectorizers hold: the explainer reads the text as they do.
        self.normalizer = _normalizer(features)
        coef = np.asarray(getattr(classifier, "coef_", None), dtype=np.float64)
        classes = getattr(classifier, "classes_", None)
        if coef.ndim != 2 or classes is None or coef.shape[0] != len(classes):
            raise UnsupportedPipelineError(
                "the classifier must be a fitted multinomial linear model with one "
                "coef_ row per class (a binary model has a single row)"
            )
        width = sum(len(block.vocabulary) for block in self._blocks)
        if coef.shape[1] != width:
            raise UnsupportedPipelineError(f"coef_ has {coef.shape[1]} columns, features {width}")
        intercept = np.asarray(classifier.intercept_, dtype=np.float64)
        # Centering is linear, so it is done once on the parameters, not per text.
        self.coef: FloatArray = coef - coef.mean(axis=0)
        self.intercept: FloatArray = intercept - intercept.mean()
        self.n_classes = int(coef.shape[0])
        # Kept to detect a refit of the same pipeline object (see explainer_for).
        # The preprocessors too: loading may settle a legacy model's normalisation after a first look.
        self._sources: tuple[object, ...] = (
            classifier.coef_,
            *_vocabularies(features),
            *_preprocessors(features),
        )

    def is_for(self, pipeline: Any) -> bool:
        """True while ``pipeline`` still holds the parameters this explainer copied."""
        features, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
        current = (getattr(classifier, "coef_", None), *_vocabularies(features), *_preprocessors(features))
        return len(current) == len(self._sources) and all(
            a is b for a, b in zip(current, self._sources, strict=True)
        )

    def explain(self, text: str, class_index: int | None = None) -> TextExplanation:
        """Attribute the centered logit of ``class_index`` (default: predicted) to tokens."""
        if class_index is not None and not 0 <= class_index < self.n_classes:
            raise ValueError(f"class_index must be in 0..{self.n_classes - 1}, got {class_index}")
        normalized = self.normalizer.with_offsets(text)
        columns: list[IntArray] = []
        values: list[FloatArray] = []
        occurrence_column: list[IntArray] = []  # index into the concatenated columns
        occurrence_start: list[int] = []
        occurrence_end: list[int] = []
        counts: list[IntArray] = []
        used = 0
        for block in self._blocks:
            found = _enumerate(block, normalized.text)
            if not found.columns:
                continue
            unique, inverse, count = np.unique(
                np.asarray(found.columns, dtype=np.int64), return_inverse=True, return_counts=True
            )
            columns.append(unique)
            values.append(_tfidf(block, unique, count))
            counts.append(count)
            occurrence_column.append(inverse.astype(np.int64) + used)
            used += len(unique)
            # Monotone offsets: normalised [i, j) comes from original [starts[i], ends[j-1]).
            occurrence_start.extend(normalized.starts[i] for i in found.begins)
            occurrence_end.extend(normalized.ends[j - 1] for j in found.ends)

        spans, is_punct = _tokens(text)
        if not columns:  # no known feature: every token 0, output == base
            return self._empty(text, spans, is_punct, class_index)

        column = np.concatenate(columns)
        x = np.concatenate(values)
        logits = self.intercept + self.coef[:, column] @ x
        k = int(np.argmax(logits)) if class_index is None else class_index
        per_feature = self.coef[k, column] * x
        per_occurrence_feature = np.concatenate(occurrence_column)
        share = (per_feature / np.concatenate(counts))[per_occurrence_feature]
        contribution, touched = _spread(
            len(text),
            spans,
            np.asarray(occurrence_start, dtype=np.int64),
            np.asarray(occurrence_end, dtype=np.int64),
            share,
        )
        tokens = [
            TokenContribution(text[s:e], s, e, float(c))
            for (s, e), punct, c, hit in zip(spans, is_punct, contribution, touched, strict=True)
            if hit or not punct
        ]
        return TextExplanation(
            class_index=k,
            base_value=float(self.intercept[k]),
            output_value=float(logits[k]),
            tokens=tokens,
        )

    def centered_logits(self, text: str) -> FloatArray:
        """``z - mean(z)`` of every class (``classes_`` order) for one text, without sklearn.

        The same features and tf-idf values as :meth:`explain` (so its ``output_value``
        is one entry of this), hence equal to the pipeline's ``decision_function``
        up to rounding; a softmax of it is ``predict_proba``. For one text it costs
        a tenth of a pipeline call, which spends most of its time validating input.
        """
        normalized = self.normalizer.text(text)
        columns: list[IntArray] = []
        values: list[FloatArray] = []
        for block in self._blocks:
            found = _enumerate(block, normalized)
            if not found.columns:
                continue
            unique, count = np.unique(np.asarray(found.columns, dtype=np.int64), return_counts=True)
            columns.append(unique)
            values.append(_tfidf(block, unique, count))
        if not columns:
            return self.intercept.copy()
        logits: FloatArray = self.intercept + self.coef[:, np.concatenate(columns)] @ np.concatenate(values)
        return logits

    def explain_batch(self, texts: Iterable[str], class_index: int | None = None) -> list[TextExplanation]:
        """:meth:`explain` for each text (the per-text work is already vectorised)."""
        return [self.explain(text, class_index) for text in texts]

    def _empty(
        self,
        text: str,
        spans: list[tuple[int, int]],
        is_punct: list[bool],
        class_index: int | None,
    ) -> TextExplanation:
        k = int(np.argmax(self.intercept)) if class_index is None else class_index
        base = float(self.intercept[k])
        tokens = [
            TokenContribution(text[s:e], s, e, 0.0)
            for (s, e), punct in zip(spans, is_punct, strict=True)
            if not punct
        ]
        return TextExplanation(class_index=k, base_value=base, output_value=base, tokens=tokens)


# ------------------------------------------------------------------ public helpers

_CACHE: weakref.WeakKeyDictionary[Any, LinearTextExplainer] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def explainer_for(pipeline: Any) -> LinearTextExplainer:
    """The cached explainer of ``pipeline``, rebuilt if the pipeline was refitted.

    Building copies the centered coefficients and the vocabularies (tens of ms);
    the cache makes :func:`explain_text` cheap in a loop. Weak keys: the cache
    never keeps a discarded model alive.
    """
    with _CACHE_LOCK:
        cached = _CACHE.get(pipeline)
    if cached is not None and cached.is_for(pipeline):
        return cached
    built = LinearTextExplainer(pipeline)
    with _CACHE_LOCK:
        _CACHE[pipeline] = built
    return built


def explain_text(pipeline: Any, text: str, class_index: int | None = None) -> TextExplanation:
    """Exact token attributions of the centered logit of ``class_index`` (default: predicted)."""
    return explainer_for(pipeline).explain(text, class_index)


def explain_batch(
    pipeline: Any, texts: Iterable[str], class_index: int | None = None
) -> list[TextExplanation]:
    """:func:`explain_text` for many texts (one explainer lookup)."""
    return explainer_for(pipeline).explain_batch(texts, class_index)


def enumerate_features(pipeline: Any, text: str) -> dict[int, int]:
    """Global feature column -> occurrence count, as the explainer sees ``text``.

    Exists so that tests can prove it equals the vectorizers' nonzero features.
    """
    explainer = explainer_for(pipeline)
    normalized = explainer.normalizer.text(text)
    counts: dict[int, int] = {}
    for block in explainer._blocks:
        for column in _enumerate(block, normalized).columns:
            counts[column] = counts.get(column, 0) + 1
    return counts


# ------------------------------------------------------------- pipeline reading


def _vectorizers(features: Any) -> list[tuple[Any, float]]:
    """``(vectorizer, weight)`` per block, in the column order of the features step."""
    transformer_list = getattr(features, "transformer_list", None)
    if transformer_list is None:
        return [(features, 1.0)]
    weights = getattr(features, "transformer_weights", None) or {}
    return [(t, float(weights.get(name, 1.0))) for name, t in transformer_list]


def _vocabularies(features: Any) -> list[object]:
    return [getattr(v, "vocabulary_", None) for v, _ in _vectorizers(features)]


def _preprocessors(features: Any) -> list[object]:
    return [getattr(v, "preprocessor", None) for v, _ in _vectorizers(features)]


def _normalizer(features: Any) -> Normalizer:
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


def _blocks(features: Any) -> list[_Block]:
    blocks: list[_Block] = []
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
            _Block(
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
    """Only settings whose analysis this module reproduces exactly are accepted."""
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


# ------------------------------------------------------------------ per text


def _enumerate(block: _Block, text: str) -> _Occurrences:
    """Known n-grams of normalised ``text`` with their spans, as sklearn counts them."""
    if block.analyzer == "char_wb":
        return _char_wb(text, block)
    assert block.token_pattern is not None  # set for every word block
    return _words(text, block)


def _char_wb(text: str, block: _Block) -> _Occurrences:
    """sklearn ``_char_wb_ngrams`` with offsets.

    Each whitespace-separated word is padded with one space on each side; the
    n-grams slide over the padded word, and a word not longer than n (padded)
    is counted once. The pads sit outside the word, so a span is clipped to it.
    """
    found = _Occurrences([], [], [])
    cache = block.word_ngrams
    position = 0
    for word in text.split():
        # str.split and the regex \s the vectorizer also applies agree on what is
        # whitespace, and the gap before `word` is whitespace: find is exact.
        begin = text.find(word, position)
        position = begin + len(word)
        ngrams = cache.get(word)
        if ngrams is None:
            ngrams = _word_char_ngrams(word, block.ngram_range, block.vocabulary)
            if len(cache) >= WORD_CACHE_SIZE:
                cache.clear()
            cache[word] = ngrams
        for column, lo, hi in ngrams:
            found.columns.append(column)
            found.begins.append(begin + lo)
            found.ends.append(begin + hi)
    return found


def _word_char_ngrams(
    word: str, ngram_range: tuple[int, int], vocabulary: dict[str, int]
) -> tuple[tuple[int, int, int], ...]:
    """Known char_wb n-grams of one word: (column, begin, end) relative to the word."""
    out = []
    min_n, max_n = ngram_range
    lookup = vocabulary.get
    padded = f" {word} "
    size = len(padded)
    last = len(word)
    for n in range(min_n, max_n + 1):
        for offset in range(max(1, size - n + 1)):
            column = lookup(padded[offset : offset + n])
            if column is not None:
                lo = min(max(offset - 1, 0), last - 1)
                hi = max(min(offset + n - 1, last), lo + 1)
                out.append((column, lo, hi))
        if size <= n:  # sklearn: "count a short word (w_len < n) only once"
            break
    return tuple(out)


def _words(text: str, block: _Block) -> _Occurrences:
    """sklearn ``token_pattern.findall`` + stop words + ``_word_ngrams``, with offsets."""
    pattern = block.token_pattern
    assert pattern is not None
    group = 1 if pattern.groups == 1 else 0  # findall returns group 1 if there is one
    words: list[str] = []
    begins: list[int] = []
    ends: list[int] = []
    for match in pattern.finditer(text):
        word = match.group(group) or ""
        if block.stop_words is not None and word in block.stop_words:
            continue
        begin, end = match.span(group) if match.start(group) >= 0 else match.span()
        words.append(word)
        begins.append(begin)
        ends.append(end)
    found = _Occurrences([], [], [])
    lookup = block.vocabulary.get
    min_n, max_n = block.ngram_range
    for n in range(min_n, min(max_n, len(words)) + 1):
        for i in range(len(words) - n + 1):
            column = lookup(words[i] if n == 1 else " ".join(words[i : i + n]))
            if column is not None:
                found.columns.append(column)
                found.begins.append(begins[i])
                found.ends.append(ends[i + n - 1])
    return found


def _tfidf(block: _Block, columns: IntArray, counts: IntArray) -> FloatArray:
    """TfidfTransformer.transform for one row: tf -> (1 + log tf) -> * idf -> norm."""
    values = np.ones(len(counts)) if block.binary else counts.astype(np.float64)
    if block.sublinear_tf:
        values = np.log(values) + 1.0
    if block.idf is not None:
        values = values * block.idf[columns]
    if block.norm == "l2":
        scale = float(np.sqrt(np.dot(values, values)))
    elif block.norm == "l1":
        scale = float(np.abs(values).sum())
    else:
        scale = 1.0
    if scale > 0.0:
        values = values / scale
    return values * block.weight


def _tokens(text: str) -> tuple[list[tuple[int, int]], list[bool]]:
    """Token spans of the original text and whether each is punctuation."""
    spans: list[tuple[int, int]] = []
    is_punct: list[bool] = []
    for match in TOKEN_PATTERN.finditer(text):
        spans.append(match.span())
        is_punct.append(match.lastgroup == "punct")
    return spans, is_punct


def _spread(
    length: int,
    spans: list[tuple[int, int]],
    starts: IntArray,
    ends: IntArray,
    share: FloatArray,
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Give each occurrence's share to the tokens it overlaps, per character overlapped.

    Vectorised: every occurrence spreads ``share / token characters covered``
    uniformly over its span (a difference array + cumsum), and each token sums
    its characters. Returns per-token contribution and whether any occurrence
    touched the token.
    """
    owner = np.full(length, -1, dtype=np.int64)
    for index, (s, e) in enumerate(spans):
        owner[s:e] = index
    inside = owner >= 0
    covered = np.concatenate(([0], np.cumsum(inside)))
    chars = covered[ends] - covered[starts]
    orphans = np.flatnonzero(chars == 0)
    if len(orphans):
        # Only reachable with exotic analyzers: move such an occurrence onto the
        # nearest token so that the sum stays exact.
        if not spans:
            raise ValueError("text has features but no tokens")
        token_starts = np.array([s for s, _ in spans])
        token_ends = np.array([e for _, e in spans])
        for o in orphans:
            gap = np.maximum(token_starts - ends[o], starts[o] - token_ends)
            nearest = int(np.argmin(gap))
            starts[o], ends[o] = token_starts[nearest], token_ends[nearest]
        chars = covered[ends] - covered[starts]
    density = share / chars
    size = length + 1
    per_char = np.cumsum(
        np.bincount(starts, weights=density, minlength=size)
        - np.bincount(ends, weights=density, minlength=size)
    )[:length]
    hits = np.cumsum(np.bincount(starts, minlength=size) - np.bincount(ends, minlength=size))[:length]
    owned = owner[inside]
    contribution = np.bincount(owned, weights=per_char[inside], minlength=len(spans))
    touched = np.bincount(owned, weights=hits[inside], minlength=len(spans)) > 0
    return contribution.astype(np.float64), touched
