"""The NLPInsight service on servekit: recipe, served model, serialization and the HTTP contract."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import skops.io
from fastapi.testclient import TestClient

from nlpinsight import data, model
from nlpinsight.explain.cached import explain_text
from nlpinsight.schema import EXAMPLES, MAX_TEXT_CHARS
from nlpinsight.service import SERVICE
from nlpinsight.serving import ATTRIBUTION_TERMS, OTHER, SentimentModel, term_of
from servekit import serialization
from servekit.datasets import DatasetError, shared_file
from servekit.model import ModelArtifact
from servekit.testing import request_rows, serving_in_memory, train_in_memory
from servekit.training import trainer
from servekit.training.splitting import Split, split
from servekit.training.trainer import fit

# Texts that stress tokens and offsets (see test_explain.py for the full set).
ODD_TEXTS = [
    "$TSLA - Tesla beats estimates https://t.co/AbCdEf123 #stocks",
    "\u0130STANBUL borsas\u0131 d\u00fc\u015ft\u00fc \U0001f680 don\u2019t panic!!!",
    "-- !! ?? ...",
    "a",
    "\ua66e\ua66e\ua66e",
    "x" * MAX_TEXT_CHARS,
]


@pytest.fixture(scope="module")
def trained() -> tuple[ModelArtifact, Split]:
    return train_in_memory(SERVICE, rows=3000, seed=3)


@pytest.fixture(scope="module")
def served(trained: tuple[ModelArtifact, Split]) -> SentimentModel:
    served = SERVICE.model(trained[0])
    assert isinstance(served, SentimentModel)
    return served


def utf16_slice(text: str, token: Mapping[str, object]) -> str:
    """``text.slice(start_utf16, end_utf16)`` as JavaScript computes it."""
    units = text.encode("utf-16-le")
    start, end = token["start_utf16"], token["end_utf16"]
    assert isinstance(start, int)
    assert isinstance(end, int)
    return units[2 * start : 2 * end].decode("utf-16-le")


def centered_logit(probabilities: Mapping[str, float], label: str) -> float:
    """``log p(label) - mean_k log p(k)``: what an explanation's ``output_value`` is."""
    logs = [math.log(p) for p in probabilities.values()]
    return math.log(probabilities[label]) - math.fsum(logs) / len(logs)


# ------------------------------------------------------------------- training


@pytest.mark.parametrize(
    ("texts", "quick"),
    [
        (["x" * SentimentModel.QUICK_TEXT_CHARS], True),
        (["x" * (SentimentModel.QUICK_TEXT_CHARS + 1)], False),
        (["up"] * 16, True),
        (["up"] * 17, False),
        # 30 characters as sent, 540 as the model reads them (NFKC).
        (["\ufdfa" * 30], False),
    ],
)
def test_a_request_is_quick_by_the_characters_the_model_reads(
    served: SentimentModel, texts: list[str], quick: bool
) -> None:
    """Quick work runs on the event loop (servekit.rest.predictor): 16 texts of 5,000 characters,
    explained, held it, and every probe, for 300 ms; texts that NFKC makes 18 times as long, seconds."""
    assert served.quick([{data.TEXT: text} for text in texts]) is quick


def test_training_data_without_a_label_is_refused_before_the_fit(tmp_path: Path) -> None:
    # Fitted, such a model could not be explained (a classifier's row of weights per label): the
    # explainer's error came as a traceback once the fit was done.
    path = tmp_path / "two_labels.csv"
    data.generate(300, seed=1).query("label != 2").to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"^column 'label' has no row labelled 2 \(neutral\); the model"):
        trainer.train(SERVICE, "http://127.0.0.1:1", path)  # refused before the registry is asked


@pytest.mark.realdata
@pytest.mark.slow
def test_quality_on_the_real_data_held_out_split() -> None:
    """The recipe as `mlp train --data` runs it: stratified 80/20 split of sent_train.csv, seed 42."""
    frame = SERVICE.recipe.load_csv(shared_file("nlpinsight", "sent_train.csv"))
    data_split = split(SERVICE, frame, seed=42)
    pipeline, metadata = fit(SERVICE, data_split, seed=42)
    metrics = SERVICE.recipe.evaluate(pipeline, data_split.x_test, data_split.y_test, metadata)
    print("nlpinsight real-data held-out metrics:", {k: round(v, 4) for k, v in metrics.items()})
    assert metrics["macro_f1"] >= 0.75
    assert metrics["accuracy"] >= 0.82
    assert metrics["roc_auc"] >= 0.88
    # The drift vocabulary of a real model is made of real words, and bounded.
    assert 0 < len(metadata["attribution_terms"]) <= ATTRIBUTION_TERMS
    assert set(metadata["attribution_means"]) == {*metadata["attribution_terms"], OTHER}


def test_recipe_is_multiclass_on_macro_f1_and_logs_every_metric(
    trained: tuple[ModelArtifact, Split],
) -> None:
    artifact, data_split = trained
    recipe = SERVICE.recipe
    assert (recipe.task, recipe.primary_metric, recipe.greater_is_better) == ("multiclass", "macro_f1", True)
    assert recipe.target == data.TARGET
    metrics = artifact.training_metrics
    assert set(metrics) >= {"macro_f1", "accuracy", "roc_auc", "log_loss", *(f"f1_{x}" for x in data.LABELS)}
    assert metrics["macro_f1"] >= 0.8
    assert metrics["accuracy"] >= 0.85
    # Stratified split: every class is in both parts.
    assert set(data_split.y_test) == set(data_split.y_train) == {0, 1, 2}
    params = recipe.params(artifact.pipeline)
    assert params["model.C"] == 30.0
    assert params["features.char.analyzer"] == "char_wb"


def test_metadata_holds_the_drift_baselines_and_the_input_example(
    trained: tuple[ModelArtifact, Split],
) -> None:
    meta = trained[0].metadata
    assert meta["classes"] == list(data.LABELS)
    assert set(meta["outcome_shares"]) == set(data.LABELS)
    assert sum(meta["outcome_shares"].values()) == pytest.approx(1.0)
    terms = meta["attribution_terms"]
    assert len(terms) == ATTRIBUTION_TERMS == len(set(terms))
    assert OTHER not in terms
    # Normalised terms, never raw tokens: cashtags and URLs appear as their placeholder.
    assert all(term == term_of(term) for term in terms)
    assert set(meta["attribution_means"]) == {*terms, OTHER}
    assert meta["feature_schema"]["properties"]["text"]["maxLength"] == MAX_TEXT_CHARS
    assert [set(r) for r in meta["input_example"]] == [{data.TEXT}] * 3


def test_describe_data_reports_the_class_shares() -> None:
    figures = SERVICE.recipe.describe_data(data.generate(1000, seed=0))
    assert sum(figures[f"share_{label}"] for label in data.LABELS) == pytest.approx(1.0)
    assert figures["mean_text_chars"] > 10


# -------------------------------------------------------------- served model


def test_a_truth_file_may_name_labels_or_give_the_real_files_codes() -> None:
    # mlp evaluate: a reviewer writes "Bullish"; an export of the labelled data writes 1.
    truth = SERVICE.recipe.truth(pd.Series(["0", " Bullish", "neutral", "2"]))
    assert list(truth) == ["bearish", "bullish", "neutral", "neutral"]
    with pytest.raises(
        DatasetError, match=r"one of bearish, bullish, neutral or their codes 0 to 2; line\(s\) 3"
    ):
        SERVICE.recipe.truth(pd.Series(["bearish", "positive", "1"]))


def test_predictions_are_the_pipelines_probabilities(
    served: SentimentModel, trained: tuple[ModelArtifact, Split]
) -> None:
    artifact, data_split = trained
    rows = request_rows(data_split, 200) + [{"text": t} for t in ODD_TEXTS]
    texts = [r["text"] for r in rows]
    expected = np.asarray(artifact.pipeline.predict_proba(pd.DataFrame({data.TEXT: texts})))
    # A text's answer is the same bits whatever batch it came in (it differed in the last bits
    # once batches over 16 texts were scored by the pipeline), and the pipeline's to rounding.
    alone = [p for row in rows for p in served.predict([row])]
    small = [p for i in range(0, len(rows), 16) for p in served.predict(rows[i : i + 16])]
    large = served.predict(rows)
    assert large == small == alone
    got = np.array([[p["probabilities"][label] for label in data.LABELS] for p in large])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    assert [p["label"] for p in large] == [data.LABELS[int(i)] for i in expected.argmax(axis=1)]
    for prediction in small:
        assert set(prediction) == {"label", "probabilities", "known_word_share"}
        assert math.fsum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-12)
        assert served.outcome(prediction) == prediction["label"] in data.LABELS


def test_explanations_add_up_on_many_rows(
    served: SentimentModel, trained: tuple[ModelArtifact, Split]
) -> None:
    rows = request_rows(trained[1], 500) + [{"text": t} for t in ODD_TEXTS]
    predictions = served.predict(rows)
    explanations = served.explain(rows)
    assert len(explanations) == len(rows)
    for row, prediction, explanation in zip(rows, predictions, explanations, strict=True):
        assert explanation.scale == SentimentModel.explanation_scale
        total = explanation.base_value + math.fsum(explanation.contributions.values())
        assert total == pytest.approx(explanation.output_value, rel=1e-6, abs=1e-9)
        # The explained output is the predicted label's centered logit.
        label = prediction["label"]
        assert explanation.detail["label"] == label
        expected = centered_logit(prediction["probabilities"], label)
        assert explanation.output_value == pytest.approx(expected, rel=1e-6, abs=1e-9)
        # Per-token spans point into the text; contributions sum them per word (folded spelling).
        text = row["text"]
        tokens = explanation.detail["tokens"]
        per_word: dict[str, float] = {}
        for token in tokens:
            assert set(token) == {"token", "start", "end", "start_utf16", "end_utf16", "contribution"}
            assert text[token["start"] : token["end"]] == token["token"] == utf16_slice(text, token)
            word = model.fold_word(token["token"])
            per_word[word] = per_word.get(word, 0.0) + token["contribution"]
        assert sorted(map(model.fold_word, explanation.contributions)) == sorted(per_word)
        for key, value in explanation.contributions.items():
            assert value == pytest.approx(per_word[model.fold_word(key)], abs=1e-12)
        # Attributions: the bounded vocabulary, |contribution| per group.
        assert list(explanation.attributions) == served.groups
        assert all(v >= 0 for v in explanation.attributions.values())
        assert math.fsum(explanation.attributions.values()) == pytest.approx(
            math.fsum(abs(t["contribution"]) for t in tokens), rel=1e-9, abs=1e-12
        )


def test_attribution_groups_are_bounded_whatever_the_tokens(served: SentimentModel) -> None:
    words = [f"zz{i}qq" for i in range(300)]
    (explanation,) = served.explain([{"text": " ".join(words)}])
    assert set(explanation.attributions) == {*served.artifact.metadata["attribution_terms"], OTHER}
    assert not set(words) & set(explanation.attributions)


def test_the_explained_class_names_the_strongest_token(served: SentimentModel) -> None:
    (prediction,) = served.predict([{"text": "$NFLX - Netflix plunges 12.1% after earnings"}])
    (explanation,) = served.explain([{"text": "$NFLX - Netflix plunges 12.1% after earnings"}])
    assert prediction["label"] == explanation.detail["label"] == "bearish"
    assert max(explanation.contributions, key=lambda k: explanation.contributions[k]) == "plunges"


def test_text_without_known_features_is_explained_by_the_base_value(served: SentimentModel) -> None:
    (explanation,) = served.explain([{"text": "\ua66e\ua66e\ua66e \ua66e\ua66e"}])
    assert explanation.output_value == explanation.base_value
    assert set(explanation.contributions.values()) == {0.0}


def test_older_metadata_without_terms_puts_every_token_in_other(
    trained: tuple[ModelArtifact, Split],
) -> None:
    artifact = trained[0]
    meta = {k: v for k, v in artifact.metadata.items() if k != "attribution_terms"}
    served = SentimentModel(ModelArtifact(artifact.name, artifact.pipeline, meta))
    (explanation,) = served.explain([{"text": EXAMPLES[0]["text"]}])
    assert list(explanation.attributions) == [OTHER]


def test_the_model_round_trips_through_skops_with_the_allow_list(
    served: SentimentModel, trained: tuple[ModelArtifact, Split]
) -> None:
    artifact, data_split = trained
    types = serialization.types_of(artifact.pipeline, packages=(SERVICE.name,))
    # What the release before the recorded versions reads as v2 (test_preprocessing).
    assert "nlpinsight.model.normalize_text" in types
    assert "nlpinsight.model.normalize_text_v2" not in types
    assert "nlpinsight.model.TextColumn" in types
    restored = skops.io.loads(skops.io.dumps(artifact.pipeline), trusted=types)
    rows = request_rows(data_split, 40)
    again = SentimentModel(ModelArtifact(artifact.name, restored, artifact.metadata))
    assert again.predict(rows) == served.predict(rows)
    assert [e.as_json() for e in again.explain(rows)] == [e.as_json() for e in served.explain(rows)]
    with pytest.raises(serialization.UntrustedModelError):
        serialization.types_of(artifact.pipeline)  # without the service's own package


def test_the_pipeline_takes_a_frame_records_or_strings(trained: tuple[ModelArtifact, Split]) -> None:
    artifact, data_split = trained
    frame = data_split.x_test.head(5)
    texts = frame[data.TEXT].tolist()
    expected = artifact.pipeline.predict_proba(frame)
    np.testing.assert_array_equal(artifact.pipeline.predict_proba(texts), expected)
    np.testing.assert_array_equal(artifact.pipeline.predict_proba(request_rows(data_split, 5)), expected)
    np.testing.assert_array_equal(model.text_pipeline(artifact.pipeline).predict_proba(texts), expected)
    assert explain_text(model.text_pipeline(artifact.pipeline), texts[0]).tokens


# ------------------------------------------------------------------------ HTTP


@pytest.fixture(scope="module")
def client(trained: tuple[ModelArtifact, Split]) -> Iterator[TestClient]:
    with serving_in_memory(SERVICE, trained[0], max_batch_size=8) as test_client:
        yield test_client


def test_predict_and_explain_over_http(client: TestClient) -> None:
    text = "  Nvidia upgraded to Buy at Goldman Sachs  "
    response = client.post("/predict?explain=true", json={"text": text})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"name": "nlpinsight", "version": "test"}
    assert body["label"] in data.LABELS
    assert set(body["probabilities"]) == set(data.LABELS)
    explanation = body["explanation"]
    assert explanation["label"] == body["label"]
    assert explanation["scale"].startswith("centered logit")
    total = explanation["base_value"] + math.fsum(explanation["contributions"].values())
    assert total == pytest.approx(explanation["output_value"], rel=1e-6)
    # Offsets index into the text as sent, leading whitespace included.
    assert [text[t["start"] : t["end"]] for t in explanation["tokens"]][:2] == ["Nvidia", "upgraded"]
    assert "explain;dur=" in response.headers["server-timing"]


@pytest.mark.parametrize(
    "text",
    [
        "\U0001f680\U0001f680 Tesla soars",
        "  Tesla soars",
        "\U0001d413\U0001d41e\U0001d42c\U0001d425\U0001d41a \U0001f680 soars\n",
    ],
)
def test_token_offsets_slice_the_text_as_sent_in_python_and_in_javascript(
    client: TestClient, text: str
) -> None:
    # Offsets were into the stripped text, and only in code points: JavaScript's slice of
    # "\U0001f680\U0001f680 Tesla soars" at the "Tesla" token's offsets gave "\ude80 Tes".
    explanation = client.post("/predict?explain=true", json={"text": text}).json()["explanation"]
    tokens = explanation["tokens"]
    words = [word for word in text.split() if word[0].isalpha()]
    assert [t["token"] for t in tokens if t["token"][0].isalpha()] == words
    for token in tokens:
        assert text[token["start"] : token["end"]] == token["token"] == utf16_slice(text, token)


def test_styled_and_fullwidth_text_is_read_as_the_plain_words(client: TestClient) -> None:
    # Mathematical bold italic (common on Twitter) and fullwidth letters were words the model had
    # never seen: neutral at the intercept's probability, known_word_share 0, no contribution.
    plain = "$NFLX - Netflix plunges 12.1% after earnings"
    styled = "".join(chr(0xFEE0 + ord(c)) if "!" <= c <= "~" else c for c in plain)  # fullwidth
    italic = "".join(  # mathematical bold italic letters, digits and signs as they are
        chr(0x1D468 + ord(c) - 65)
        if "A" <= c <= "Z"
        else chr(0x1D482 + ord(c) - 97)
        if "a" <= c <= "z"
        else c
        for c in plain
    )
    answers = [
        client.post("/predict?explain=true", json={"text": text}).json() for text in (plain, styled, italic)
    ]
    assert answers[0]["label"] == "bearish"
    for text, answer in zip((styled, italic), answers[1:], strict=True):
        assert answer["probabilities"] == pytest.approx(answers[0]["probabilities"], abs=1e-12)
        assert answer["known_word_share"] == answers[0]["known_word_share"] > 0
        explanation = answer["explanation"]
        total = explanation["base_value"] + math.fsum(t["contribution"] for t in explanation["tokens"])
        assert total == pytest.approx(explanation["output_value"], rel=1e-6)
        strongest = max(explanation["contributions"], key=explanation["contributions"].__getitem__)
        assert model.fold_word(strongest) == "plunges"
        for token in explanation["tokens"]:
            assert text[token["start"] : token["end"]] == token["token"]


def test_the_spellings_of_one_word_are_one_reason(client: TestClient) -> None:
    # "Up", "up" and "UP" are one feature to the model, but were three reasons of ~1.4 each, below
    # "soar" though together they moved the label most.
    text = "Up up UP and away, $TSLA $AAPL soar"
    answer = client.post("/predict?explain=true&reasons=50", json={"text": text}).json()
    explanation, reasons = answer["explanation"], answer["reasons"]
    ups = [t["contribution"] for t in explanation["tokens"] if t["token"].lower() == "up"]
    assert len(ups) == 3
    assert [r["field"] for r in reasons].count("Up") == 1
    assert not {"up", "UP"} & {r["field"] for r in reasons}
    assert explanation["contributions"]["Up"] == pytest.approx(math.fsum(ups), abs=1e-12)
    # Different tickers stay different words, though the model reads both as "a cashtag".
    assert {"$TSLA", "$AAPL"} <= set(explanation["contributions"])


def test_the_reasons_are_the_words_that_argued_most_for_the_sentiment(client: TestClient) -> None:
    text = "Nvidia upgraded to Buy at Goldman Sachs, shares rally"
    contributions = client.post("/predict?explain=true", json={"text": text}).json()["explanation"][
        "contributions"
    ]
    reasons = client.post("/predict?reasons=3", json={"text": text}).json()["reasons"]
    # The explanation is of the predicted label's logit: the words that raised it argued for it.
    assert min(contributions.values()) < 0  # a word against the label, which is no reason for it
    raised = [word for word in contributions if contributions[word] > 0]
    strongest = sorted(raised, key=lambda word: (-contributions[word], word))[:3]
    assert [r["field"] for r in reasons] == strongest
    assert all(word in text for word in strongest)
    # A word is no request field: it has no value of its own.
    assert [(r["value"], r["contribution"]) for r in reasons] == [(None, contributions[w]) for w in strongest]


def test_the_word_text_is_a_reason_without_the_request_text_as_its_value(client: TestClient) -> None:
    # The request's one field is named "text": a reason keyed by the word "text" was given the
    # whole request text as its value, as if it were that field.
    texts = (
        "text me when it soars, text me when it plunges",
        "text me when it soars",
        "shares rally, text me",
    )
    answers = [client.post("/predict?reasons=50", json={"text": text}).json()["reasons"] for text in texts]
    # A text in which the word "text" argued for the answer, so that it is one of the reasons.
    reasons = next(reasons for reasons in answers if "text" in {r["field"] for r in reasons})
    assert {r["value"] for r in reasons} == {None}


def test_batch_keeps_order_and_matches_single_predictions(client: TestClient) -> None:
    instances = [dict(example) for example in EXAMPLES]
    single = [client.post("/predict", json=i).json()["probabilities"] for i in instances]
    batch = client.post("/predict/batch", json={"instances": instances})
    assert batch.status_code == 200
    assert [p["probabilities"] for p in batch.json()["predictions"]] == single


def test_known_word_share_says_how_much_of_a_text_the_model_knows(served: SentimentModel) -> None:
    known = sorted(served.known_words)[:3]
    texts = {
        " ".join(known): 1.0,  # every word known
        f"{known[0]} qzxvbn wkpfjd": 1 / 3,  # one of three
        "qzxvbn wkpfjd": 0.0,  # words, none known
        "!!! ???": 0.0,  # no word at all
    }
    predictions = served.predict([{"text": text} for text in texts])
    assert [p["known_word_share"] for p in predictions] == pytest.approx(list(texts.values()), abs=1e-12)
    # The same measure as the input-drift monitor, except that no word is "missing" there.
    monitored = served.monitored_inputs([{"text": text} for text in texts])["text_known_word_share"]
    assert monitored[:3] == pytest.approx(list(texts.values())[:3], abs=1e-12)
    assert monitored[3] is None


def test_openapi_has_the_examples(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]
    assert schema["FinancialText"]["examples"] == EXAMPLES
    assert schema["FinancialText"]["additionalProperties"] is False
    assert set(schema["SentimentPredictionResponse"]["properties"]) == {
        "label",
        "probabilities",
        "known_word_share",
        "model",
        "explanation",
        "reasons",
    }


def test_openapi_describes_the_text_explanation_that_is_returned(client: TestClient) -> None:
    # The document showed the tabular ExplanationBody: "SHAP value per input field", a base_value
    # "over the training data", and no label or tokens, so generated clients could not see them.
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    explanation = schemas["SentimentExplanation"]
    assert set(explanation["required"]) >= {"scale", "base_value", "output_value", "contributions", "tokens"}
    assert "centered intercept" in explanation["properties"]["base_value"]["description"]
    assert "code points" in explanation["properties"]["tokens"]["description"]
    assert set(schemas["TokenBody"]["properties"]) == {
        "token",
        "start",
        "end",
        "start_utf16",
        "end_utf16",
        "contribution",
    }
    answer = client.post("/predict?explain=true&reasons=3", json={"text": "\U0001f680 Tesla soars, $TSLA"})
    batch = client.post("/predict/batch?explain=true", json={"instances": [dict(e) for e in EXAMPLES]})
    for response, name in (
        (answer, "SentimentPredictionResponse"),
        (batch, "SentimentPredictionBatchResponse"),
    ):
        assert response.status_code == 200, response.text
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
        )
        validator.validate(response.json())
    # Every field of an answer is in the document, not only allowed by it.
    assert set(answer.json()["explanation"]) == set(explanation["properties"])


def test_model_endpoint_states_scale_classes_and_baselines(client: TestClient) -> None:
    body = client.get("/model").json()
    assert body["explanation_scale"] == SentimentModel.explanation_scale
    assert body["classes"] == list(data.LABELS)
    assert set(body["baselines"]["outcome_shares"]) == set(data.LABELS)
    assert OTHER in body["baselines"]["attribution_means"]


def test_the_model_endpoint_documents_every_field_it_returns_the_preprocessing_too(
    client: TestClient,
) -> None:
    body = client.get("/model").json()
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert set(body) <= set(schemas["ModelInfo"]["properties"]), set(body) - set(
        schemas["ModelInfo"]["properties"]
    )
    assert "normalisation" in schemas["ModelInfo"]["properties"]["preprocessing"]["description"]
    assert set(body["preprocessing"]) == set(schemas["TextPreprocessing"]["properties"])
    assert body["preprocessing"]["text_normalizer"] == "nlpinsight.model.normalize_text"
    assert body["preprocessing"]["version"] == "v2"


@pytest.mark.parametrize(
    ("body", "field", "problem"),
    [
        ({"text": ""}, "text", "has no visible characters"),
        ({"text": "   \n\t "}, "text", "has no visible characters"),
        ({"text": "\u00a0\u3000"}, "text", "has no visible characters"),
        # Zero-width, format and control characters: once answered 200 "neutral" with no token.
        ({"text": "\u200b"}, "text", "has no visible characters"),
        ({"text": "\ufeff"}, "text", "has no visible characters"),
        ({"text": "\x00"}, "text", "has no visible characters"),
        ({"text": "\u2060"}, "text", "has no visible characters"),
        ({"text": "\u00ad"}, "text", "has no visible characters"),
        ({"text": " \u200b\u200c\u200d\n"}, "text", "has no visible characters"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text", f"at most {MAX_TEXT_CHARS} characters"),
        ({"text": "fine", "ticker": "TSLA"}, "ticker", "Extra inputs"),
        ({"text": 42}, "text", "valid string"),
        ({"text": ["a"]}, "text", "valid string"),
        ({"text": None}, "text", "valid string"),
        ({}, "text", "Field required"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    client: TestClient, body: dict[str, object], field: str, problem: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == 422, response.text
    fields = response.json()["fields"]
    assert any(f["field"] == field and problem in f["problem"] for f in fields), fields
    batch = client.post("/predict/batch", json={"instances": [{"text": "ok"}, body]})
    assert batch.status_code == 422
    assert any(f["field"] == f"instances[1].{field}" for f in batch.json()["fields"]), batch.json()


def test_the_longest_text_counts_its_whitespace(client: TestClient) -> None:
    """The limit is on the text as sent: it is kept whole (offsets point into it) and read whole,
    so a megabyte of spaces around three words was an event loop held for a second."""
    longest = " " + "up " * ((MAX_TEXT_CHARS - 1) // 3)
    assert len(longest) <= MAX_TEXT_CHARS
    assert client.post("/predict?explain=true", json={"text": longest}).status_code == 200
    padded = " " * 1_000_000 + "Tesla stock up"
    response = client.post("/predict?explain=true", json={"text": padded})
    assert response.status_code == 422, response.text
    assert response.json()["fields"][0]["problem"] == (
        f"has {len(padded)} characters; send at most {MAX_TEXT_CHARS} characters"
    )


def test_malformed_json_and_lone_surrogates_are_422(client: TestClient) -> None:
    for raw in (b'{"text": "x"', b'{"text": "\\ud800"}'):
        response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.json()["fields"][0]["field"] == "body"


def test_attribution_metric_labels_stay_bounded(client: TestClient, served: SentimentModel) -> None:
    client.post("/predict?explain=true", json={"text": "qqq1 zzzz2 $WXYZ https://t.co/x rallies"})
    metrics = client.get("/metrics").text
    features = {
        line.split('feature="', 1)[1].split('"', 1)[0]
        for line in metrics.splitlines()
        if line.startswith("nlpinsight_attribution_abs_sum_total{")
    }
    assert features == set(served.groups)
    assert 'nlpinsight_predictions_total{outcome="' in metrics


def test_drift_watches_text_length_and_the_share_of_known_words(served: SentimentModel) -> None:
    assert {binning.feature for binning in served.input_bins} == {"text_words", "text_known_word_share"}
    known = next(iter(sorted(served.known_words)))
    columns = served.monitored_inputs([{"text": f"{known} {known} \ua66e\ua66e"}, {"text": "   "}])
    assert columns["text_words"] == [3, 0]
    assert columns["text_known_word_share"] == [pytest.approx(2 / 3), None]
