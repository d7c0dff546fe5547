"""The NLPInsight training recipe and served model: how :mod:`nlpinsight.model` plugs into servekit.

Explanations are exact token attributions (:mod:`nlpinsight.explain`) of the
predicted label's CENTERED logit, ``log p(label) - mean_k log p(k)``. In a
response, ``contributions`` sums them per word (a mapping needs unique keys;
spellings that differ only in case or Unicode form are one word) and ``tokens``
lists every occurrence with its span in the text as sent, in code points and in
UTF-16 code units (what a browser slices with).

The Prometheus attribution metric needs a bounded label set, and raw tokens are
user input. So ``attributions`` groups |contribution| by a fixed vocabulary: the
:data:`ATTRIBUTION_TERMS` normalised terms with the largest mean |contribution|
on the training texts (chosen at training, stored in the model's metadata), and
:data:`OTHER` for every other token.

The model is served with the text normalisation it was fitted with
(:func:`nlpinsight.model.resolve_preprocessing`, which servekit's loader runs through
:meth:`SentimentRecipe.loaded`), named in ``GET /model``'s ``preprocessing`` and on the
card; loading logs which and why (at INFO when settled from a legacy file's vocabularies).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import softmax
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from nlpinsight import data, model
from nlpinsight.explain.explainer import LinearTextExplainer
from nlpinsight.text import read_length
from servekit.datasets import DatasetError, refuse_lines
from servekit.model import Explanation, ModelArtifact, Record, ServedModel
from servekit.redaction import redact
from servekit.training.recipe import TrainingRecipe

#: Size of the fixed vocabulary of the attribution metric (plus :data:`OTHER`).
ATTRIBUTION_TERMS = 20
#: The group of every token outside that vocabulary. Parentheses are never part
#: of a token, so no term can collide with it.
OTHER = "(other)"
#: Training texts explained to choose the vocabulary.
TERM_SAMPLE_ROWS = 2000

logger = logging.getLogger(__name__)


def which_model(artifact: ModelArtifact) -> str:
    """``nlpinsight version 3``; a model from no registry by its URI (credentials masked)."""
    if artifact.version.isdigit():
        return f"{artifact.name} version {artifact.version}"
    return f"{artifact.name} model {redact(artifact.uri)}" if artifact.uri else f"{artifact.name} model"


def term_of(token: str, normalizer: model.Normalizer = model.CURRENT) -> str:
    """The normalised form of a token (``$TSLA`` -> ``_cashtag_``, ``12.5%`` -> ``00.0%``)."""
    return normalizer.text(token).strip()


def top_terms(explainer: LinearTextExplainer, texts: Sequence[str], k: int) -> list[str]:
    """The ``k`` terms with the largest mean |contribution| over ``texts`` (ties by name)."""
    totals: dict[str, float] = {}
    for text in texts:
        for token in explainer.explain(text).tokens:
            term = term_of(token.token, explainer.normalizer)
            totals[term] = totals.get(term, 0.0) + abs(token.contribution)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return [term for term, total in ranked if total > 0.0 and term != OTHER][:k]


def utf16_offsets(text: str) -> Callable[[int], int]:
    """Code-point offset -> UTF-16 offset in ``text``: a character past U+FFFF (an emoji, a
    mathematical letter) is two UTF-16 code units, so a browser's offsets run ahead of Python's."""
    if text.isascii() or max(text) <= "\uffff":
        return int
    astral = np.cumsum([0, *(ord(char) > 0xFFFF for char in text)])
    return lambda offset: offset + int(astral[offset])


#: Word-count bands of a text: a bare headline, a sentence or two, a thread's worth.
LENGTH_BANDS = (0, 10, 20, np.inf)
LENGTH_BAND_LABELS = ("under 10 words", "10-19 words", "20 words or more")


class SentimentRecipe(TrainingRecipe):
    target = data.TARGET
    task = "multiclass"
    primary_metric = "macro_f1"
    greater_is_better = True
    # 6,000 synthetic rows fit in well under 10 s; the signal saturates long before.
    synthetic_rows = 6000
    # rows_all_requestable stays False though data.validate_frame now keeps only texts a request
    # can carry: versions trained before it kept the others, and their figures are recomputed.

    def load_csv(self, path: Path) -> pd.DataFrame:
        frame = data.load_csv(path)
        # Refused before the fit: a classifier fitted without a label never answers it, and the
        # explainer, which needs the classifier's row of weights of each label, refuses it then.
        codes = set(frame[data.TARGET])
        missing = [f"{code} ({label})" for code, label in enumerate(data.LABELS) if code not in codes]
        if missing:
            raise DatasetError(
                f"column {data.TARGET!r} has no row labelled {' or '.join(missing)}; the model answers "
                f"{', '.join(data.LABELS)} and learns each from rows of it"
            )
        return frame

    def generate(self, n_rows: int, seed: int) -> pd.DataFrame:
        return data.generate(n_rows, seed)

    def build_pipeline(self, seed: int) -> Pipeline:
        return model.build_serving_pipeline(seed)

    def loaded(self, pipeline: Any) -> None:
        # Wherever the model is used (the trainer scores the champion's pipeline as loaded), it
        # reads text as it was fitted: a legacy file is settled from all its vocabularies at once.
        model.resolve_preprocessing(pipeline)

    def fit(self, pipeline: Any, features: pd.DataFrame, target: pd.Series) -> Any:
        # One BLAS thread: the solver's sparse products are small, and OpenBLAS threads
        # spinning on a busy 2-core machine made the fit up to 10x slower (0.6 s vs 6 s).
        with threadpool_limits(limits=1, user_api="blas"):
            return pipeline.fit(features, target)

    def tune(self, pipeline: Any, features: pd.DataFrame, target: pd.Series) -> dict[str, Any]:
        """The label names and the fixed vocabulary of the attribution metric, from training texts."""
        explainer = LinearTextExplainer(model.text_pipeline(pipeline))
        texts = [str(t) for t in features[data.TEXT].head(TERM_SAMPLE_ROWS)]
        return {
            "classes": list(data.LABELS),
            "attribution_terms": top_terms(explainer, texts, ATTRIBUTION_TERMS),
        }

    def evaluate(
        self, pipeline: Any, features: pd.DataFrame, target: pd.Series, metadata: Mapping[str, Any]
    ) -> dict[str, float]:
        """Accuracy, macro-F1, macro one-vs-rest ROC AUC, log loss and the F1 of each label."""
        frame = pd.DataFrame({data.TEXT: features[data.TEXT].to_numpy(), data.TARGET: target.to_numpy()})
        metrics = model.evaluate(pipeline, frame)
        predicted = pipeline.predict(features)
        codes = list(range(len(data.LABELS)))
        per_label = f1_score(target, predicted, average=None, labels=codes, zero_division=0.0)
        metrics.update({f"f1_{label}": float(f1) for label, f1 in zip(data.LABELS, per_label, strict=True)})
        return metrics

    def describe_data(self, frame: pd.DataFrame) -> dict[str, float]:
        shares = frame[self.target].value_counts(normalize=True)
        return {
            **{f"share_{label}": float(shares.get(code, 0.0)) for code, label in enumerate(data.LABELS)},
            "mean_text_chars": float(frame[data.TEXT].str.len().mean()),
        }

    def segments(self, features: pd.DataFrame) -> dict[str, pd.Series]:
        """Whether a text names a ticker or links out, and its length: kinds of text a sentiment
        model may read less well than others (a bare headline says little)."""
        text = features[data.TEXT].astype(str)
        words = text.str.count(r"\S+")

        def having(pattern: str, name: str) -> pd.Series:
            found = text.str.contains(pattern, regex=True)
            return pd.Series(np.where(found, f"with a {name}", f"without a {name}"), index=text.index)

        # As the pipeline's normalisation finds them: a ticker ($TSLA, not a price), and a link out
        # (a shared article's headline rather than someone's own words).
        return {
            "cashtag": having(model.CASHTAG_PATTERN, "cashtag"),
            "link": having(model.URL_PATTERN, "link"),
            "length": pd.cut(words, bins=LENGTH_BANDS, labels=LENGTH_BAND_LABELS, right=False),
        }

    def served_output(self, prediction: Mapping[str, Any]) -> Any:
        return prediction["label"]

    def truth(self, values: pd.Series) -> Any:
        """Labels by name (``bearish``) or by the real file's code (``0``); as names."""
        text = values.astype(str).str.strip()
        by_code = {str(code): label for code, label in enumerate(data.LABELS)}
        names = text.map(lambda value: by_code.get(value, value.lower()))
        known = f"{', '.join(data.LABELS)} or their codes 0 to {len(data.LABELS) - 1}"
        refuse_lines(self.target, values, ~names.isin(data.LABELS), f"every value must be one of {known}")
        return names.to_numpy(dtype=object)

    def params(self, pipeline: Any) -> dict[str, Any]:
        params = super().params(pipeline)
        union = model.text_pipeline(pipeline).steps[0][1]
        for name, vectorizer in union.transformer_list:
            params[f"features.{name}.analyzer"] = vectorizer.analyzer
            params[f"features.{name}.ngram_range"] = list(vectorizer.ngram_range)
            params[f"features.{name}.min_df"] = vectorizer.min_df
            params[f"features.{name}.vocabulary_size"] = len(vectorizer.vocabulary_)
        return params


class SentimentModel(ServedModel):
    """Label probabilities of a text; explained per token on the centered-logit scale."""

    explanation_scale = (
        "centered logit of the predicted label: log p(label) - mean over the 3 labels of log p"
    )
    explanation_method = (
        "exact linear attribution: the centred logit is (b_k - mean b) + sum_j (W_kj - mean_i W_ij) "
        "x_j over the TF-IDF features x_j (base_value is the first term); each feature's term is "
        "shared equally among the places its n-gram occurs and split over the tokens its "
        "characters cover; nothing is sampled and there is no background data"
    )
    #: Contributions are the text's words: a reason has no request value (servekit.inference).
    contributions_are_fields = False
    #: Characters of text, as the model reads them, answered on the event loop: a tweet or two,
    #: predicted and explained in 0.7 ms (126 characters) to about 2 ms here. The time grows with
    #: the text: 16 texts of 5,000 characters, explained, held the loop (and probes) for 300 ms.
    QUICK_TEXT_CHARS = 500

    def __init__(self, artifact: ModelArtifact) -> None:
        super().__init__(artifact)
        # Before anything reads text: a model file is read as it was fitted, not with whatever
        # normalize_text computes today. servekit's loader has settled it already (the recipe's
        # `loaded`); again here for a pipeline handed over otherwise, which gives the same answer.
        self.preprocessing = model.resolve_preprocessing(artifact.pipeline)
        self.normalizer = self.preprocessing.normalizer
        # A reading settled from the vocabularies is a choice worth a line wherever the model is
        # loaded; one the file records is the normal case (GET /model and the card say it).
        logger.log(
            logging.INFO if self.preprocessing.inferred else logging.DEBUG,
            "%s reads text with %s (%s): %s",
            which_model(artifact),
            self.normalizer.reference,
            self.normalizer.version,
            self.preprocessing.chosen_by,
        )
        self.text_pipeline = model.text_pipeline(artifact.pipeline)
        self.explainer = LinearTextExplainer(self.text_pipeline)
        classes = self.text_pipeline.steps[-1][1].classes_
        #: Label of each column of the classifier (``classes_`` are label codes).
        self.labels = [data.LABELS[int(code)] for code in classes]
        terms = [str(t) for t in artifact.metadata.get("attribution_terms", [])]
        self.terms = frozenset(terms)
        self.groups = [*terms, OTHER]
        words = dict(self.text_pipeline.named_steps["features"].transformer_list)["word"]
        self._split_words = words.build_tokenizer()
        #: Words (unigrams) the model has a weight for.
        self.known_words = frozenset(term for term in words.vocabulary_ if " " not in term)

    def quick(self, records: Sequence[Record]) -> bool:
        return super().quick(records) and (
            sum(read_length(str(record[data.TEXT]), self.QUICK_TEXT_CHARS) for record in records)
            <= self.QUICK_TEXT_CHARS
        )

    def monitored_inputs(self, records: Sequence[Record]) -> dict[str, list[Any]]:
        """A text's length in words and the share of its words the model knows.

        Free text has no bins of its own, but longer texts, or a rise of words the model
        never saw (a new topic, another language), show a shift the label shares can hide.
        """
        lengths: list[Any] = []
        known: list[Any] = []
        for record in records:
            words = self.words(str(record[data.TEXT]))
            lengths.append(len(words))
            known.append(self.known_share(words) if words else None)  # no word: the "missing" bin
        return {"text_words": lengths, "text_known_word_share": known}

    def words(self, text: str) -> list[str]:
        """The text's words as the model's word vectoriser splits them."""
        return list(self._split_words(self.normalizer.text(text)))

    def known_share(self, words: Sequence[str]) -> float:
        """Share of ``words`` the model has a word weight for; 0 for none."""
        return sum(word in self.known_words for word in words) / len(words) if words else 0.0

    def probabilities(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """``(n, classes)`` probabilities, each text's computed alone, as its explanation is.

        Not the sklearn pipeline's ``predict_proba`` for large batches, though it is as fast there
        (37 ms for 256 texts against 43 ms, 6 ms against 3 ms for 17): its sums come out in the
        last bits otherwise (1e-15), so a text's answer depended on the batch it came in.
        """
        logits = np.stack([self.explainer.centered_logits(text) for text in texts])
        return np.asarray(softmax(logits, axis=1), dtype=np.float64)

    def predict(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if not records:
            return []
        texts = [str(r[data.TEXT]) for r in records]
        proba = self.probabilities(texts)
        predictions = []
        for text, row in zip(texts, proba, strict=True):
            probabilities = dict.fromkeys(data.LABELS, 0.0)
            probabilities.update({label: float(p) for label, p in zip(self.labels, row, strict=True)})
            predictions.append(
                {
                    "label": self.labels[int(np.argmax(row))],
                    "probabilities": probabilities,
                    "known_word_share": self.known_share(self.words(text)),
                }
            )
        return predictions

    def explain(self, records: Sequence[Record]) -> list[Explanation]:
        explanations = []
        for record in records:
            text = str(record[data.TEXT])
            result = self.explainer.explain(text)
            utf16 = utf16_offsets(text)
            # One entry per word as the model reads it ("Up", "up" and "UP" are one feature), under
            # its first spelling: a reason is the word, not one of its spellings.
            spelling: dict[str, str] = {}
            contributions: dict[str, float] = {}
            attributions = dict.fromkeys(self.groups, 0.0)
            tokens = []
            for token in result.tokens:
                key = spelling.setdefault(self.normalizer.fold(token.token), token.token)
                contributions[key] = contributions.get(key, 0.0) + token.contribution
                term = term_of(token.token, self.normalizer)
                attributions[term if term in self.terms else OTHER] += abs(token.contribution)
                tokens.append(
                    {
                        "token": token.token,
                        "start": token.start,
                        "end": token.end,
                        "start_utf16": utf16(token.start),
                        "end_utf16": utf16(token.end),
                        "contribution": token.contribution,
                    }
                )
            explanations.append(
                Explanation(
                    scale=self.explanation_scale,
                    base_value=result.base_value,
                    output_value=result.output_value,
                    contributions=contributions,
                    attributions=attributions,
                    detail={"label": self.labels[result.class_index], "tokens": tokens},
                )
            )
        return explanations

    def describe(self) -> dict[str, Any]:
        """``GET /model``, with the text normalisation served: also under ``data`` for the card."""
        described = super().describe()
        preprocessing = self.preprocessing.as_json()
        summary = f"{self.normalizer.reference} ({self.normalizer.version}): {self.preprocessing.chosen_by}"
        described["data"] = {**described["data"], "text_normalization": summary}
        described["preprocessing"] = preprocessing
        return described

    def outcome(self, prediction: Mapping[str, Any]) -> str:
        return str(prediction["label"])

    def reasons_toward(self, prediction: Mapping[str, Any]) -> int:
        # The explanation is of the predicted label's centred logit: what raised it argued for it.
        return 1

    def scores(self, prediction: Mapping[str, Any]) -> Mapping[str, float]:
        probabilities: Mapping[str, float] = prediction["probabilities"]
        return probabilities
