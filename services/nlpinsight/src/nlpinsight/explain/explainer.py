"""The explainer of one fitted pipeline: its centered coefficients, and the attribution of a text.

Per text: the known n-grams of each block (:mod:`nlpinsight.explain.ngrams`), their
TF-IDF values (:mod:`nlpinsight.explain.tfidf`), each feature's term of the centered
logit shared among its occurrences and spread over the tokens they cover
(:mod:`nlpinsight.explain.tokens`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from nlpinsight.explain.arrays import FloatArray, IntArray
from nlpinsight.explain.ngrams import enumerate_ngrams
from nlpinsight.explain.results import TextExplanation, TokenContribution, UnsupportedPipelineError
from nlpinsight.explain.tfidf import tfidf
from nlpinsight.explain.tokens import spread, token_spans
from nlpinsight.explain.vectorizers import blocks, normalizer, preprocessors, vocabularies


class LinearTextExplainer:
    """Precomputed state of one fitted pipeline; build once, call :meth:`explain` often."""

    def __init__(self, pipeline: Any) -> None:
        steps = getattr(pipeline, "steps", None)
        if not steps or len(steps) != 2:
            raise UnsupportedPipelineError("expected Pipeline([features, linear classifier])")
        features, classifier = steps[0][1], steps[1][1]
        self._blocks = blocks(features)
        #: The normalisation the vectorizers hold: the explainer reads the text as they do.
        self.normalizer = normalizer(features)
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
        # Kept to detect a refit of the same pipeline object (see cached.explainer_for).
        # The preprocessors too: loading may settle a legacy model's normalisation after a first look.
        self._sources: tuple[object, ...] = (
            classifier.coef_,
            *vocabularies(features),
            *preprocessors(features),
        )

    def is_for(self, pipeline: Any) -> bool:
        """True while ``pipeline`` still holds the parameters this explainer copied."""
        features, classifier = pipeline.steps[0][1], pipeline.steps[1][1]
        current = (getattr(classifier, "coef_", None), *vocabularies(features), *preprocessors(features))
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
            found = enumerate_ngrams(block, normalized.text)
            if not found.columns:
                continue
            unique, inverse, count = np.unique(
                np.asarray(found.columns, dtype=np.int64), return_inverse=True, return_counts=True
            )
            columns.append(unique)
            values.append(tfidf(block, unique, count))
            counts.append(count)
            occurrence_column.append(inverse.astype(np.int64) + used)
            used += len(unique)
            # Monotone offsets: normalised [i, j) comes from original [starts[i], ends[j-1]).
            occurrence_start.extend(normalized.starts[i] for i in found.begins)
            occurrence_end.extend(normalized.ends[j - 1] for j in found.ends)

        spans, is_punct = token_spans(text)
        if not columns:  # no known feature: every token 0, output == base
            return self._empty(text, spans, is_punct, class_index)

        column = np.concatenate(columns)
        x = np.concatenate(values)
        logits = self.intercept + self.coef[:, column] @ x
        k = int(np.argmax(logits)) if class_index is None else class_index
        per_feature = self.coef[k, column] * x
        per_occurrence_feature = np.concatenate(occurrence_column)
        share = (per_feature / np.concatenate(counts))[per_occurrence_feature]
        contribution, touched = spread(
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
            found = enumerate_ngrams(block, normalized)
            if not found.columns:
                continue
            unique, count = np.unique(np.asarray(found.columns, dtype=np.int64), return_counts=True)
            columns.append(unique)
            values.append(tfidf(block, unique, count))
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
