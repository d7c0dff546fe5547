from __future__ import annotations

import math
import re

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from nlpinsight import data, model
from nlpinsight.explain import ngrams
from nlpinsight.explain.cached import enumerate_features, explain_batch, explain_text, explainer_for
from nlpinsight.explain.ngrams import Occurrences, enumerate_ngrams
from nlpinsight.explain.results import UnsupportedPipelineError
from nlpinsight.explain.tfidf import tfidf
from nlpinsight.explain.tokens import spread
from nlpinsight.explain.vectorizers import Block

# Texts that stress offsets: URLs, cashtags, newlines, tabs, odd whitespace,
# case-changing unicode, emoji, typographic quotes, punctuation-only words.
EDGE_TEXTS = [
    "$TSLA - Tesla beats estimates https://t.co/AbCdEf123 #stocks",
    "$BRK.B $AAPL $SPY: Goldman upgrades\n\nto Buy https://t.co/x https://t.co/y",
    "CITRON SAYS IT'S LONG ON LUCKIN COFFEE\r\n\r\nMW vs CItron",
    # Turkish dotted capital I, Greek capitals (final sigma), emoji, a curly quote.
    "\u0130STANBUL borsas\u0131 d\u00fc\u015ft\u00fc \u2014 \u039f\u0394\u039f\u03a3 "
    "caf\u00e9 \U0001f680\U0001f680 don\u2019t panic!!!",
    "tabs\tand\u00a0no-break\u3000ideographic\x1cseparator\u200bzero-width",
    "Shares +12.5% to $40.25 (Q4 2019) ... 49,000 barrels/day",
    "   leading and trailing whitespace   ",
    "-- !! ?? ...",
    "a",
    "www.example.com/path?q=1 rallies",
    # Compatibility forms (NFKC changes lengths) and invisible characters inside words.
    "\U0001d47b\U0001d486\U0001d494\U0001d48d\U0001d482 "
    "\U0001d494\U0001d495\U0001d490\U0001d484\U0001d48c plunges",
    "\uff34\uff45\uff53\uff4c\uff41 \uff04\uff34\uff33\uff2c\uff21 "
    "\uff53\uff4f\uff41\uff52\uff53 \uff11\uff12\uff05",
    "\ufb01nal \u00bd e\u0301te Tes\u00adla\u200bsoars \ufeff\u2060 \u1100\u1161\u11a8",
]


def centered_logits(pipeline: Pipeline, texts: list[str]) -> npt.NDArray[np.float64]:
    scores: npt.NDArray[np.float64] = np.asarray(pipeline.decision_function(texts), dtype=np.float64)
    centered: npt.NDArray[np.float64] = scores - scores.mean(axis=1, keepdims=True)
    return centered


def check(
    pipeline: Pipeline, text: str, centered: npt.NDArray[np.float64], class_index: int | None = None
) -> None:
    """Every promise of an explanation, for one text."""
    result = explain_text(pipeline, text, class_index)
    expected_class = int(np.argmax(centered)) if class_index is None else class_index
    assert result.class_index == expected_class
    # The explained output IS the centered logit of the pipeline's decision function.
    assert abs(result.output_value - centered[expected_class]) <= 1e-9
    total = result.base_value + math.fsum(t.contribution for t in result.tokens)
    assert math.isclose(total, result.output_value, rel_tol=1e-6, abs_tol=1e-9)
    ends = 0
    for token in result.tokens:
        assert text[token.start : token.end] == token.token
        assert token.start >= ends  # ordered, not overlapping
        ends = token.end
        assert token.token.strip() == token.token != ""


def check_enumeration(pipeline: Pipeline, text: str) -> None:
    """The explainer's n-gram occurrences are exactly the vectorizers' nonzero features."""
    row = pipeline.named_steps["features"].transform([text]).tocsr()
    columns = enumerate_features(pipeline, text)
    assert set(columns) == set(row.indices.tolist()), text
    # The counts too: the explainer's own tf-idf values equal the vectorizers'.
    explainer = explainer_for(pipeline)
    ours = np.zeros(row.shape[1])
    for block in explainer._blocks:
        found = enumerate_ngrams(block, model.normalize_text(text))
        if found.columns:
            unique, counts = np.unique(found.columns, return_counts=True)
            ours[unique] = tfidf(block, unique, counts)
    np.testing.assert_allclose(ours, row.toarray()[0], rtol=0, atol=1e-12)


# ---------------------------------------------------------------- synthetic model


def test_additivity_and_spans_on_300_synthetic_texts(
    synthetic_pipeline: Pipeline, synthetic_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    texts = synthetic_split[1][data.TEXT].tolist()[:300]
    for text, centered in zip(texts, centered_logits(synthetic_pipeline, texts), strict=True):
        check(synthetic_pipeline, text, centered)


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_edge_texts_for_every_class(synthetic_pipeline: Pipeline, text: str) -> None:
    centered = centered_logits(synthetic_pipeline, [text])[0]
    for class_index in (None, 0, 1, 2):
        check(synthetic_pipeline, text, centered, class_index)
    check_enumeration(synthetic_pipeline, text)


def test_enumeration_equals_vectorizer_features_on_synthetic_texts(
    synthetic_pipeline: Pipeline, synthetic_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    for text in synthetic_split[1][data.TEXT].tolist()[:200]:
        check_enumeration(synthetic_pipeline, text)


class AnyTerm(dict[str, int]):
    """A vocabulary that knows every term, numbering them in order of first lookup."""

    def get(self, term: str, default: object = None) -> int:
        return self.setdefault(term, len(self))


def bare_block(
    analyzer: str,
    ngram_range: tuple[int, int],
    vocabulary: AnyTerm,
    token_pattern: re.Pattern[str] | None = None,
    stop_words: frozenset[str] | None = None,
) -> Block:
    """A vectorizer block with no weighting: only its n-gram enumeration is under test."""
    return Block(
        analyzer=analyzer,
        ngram_range=ngram_range,
        token_pattern=token_pattern,
        stop_words=stop_words,
        vocabulary=vocabulary,
        idf=None,
        sublinear_tf=False,
        binary=False,
        norm=None,
        weight=1.0,
    )


def spans(found: Occurrences, vocabulary: AnyTerm, text: str) -> list[tuple[str, str]]:
    """(n-gram, the text it was attributed to) per occurrence."""
    terms = {v: k for k, v in vocabulary.items()}
    return [(terms[c], text[b:e]) for c, b, e in zip(found.columns, found.begins, found.ends, strict=True)]


def test_char_wb_occurrences_cover_the_right_characters() -> None:
    vocabulary = AnyTerm()
    text = "ab  c?"
    block = bare_block("char_wb", (2, 4), vocabulary)
    found = ngrams._char_wb(text, block)
    # A second pass is served from the per-word cache and must find the same occurrences.
    assert spans(ngrams._char_wb(text, block), vocabulary, text) == spans(found, vocabulary, text)
    assert spans(found, vocabulary, text) == [
        (" a", "a"),
        ("ab", "ab"),
        ("b ", "b"),
        (" ab", "ab"),
        ("ab ", "ab"),
        (" ab ", "ab"),  # the whole padded word: counted once, then sklearn stops
        (" c", "c"),
        ("c?", "c?"),
        ("? ", "?"),
        (" c?", "c?"),
        ("c? ", "c?"),
        (" c? ", "c?"),
    ]


def test_word_occurrences_cover_the_right_characters() -> None:
    vocabulary = AnyTerm()
    block = bare_block("word", (1, 2), vocabulary, re.compile(r"(?u)\b\w\w+\b"), frozenset({"the"}))
    text = "up a the  down!"
    assert spans(ngrams._words(text, block), vocabulary, text) == [
        ("up", "up"),
        ("down", "down"),
        ("up down", "up a the  down"),  # stop words and 1-char words are skipped first
    ]


def test_a_word_bigram_is_shared_by_characters_and_punctuation_only_when_touched() -> None:
    text = "ab, cdef !"
    spans_ = [(0, 2), (2, 3), (4, 8), (9, 10)]
    starts = np.array([0, 9], dtype=np.int64)  # "ab, cdef" and "!"
    ends = np.array([8, 10], dtype=np.int64)
    contribution, touched = spread(len(text), spans_, starts, ends, np.array([7.0, 1.0]))
    np.testing.assert_allclose(contribution, [2.0, 1.0, 4.0, 1.0])
    assert touched.tolist() == [True, True, True, True]
    contribution, touched = spread(len(text), spans_, starts[:1], ends[:1], np.array([7.0]))
    assert touched.tolist() == [True, True, True, False]
    # An occurrence over no token character (only whitespace) goes to the nearest token.
    contribution, _ = spread(len(text), spans_, np.array([8]), np.array([9]), np.array([1.5]))
    assert math.fsum(contribution) == 1.5


def test_centered_outputs_of_all_classes_sum_to_zero(synthetic_pipeline: Pipeline) -> None:
    text = "$AAPL - Apple beats estimates but cuts guidance https://t.co/q"
    outputs = [explain_text(synthetic_pipeline, text, k).output_value for k in range(3)]
    assert math.fsum(outputs) == pytest.approx(0.0, abs=1e-12)


def test_tokens_carry_the_signal_we_expect(synthetic_pipeline: Pipeline) -> None:
    text = "$NFLX - Netflix plunges 12.1% after earnings https://t.co/abc"
    result = explain_text(synthetic_pipeline, text)
    assert result.class_index == data.LABELS.index("bearish")
    top = max(result.tokens, key=lambda t: t.contribution)
    assert top.token == "plunges"
    assert {t.token for t in result.tokens} >= {"$NFLX", "Netflix", "12.1%", "https://t.co/abc"}


def test_text_without_known_features_gets_zero_contributions(
    synthetic_pipeline: Pipeline,
) -> None:
    for text in ["", "ꙮꙮꙮ ꙮꙮ", "   \n\t "]:
        result = explain_text(synthetic_pipeline, text)
        assert enumerate_features(synthetic_pipeline, text) == {}
        centered = centered_logits(synthetic_pipeline, [text])[0]
        assert result.class_index == int(np.argmax(centered))
        assert result.output_value == result.base_value
        assert result.base_value == pytest.approx(centered[result.class_index], abs=1e-12)
        assert all(t.contribution == 0.0 for t in result.tokens)
    assert [t.token for t in explain_text(synthetic_pipeline, "ꙮꙮꙮ ꙮꙮ").tokens] == [
        "ꙮꙮꙮ",
        "ꙮꙮ",
    ]


def test_batch_equals_a_loop_and_class_index_is_checked(synthetic_pipeline: Pipeline) -> None:
    texts = EDGE_TEXTS[:4]
    batch = explain_batch(synthetic_pipeline, texts)
    assert batch == [explain_text(synthetic_pipeline, t) for t in texts]
    assert batch[0].to_dict()["tokens"][0].keys() == {"token", "start", "end", "contribution"}
    with pytest.raises(ValueError, match="class_index"):
        explain_text(synthetic_pipeline, "x", class_index=3)


def test_cache_is_reused_and_rebuilt_after_a_refit() -> None:
    frame = data.generate(600, seed=11)
    pipeline = model.fit(frame)
    first = explainer_for(pipeline)
    assert explainer_for(pipeline) is first
    other = data.generate(600, seed=12)
    pipeline.fit(other[data.TEXT].tolist(), other[data.TARGET])
    assert explainer_for(pipeline) is not first
    text = "Ford raises guidance"
    check(pipeline, text, centered_logits(pipeline, [text])[0])


def test_unsupported_pipelines_are_refused() -> None:
    texts = ["up up", "down down", "flat"]
    labels = [1, 0, 2]
    char = Pipeline(
        [
            ("features", TfidfVectorizer(analyzer="char", preprocessor=model.normalize_text)),
            ("clf", LogisticRegression()),
        ]
    ).fit(texts, labels)
    with pytest.raises(UnsupportedPipelineError, match="analyzer 'char'"):
        explain_text(char, "up")
    default_pre = Pipeline([("features", TfidfVectorizer()), ("clf", LogisticRegression())]).fit(
        texts, labels
    )
    with pytest.raises(UnsupportedPipelineError, match="preprocessor"):
        explain_text(default_pre, "up")


def test_a_single_vectorizer_pipeline_is_supported_too() -> None:
    frame = data.generate(600, seed=5)
    pipeline = Pipeline(
        [
            (
                "features",
                TfidfVectorizer(preprocessor=model.normalize_text, ngram_range=(2, 3), sublinear_tf=False),
            ),
            ("clf", LogisticRegression(max_iter=500)),
        ]
    ).fit(frame[data.TEXT].tolist(), frame[data.TARGET])
    texts = frame[data.TEXT].tolist()[:50] + EDGE_TEXTS
    for text, centered in zip(texts, centered_logits(pipeline, texts), strict=True):
        check(pipeline, text, centered)


def test_matches_shap_linear_explainer_with_a_zero_background(
    synthetic_pipeline: Pipeline,
) -> None:
    import shap  # a dev dependency of the workspace; imported late because it is slow

    text = "upgraded"  # one token: it must receive the whole SHAP sum
    explainer = explainer_for(synthetic_pipeline)
    k = 1
    x = synthetic_pipeline.named_steps["features"].transform([text]).toarray()
    background = np.zeros((1, x.shape[1]))
    reference = shap.LinearExplainer(
        (explainer.coef[k], explainer.intercept[k]), shap.maskers.Independent(background)
    )
    values = reference.shap_values(x)[0]
    result = explain_text(synthetic_pipeline, text, class_index=k)
    assert len(result.tokens) == 1
    assert result.tokens[0].contribution == pytest.approx(values.sum(), rel=1e-9)
    assert result.base_value == pytest.approx(float(reference.expected_value), rel=1e-9)


# ---------------------------------------------------------------------- real model


@pytest.mark.realdata
def test_additivity_on_500_real_texts(
    real_pipeline: Pipeline, real_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    texts = real_split[1][data.TEXT].tolist()[:500]
    for text, centered in zip(texts, centered_logits(real_pipeline, texts), strict=True):
        check(real_pipeline, text, centered)


@pytest.mark.realdata
def test_enumeration_equals_vectorizer_features_on_real_texts(
    real_pipeline: Pipeline, real_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    test = real_split[1]
    # All texts with newlines or non-ASCII characters, plus a plain sample.
    text = test[data.TEXT]
    tricky = text[text.str.contains("\n") | text.map(lambda t: not t.isascii())]
    assert len(tricky) > 50
    for sample in [*tricky.tolist(), *text.tolist()[:300], *EDGE_TEXTS]:
        check_enumeration(real_pipeline, sample)
