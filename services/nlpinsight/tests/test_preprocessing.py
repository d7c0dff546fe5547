"""A model is served with the text normalisation it was fitted with, whatever its file calls it.

Model files name ``normalize_text``, which meant v1 before e669111 (NFKC) and v2 since; files
written now record the version beside it, which older releases carry along unread, and older
files are settled from their vocabularies. Tiny models are fitted here with each, saved as each
release saved them, and loaded with the allow-list as serving does.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from nlpinsight import data, model
from nlpinsight.explain.cached import explainer_for
from nlpinsight.explain.explainer import LinearTextExplainer
from nlpinsight.explain.results import UnsupportedPipelineError
from nlpinsight.service import SERVICE
from nlpinsight.serving import SentimentModel
from servekit import serialization
from servekit.card import render as render_card
from servekit.loading import read_model_dir
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


def vectorizers(pipeline: Pipeline) -> dict[str, model.CompactTfidfVectorizer]:
    return dict(model.text_pipeline(pipeline).steps[0][1].transformer_list)


def saved_as(pipeline: Pipeline, preprocessor: object) -> bytes:
    """The model file a release before the recorded versions wrote: ``preprocessor`` by name, no
    version (``normalize_text`` up to e669111^ for v1 and since for v2; ``normalize_text_v2``:
    the development build 527271d)."""
    copy = skops.io.loads(skops.io.dumps(pipeline), trusted=serialization.types_of(pipeline, ["nlpinsight"]))
    for vectorizer in vectorizers(copy).values():
        vectorizer.preprocessor = preprocessor
        vectorizer.__dict__.pop("text_normalizer_version_", None)
    dumped = skops.io.dumps(copy)
    assert f"nlpinsight.model.{preprocessor.__name__}" in skops.io.get_untrusted_types(data=dumped)  # type: ignore[attr-defined]
    return dumped


def saved_as_before(pipeline: Pipeline) -> bytes:
    """The model file a release before the versioned names wrote: ``normalize_text`` by name."""
    return saved_as(pipeline, model.normalize_text)


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


#: What nlpinsight.model had in the release before the versions were recorded (527271d^): a file
#: that names anything else fails to load there, and an image rollback leaves the service down.
PREVIOUS_RELEASE = frozenset(
    f"nlpinsight.model.{name}"
    for name in (
        "CompactTfidfVectorizer",
        "NormalizedText",
        "TextColumn",
        "build_pipeline",
        "build_serving_pipeline",
        "compatibility_form",
        "evaluate",
        "fit",
        "fold_word",
        "has_visible",
        "is_invisible",
        "normalize_text",
        "normalize_with_offsets",
        "text_pipeline",
    )
)


def test_a_model_file_written_now_names_only_what_the_previous_release_has(v2_pipeline: Pipeline) -> None:
    assert model.CURRENT is model.V2
    assert preprocessors(model.build_serving_pipeline()) == {"normalize_text"}
    dumped = skops.io.dumps(v2_pipeline)
    names = {t for t in skops.io.get_untrusted_types(data=dumped) if t.startswith("nlpinsight")}
    assert "nlpinsight.model.normalize_text" in names
    assert names <= PREVIOUS_RELEASE, names - PREVIOUS_RELEASE
    # The version is in the file beside the name, as an attribute that release carries along unread.
    assert {v.text_normalizer_version_ for v in vectorizers(loaded(dumped)).values()} == {"v2"}


def test_a_file_written_now_is_read_as_its_recorded_version(v2_pipeline: Pipeline) -> None:
    pipeline = loaded(skops.io.dumps(v2_pipeline))
    resolved = model.resolve_preprocessing(pipeline)
    assert resolved.normalizer is model.V2
    assert resolved.chosen_by == "recorded in the model file (text_normalizer_version_ = 'v2')"
    assert not resolved.inferred
    assert preprocessors(pipeline) == {"normalize_text"}  # kept: a dump of it still loads anywhere


def test_a_recorded_version_wins_over_what_the_shared_name_computes(v2_pipeline: Pipeline) -> None:
    pipeline = loaded(skops.io.dumps(v2_pipeline))
    for vectorizer in vectorizers(pipeline).values():
        vectorizer.text_normalizer_version_ = "v1"  # a vocabulary without evidence: it alone says v2
    assert model.resolve_preprocessing(pipeline).normalizer is model.V1
    assert preprocessors(pipeline) == {"normalize_text_v1"}


def test_a_file_of_the_development_build_naming_normalize_text_v2_is_read_with_v2(
    v2_pipeline: Pipeline,
) -> None:
    pipeline = loaded(saved_as(v2_pipeline, model.normalize_text_v2))
    resolved = model.resolve_preprocessing(pipeline)
    assert resolved.normalizer is model.V2
    assert resolved.chosen_by == "named by the model file (nlpinsight.model.normalize_text_v2)"
    np.testing.assert_allclose(
        pipeline.predict_proba(pd.DataFrame({data.TEXT: PROBES})),
        v2_pipeline.predict_proba(pd.DataFrame({data.TEXT: PROBES})),
        rtol=0,
        atol=1e-12,
    )


def test_a_version_this_release_lacks_or_a_file_that_contradicts_itself_is_refused(
    v1_pipeline: Pipeline, v2_pipeline: Pipeline
) -> None:
    pipeline = loaded(skops.io.dumps(v2_pipeline))
    vectorizers(pipeline)["char"].text_normalizer_version_ = "v3"
    with pytest.raises(
        ValueError, match=r"normalisation 'v3', which this release does not have \(it has v1, v2\)"
    ):
        model.resolve_preprocessing(pipeline)
    pipeline = loaded(skops.io.dumps(v1_pipeline))
    vectorizers(pipeline)["char"].text_normalizer_version_ = "v2"
    with pytest.raises(
        ValueError, match=r"records text normalisation v2 but names nlpinsight\.model\.normalize_text_v1"
    ):
        model.resolve_preprocessing(pipeline)


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
    (record,) = caplog.records
    assert record.levelno == logging.INFO  # settled from the vocabularies: worth a line anywhere
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
    assert (
        "names nlpinsight.model.normalize_text and no version, and that name meant v1 before e669111"
        in chosen_by
    )
    assert "U+2026" in chosen_by
    assert (
        f"nlpinsight version 7 reads text with nlpinsight.model.normalize_text_v1 (v1): {chosen_by}"
        in caplog.text
    )
    assert "normalize_text_v1 (v1)" in render_card(SERVICE, described)


def test_a_recorded_reading_is_logged_at_debug_naming_a_model_from_no_registry_by_its_uri(
    v2_pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    # mlp package-sagemaker's load check said "nlpinsight version unregistered reads text with ...",
    # and every CLI command printed such a line per version at INFO.
    uri = "https://user:hunter2@store.example/nlpinsight/model"
    artifact = ModelArtifact(
        "nlpinsight", loaded(skops.io.dumps(v2_pipeline)), {}, version="unregistered", uri=uri
    )
    with caplog.at_level(logging.DEBUG, logger="nlpinsight.serving"):
        SentimentModel(artifact)
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    message = record.getMessage()
    assert message.startswith("nlpinsight model https://")
    assert "store.example/nlpinsight/model reads text with" in message
    assert "hunter2" not in message
    assert message.endswith(
        "nlpinsight.model.normalize_text (v2): recorded in the model file (text_normalizer_version_ = 'v2')"
    )


def test_a_legacy_model_fitted_after_nfkc_is_served_with_v2(v2_pipeline: Pipeline) -> None:
    pipeline = loaded(saved_as_before(v2_pipeline))
    served = SentimentModel(ModelArtifact("nlpinsight", pipeline, {}))
    assert preprocessors(pipeline) == {"normalize_text"}
    assert served.preprocessing.normalizer is model.V2
    assert "no character only v1 keeps" in served.preprocessing.chosen_by
    answers = served.predict([{"text": text} for text in PROBES])
    got = [[answer["probabilities"][label] for label in data.LABELS] for answer in answers]
    np.testing.assert_allclose(got, v2_pipeline.predict_proba(PROBES), rtol=0, atol=1e-12)


def model_dir(path: Path, dumped: bytes) -> Path:
    """An MLflow model directory holding ``dumped``, as the registry or a managed endpoint has it."""
    path.mkdir()
    (path / "model.skops").write_bytes(dumped)
    (path / "MLmodel").write_text("flavors: {}\nmetadata: {}\n", encoding="utf-8")
    return path


def test_a_legacy_pipeline_loaded_by_servekit_reads_as_fitted_without_the_served_model(
    v1_pipeline: Pipeline, tmp_path: Path
) -> None:
    # The trainer scores the champion with the pipeline as loaded, without a SentimentModel: the
    # character vocabulary shows v1 (an ellipsis), the word one cannot (\w characters only), and
    # both must read as fitted, words included ("\uff34\uff45\uff53\uff4c\uff41" stays fullwidth).
    pipeline, _ = read_model_dir("nlpinsight", model_dir(tmp_path / "model", saved_as_before(v1_pipeline)))
    texts = pd.DataFrame({data.TEXT: PROBES})
    np.testing.assert_allclose(
        pipeline.predict_proba(texts), v1_pipeline.predict_proba(texts), rtol=0, atol=1e-12
    )
    assert preprocessors(pipeline) == {"normalize_text_v1"}
    union = vectorizers(pipeline)
    assert not model.v1_evidence(union["word"].vocabulary_)
    assert union["char"].preprocessor_evidence_[ELLIPSIS] > 0


def test_a_legacy_model_without_the_compact_vectorizer_is_settled_from_its_vocabulary(
    v1_pipeline: Pipeline,
) -> None:
    # Models saved before CompactTfidfVectorizer hold sklearn's own, which loads as it was.
    pipeline = loaded(saved_as_before(v1_pipeline))
    for vectorizer in vectorizers(pipeline).values():
        vectorizer.__class__ = TfidfVectorizer
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
    pipeline = loaded(saved_as_before(v1_pipeline))
    text_part = model.text_pipeline(pipeline)
    assert explainer_for(text_part).normalizer is model.V2  # what normalize_text computes
    model.resolve_preprocessing(pipeline)
    assert explainer_for(text_part).normalizer is model.V1


def test_vectorizers_that_disagree_or_an_unknown_preprocessor_are_refused(v2_pipeline: Pipeline) -> None:
    pipeline = loaded(skops.io.dumps(v2_pipeline))
    union = dict(model.text_pipeline(pipeline).steps[0][1].transformer_list)
    union["word"].preprocessor = model.normalize_text_v1
    union["word"].text_normalizer_version_ = "v1"
    with pytest.raises(ValueError, match=r"^the vectorizers name different normalisations: v1, v2$"):
        model.resolve_preprocessing(pipeline)
    with pytest.raises(UnsupportedPipelineError, match="normalise differently"):
        LinearTextExplainer(model.text_pipeline(pipeline))
    union["word"].preprocessor = str.lower
    with pytest.raises(ValueError, match=r"none of nlpinsight\.model's normalisations"):
        model.resolve_preprocessing(pipeline)


def test_v1_evidence_is_what_v2_never_outputs() -> None:
    evidence = model.v1_evidence(["e\u2026", "\u2026 ", "\u00bd", "plain", "caf\u00e9", "\u00ad", "up"])
    assert evidence == {ELLIPSIS: 2, "\u00bd": 1, "\u00ad": 1}
    assert not model.v1_evidence(model.normalize_text_v2(text) for text in PROBES)
