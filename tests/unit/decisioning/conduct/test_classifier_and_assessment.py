import numpy as np
import pytest

from decisioning.conduct.assessment import ConductAssessor, ConductModel, sentence_spans
from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.errors import ModelNotFittedError, TrainingDataError
from decisioning.conduct.rules import RuleSet
from decisioning.conduct.taxonomy import Taxonomy
from pipelines.conduct.evaluation import cross_validate
from tests.support.encoders import HashingEncoder

TRAINING = {
    "none": [
        "please update my address",
        "how do I order a new card",
        "what time does the branch open",
        "thanks for sorting my standing order",
        "can I change my pin online",
        "I would like a copy of my statement",
    ],
    "conduct.price_and_value": [
        "the monthly fee is far too high for this account",
        "your overdraft fee is poor value",
        "the fee doubled and the account gives nothing",
        "paying a big fee every month for nothing",
        "this fee is too expensive compared with others",
        "another fee added and no value for it",
    ],
    "conduct.barriers_to_support": [
        "nobody answers the phone line for days",
        "the phone line keeps hanging up on me",
        "I waited on the phone line all afternoon",
        "the app chat never answers anyone",
        "the phone queue is endless every day",
        "no answer on the phone line again",
    ],
}


def _fit(embedder: Embedder) -> TextClassifier:
    texts = [t for texts in TRAINING.values() for t in texts]
    labels = [label for label, texts in TRAINING.items() for _ in texts]
    return TextClassifier().fit(texts, embedder.embed(texts), labels)


@pytest.fixture
def assessor(fake_embedder: Embedder, rules: RuleSet, taxonomy: Taxonomy) -> ConductAssessor:
    model = ConductModel(classifier=_fit(fake_embedder), rules=rules, taxonomy=taxonomy)
    return ConductAssessor(model, fake_embedder)


def test_probabilities_are_a_distribution_over_the_labels(fake_embedder: Embedder) -> None:
    classifier = _fit(fake_embedder)
    texts = ["the fee is too high", "update my address"]
    probabilities = classifier.predict_proba(texts, fake_embedder.embed(texts))
    assert sorted(classifier.classes) == sorted(TRAINING)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_unfitted_classifier_refuses_to_predict() -> None:
    with pytest.raises(ModelNotFittedError):
        TextClassifier().predict_proba(["x"], np.zeros((1, 384)))


def test_a_label_with_one_example_is_refused(fake_embedder: Embedder) -> None:
    texts = ["a", "b", "c"]
    with pytest.raises(TrainingDataError, match="fewer than 2"):
        TextClassifier().fit(texts, fake_embedder.embed(texts), ["x", "x", "y"])


def test_rule_hit_sets_category_score_floor_and_quotes(assessor: ConductAssessor) -> None:
    # given a message a rule recognises, though the model was never trained on scams
    text = "Hello. I was scammed by someone pretending to be from the bank."
    # when it is assessed
    result = assessor.assess(text)
    # then the rule decides the category, lifts the score and quotes the text exactly
    assert result.category == "conduct.scam_report"
    assert result.severity == "critical"
    assert result.risk_score >= 0.8
    assert result.spans and all(s.source == "rule" for s in result.spans)
    for evidence in result.spans:
        assert text[evidence.span.start : evidence.span.end] == evidence.span.text


def test_model_only_flag_quotes_the_sentence_that_moved_it(assessor: ConductAssessor) -> None:
    # given a message no rule matches, with one sentence about the fee and one neutral
    text = "I have a question about my statement. The monthly fee is far too high for nothing."
    assert not assessor.model.rules.find(text), "precondition: no rule fires"
    # when it is assessed
    result = assessor.assess(text)
    # then the model flags it and the top span is the fee sentence, quoted exactly
    assert result.category == "conduct.price_and_value"
    assert result.source == "model"
    top = result.spans[0]
    assert "fee" in top.span.text
    assert text[top.span.start : top.span.end] == top.span.text


def test_a_model_only_flag_with_its_quotes_costs_one_forward_pass(
    assessor: ConductAssessor, encoder: HashingEncoder
) -> None:
    # given a multi-sentence message the model flags, new to the embedder
    text = "I have a question about my statement. The monthly fee is far too high for nothing."
    passes = encoder.passes
    # when it is assessed
    result = assessor.assess(text)
    # then the message and its quoted sentences came out of one pass
    assert result.source == "model" and result.spans
    assert encoder.passes == passes + 1, "sentence vectors must come from the message's own pass"
    # and assessing it again is served by the cache, sentences included
    assert assessor.assess(text) == result
    assert encoder.passes == passes + 1


def test_a_message_cached_without_its_sentences_gets_them_when_flagged(
    assessor: ConductAssessor, encoder: HashingEncoder
) -> None:
    # given a flagged message whose vector alone is cached (embedded for retrieval, say)
    text = "I have a question about my statement. The monthly fee is far too high for nothing."
    assessor.embedder.embed([text])
    passes = encoder.passes
    # when it is assessed, then one pass gives the sentences, and they are quoted
    result = assessor.assess(text)
    assert encoder.passes == passes + 1
    assert "fee" in result.spans[0].span.text


def test_a_cached_neutral_message_skips_the_model(
    assessor: ConductAssessor, encoder: HashingEncoder
) -> None:
    # given a neutral two-sentence message whose vector alone is cached, not its sentences'
    text = "Please update my address. I moved last week."
    assessor.embedder.embed([text])
    passes = encoder.passes
    # when it is assessed, then it is not flagged and the model is not called
    assert not assessor.assess(text).flagged
    assert encoder.passes == passes, "a cache hit needing no quotes must not reach the model"


def test_scoring_sentences_beside_messages_leaves_message_scores_alone(
    assessor: ConductAssessor,
) -> None:
    # given messages with sentences to rank and without, assessed in one batch
    texts = [
        "I have a question about my statement. The monthly fee is far too high for nothing.",
        "nobody answers the phone line",
        "please update my address",
    ]
    results = assessor.assess_many(texts)
    # then each message's probability is the classifier's on the message alone
    classifier = assessor.model.classifier
    for text, result in zip(texts, results, strict=True):
        alone = classifier.predict_proba([text], assessor.embedder.embed([text]))[0]
        expected = alone[classifier.classes.index(result.category)]
        assert result.category_probability == pytest.approx(expected, abs=1e-6), text


def test_neutral_message_is_not_flagged(assessor: ConductAssessor) -> None:
    result = assessor.assess("please update my address")
    assert result.category == "none"
    assert not result.flagged and result.spans == ()


def test_sentence_spans_are_exact_and_trimmed() -> None:
    text = "  First one.  Second one!\nThird"
    assert [s.text for s in sentence_spans(text)] == ["First one.", "Second one!", "Third"]
    assert all(text[s.start : s.end] == s.text for s in sentence_spans(text))


def test_cross_validation_reports_pooled_metrics(fake_embedder: Embedder) -> None:
    texts = [t for texts in TRAINING.values() for t in texts]
    labels = [label for label, texts in TRAINING.items() for _ in texts]
    report = cross_validate(texts, labels, fake_embedder.embed(texts), folds=3)
    assert report.rows == len(texts) and report.folds == 3
    assert set(report.per_class) == set(TRAINING)
    assert report.accuracy > 0.6, f"separable toy data should mostly classify: {report}"
