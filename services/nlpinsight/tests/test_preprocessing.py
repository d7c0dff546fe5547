"""A model is served with the text normalisation it was fitted with, whatever its file calls it.

Models fitted before the normalisations had versioned names call theirs ``normalize_text``, which
meant v1 before e669111 (NFKC) and v2 since. Tiny models are fitted here with each, saved under
the legacy name as such a release saved them, and loaded with the allow-list as serving does.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.pipeline import Pipeline

from nlpinsight import data, explain, model
from nlpinsight.service import SERVICE
from nlpinsight.serving import SentimentModel
from servekit import serialization
from servekit.card import render as render_card
from servekit.model import ModelArtifact

ELLIPSIS = "\u2026"
#: Texts the two normalisations read differently: an ellipsis (1,565 of the real tweets have one),
#: fullwidth letters, a soft hyphen inside a word.
PROBES = [
    f"Company update on the quarter{ELLIPSIS}",
    f"\uff34\uff45\uff53\uff4c\uff41 shares {ELLIPSIS} more later",
    "Tes\u00adla beats estimates...",
]


def frame() -> pd.DataFrame:
    """Synthetic rows where an ellipsis marks bearish ones and three dots the others, so that a
    model fitted with v1 (which keeps the ellipsis) and one fitted with v2 (three dots) differ."""
    rows = data.generate(600, seed=11)
    ending = np.where(rows[data.TARGET] == 0, ELLIPSIS, "...")
    return rows.assign(**{data.TEXT: rows[data.TEXT] + pd.Series(ending, index=rows.index)})


def fitted_with(normalizer: model.Normalizer) -> Pipeline:
    pipeline = model.build_serving_pipeline(seed=0)
    for _, vectorizer in model.text_pipeline(pipeline).steps[0][1].transformer_list:
        vectorizer.set_params(preprocessor=normalizer.text)
    rows = frame()
    return pipeline.fit(rows[[data.TEXT]], rows[data.TARGET])


def saved_as_before(pipeline: Pipeline) -> bytes:
    """The model file a release before the versioned names wrote: ``normalize_text`` by name."""
    legacy = skops.io.loads(
        skops.io.dumps(pipeline), trusted=serialization.types_of(pipeline, ["nlpinsight"])
    )
    for _, vectorizer in model.text_pipeline(legacy).steps[0][1].transformer_list:
        vectorizer.preprocessor = model.normalize_text
    dumped = skops.io.dumps(legacy)
    assert "nlpinsight.model.normalize_text" in skops.io.get_untrusted_types(data=dumped)
    return dumped


def loaded(dumped: bytes) -> Pipeline:
    types = serialization.trusted_types(skops.io.get_untrusted_types(data=dumped), ["nlpinsight"])
    pipeline: Pipeline = skops.io.loads(dumped, trusted=types)
    return pipeline


def preprocessors(pipeline: Pipeline) -> set[str]:
    union = model.text_pipeline(pipeline).steps[0][1]
    return {vectorizer.preprocessor.__name__ for _, vectorizer in union.transformer_list}


@pytest.fixture(scope="module")
def v1_pipeline() -> Pipeline:
    return fitted_with(model.V1)


@pytest.fixture(scope="module")
def v2_pipeline() -> Pipeline:
    return fitted_with(model.V2)


#: Each released normalisation's output, as the code of its release computed it (e669111^ for v1,
#: e669111 for v2): shared helpers changed for a later version must leave these as they are.
RELEASED = [
    (
        "\ufb01nance \u0130STANBUL\u200b 49,000 $\uff34\uff33\uff2c\uff21 up\u2026",
        "\ufb01nance i\u0307stanbul\u200b 00,000 $\uff54\uff53\uff4c\uff41 up\u2026",
        "finance i\u0307stanbul 00,000  _cashtag_  up...",
    ),
    (
        "Caf\xe9 \U0001d414\U0001d40f \xbd\xa0\u2014 www.x.com/a \u2019Q4\u2019",
        "caf\xe9 \U0001d414\U0001d40f \xbd\xa0-  _url_  'q0'",
        "caf\xe9 up 0\u20440 -  _url_  'q0'",
    ),
    (
        "\uff35\uff30 $TSLA 3.5%\u2026 Tes\xadla don\u2019t https://t.co/x",
        "\uff55\uff50  _cashtag_  0.0%\u2026 tes\xadla don't  _url_ ",
        "up  _cashtag_  0.0%... tesla don't  _url_ ",
    ),
]


@pytest.mark.parametrize(("text", "v1", "v2"), RELEASED)
def test_each_version_normalises_as_released(text: str, v1: str, v2: str) -> None:
    assert model.normalize_text_v1(text) == model.normalize_with_offsets_v1(text).text == v1
    assert model.normalize_text_v2(text) == model.normalize_with_offsets_v2(text).text == v2
    assert model.normalize_text(text) == v2  # the legacy name, if called


def test_v1_folds_spellings_only_as_far_as_it_reads_them() -> None:
    assert model.V1.fold("\uff35\uff30") != model.V1.fold("UP") == model.V2.fold("\uff35\uff30") == "up"
    assert model.V1.fold("Don\u2019t") == model.V2.fold("Don\u2019t") == "don't"


def test_new_models_name_the_current_normalisation_by_its_versioned_name(v2_pipeline: Pipeline) -> None:
    fresh = model.build_serving_pipeline()
    assert preprocessors(fresh) == {"normalize_text_v2"}
    assert model.CURRENT is model.V2
    types = serialization.types_of(fresh, packages=("nlpinsight",))
    assert "nlpinsight.model.normalize_text_v2" in types
    assert "nlpinsight.model.normalize_text" not in types
    resolved = model.resolve_preprocessing(loaded(skops.io.dumps(v2_pipeline)))
    assert resolved.normalizer is model.V2
    assert resolved.chosen_by == "named by the model file (nlpinsight.model.normalize_text_v2)"


def test_a_legacy_model_fitted_before_nfkc_is_served_as_fitted(
    v1_pipeline: Pipeline, v2_pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    texts = [*PROBES, *frame()[data.TEXT].head(20)]
    expected = v1_pipeline.predict_proba(texts)
    # The probes matter: read with v2, this model answers otherwise (what the upgrade did).
    misread = loaded(saved_as_before(v1_pipeline))
    for _, vectorizer in model.text_pipeline(misread).steps[0][1].transformer_list:
        vectorizer.preprocessor = model.normalize_text_v2
    assert not np.allclose(misread.predict_proba(PROBES), expected[: len(PROBES)], atol=1e-3)

    pipeline = loaded(saved_as_before(v1_pipeline))
    with caplog.at_level(logging.INFO, logger="nlpinsight.serving"):
        served = SentimentModel(ModelArtifact("nlpinsight", pipeline, {}, version="7"))
    # The word vectorizer's vocabulary has no ellipsis (it keeps \w characters only): it follows
    # the character one's, so both read as fitted.
    assert preprocessors(pipeline) == {"normalize_text_v1"}
    answers = served.predict([{"text": text} for text in texts])
    got = [[answer["probabilities"][label] for label in data.LABELS] for answer in answers]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)

    described = served.describe()
    assert described["preprocessing"]["text_normalizer"] == "nlpinsight.model.normalize_text_v1"
    assert described["preprocessing"]["version"] == "v1"
    chosen_by = described["preprocessing"]["chosen_by"]
    assert "names nlpinsight.model.normalize_text, which meant v1 before e669111" in chosen_by
    assert "U+2026" in chosen_by
    assert f"version 7 reads text with nlpinsight.model.normalize_text_v1: {chosen_by}" in caplog.text
    assert "normalize_text_v1 (v1)" in render_card(SERVICE, described)


def test_a_legacy_model_fitted_after_nfkc_is_served_with_v2(v2_pipeline: Pipeline) -> None:
    pipeline = loaded(saved_as_before(v2_pipeline))
    served = SentimentModel(ModelArtifact("nlpinsight", pipeline, {}))
    assert preprocessors(pipeline) == {"normalize_text_v2"}
    assert served.preprocessing.normalizer is model.V2
    assert "no character only v1 keeps" in served.preprocessing.chosen_by
    answers = served.predict([{"text": text} for text in PROBES])
    got = [[answer["probabilities"][label] for label in data.LABELS] for answer in answers]
    np.testing.assert_allclose(got, v2_pipeline.predict_proba(PROBES), rtol=0, atol=1e-12)


def test_a_loaded_legacy_pipeline_reads_as_fitted_where_its_vocabulary_tells(v1_pipeline: Pipeline) -> None:
    # The trainer scores the champion with the pipeline as loaded, without a SentimentModel.
    pipeline = loaded(saved_as_before(v1_pipeline))
    union = dict(model.text_pipeline(pipeline).steps[0][1].transformer_list)
    assert union["char"].preprocessor is model.normalize_text_v1
    assert union["char"].preprocessor_evidence_[ELLIPSIS] > 0


def test_a_legacy_model_without_the_compact_vectorizer_is_settled_from_its_vocabulary(
    v1_pipeline: Pipeline,
) -> None:
    # Models saved before CompactTfidfVectorizer hold sklearn's own: nothing settled on load.
    pipeline = loaded(skops.io.dumps(v1_pipeline))
    for _, vectorizer in model.text_pipeline(pipeline).steps[0][1].transformer_list:
        vectorizer.preprocessor = model.normalize_text
    assert model.resolve_preprocessing(pipeline).normalizer is model.V1
    assert preprocessors(pipeline) == {"normalize_text_v1"}


def test_the_explainer_reads_text_and_offsets_as_the_model_does(v1_pipeline: Pipeline) -> None:
    pipeline = loaded(saved_as_before(v1_pipeline))
    served = SentimentModel(ModelArtifact("nlpinsight", pipeline, {}))
    assert served.explainer.normalizer is model.V1
    for text in PROBES:
        (explanation,) = served.explain([{"text": text}])
        tokens = explanation.detail["tokens"]
        assert all(text[t["start"] : t["end"]] == t["token"] for t in tokens)
        total = explanation.base_value + math.fsum(t["contribution"] for t in tokens)
        assert total == pytest.approx(explanation.output_value, abs=1e-9)
        # The output is the model's own centered logit, as sklearn computes it through v1.
        logits = served.text_pipeline.decision_function([text])[0]
        label = explanation.detail["label"]
        assert explanation.output_value == pytest.approx(
            logits[served.labels.index(label)] - logits.mean(), abs=1e-9
        )


def test_a_cached_explainer_follows_a_normalisation_settled_after_it(v1_pipeline: Pipeline) -> None:
    pipeline = loaded(skops.io.dumps(v1_pipeline))
    text_part = model.text_pipeline(pipeline)
    for _, vectorizer in text_part.steps[0][1].transformer_list:
        vectorizer.preprocessor = model.normalize_text
    assert explain.explainer_for(text_part).normalizer is model.V2  # what normalize_text computes
    model.resolve_preprocessing(pipeline)
    assert explain.explainer_for(text_part).normalizer is model.V1


def test_vectorizers_that_disagree_or_an_unknown_preprocessor_are_refused(v2_pipeline: Pipeline) -> None:
    pipeline = loaded(skops.io.dumps(v2_pipeline))
    union = dict(model.text_pipeline(pipeline).steps[0][1].transformer_list)
    union["word"].preprocessor = model.normalize_text_v1
    with pytest.raises(ValueError, match=r"^the vectorizers name different normalisations: v1, v2$"):
        model.resolve_preprocessing(pipeline)
    with pytest.raises(explain.UnsupportedPipelineError, match="normalise differently"):
        explain.LinearTextExplainer(model.text_pipeline(pipeline))
    union["word"].preprocessor = str.lower
    with pytest.raises(ValueError, match=r"none of nlpinsight\.model's normalisations"):
        model.resolve_preprocessing(pipeline)


def test_v1_evidence_is_what_v2_never_outputs() -> None:
    evidence = model.v1_evidence(["e\u2026", "\u2026 ", "\u00bd", "plain", "caf\u00e9", "\u00ad", "up"])
    assert evidence == {ELLIPSIS: 2, "\u00bd": 1, "\u00ad": 1}
    assert not model.v1_evidence(model.normalize_text_v2(text) for text in PROBES)
