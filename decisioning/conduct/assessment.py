"""The hybrid conduct assessment: rules for precise, quoted hits; the classifier to generalise.

Rules win the category when they fire (they cite policy and quote the text) and lift the score to
at least ``rule_hit_score``; the model decides alone otherwise. A model-only flag still quotes the
message: the sentences whose vectors carry the flagged category most. Those sentence vectors come
out of the message's own forward pass (contextual approximations, see
:mod:`decisioning.conduct.embeddings`), so a message costs one pass of the model however it ends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder, MessageEmbedding
from decisioning.conduct.evidence import EvidenceHit, EvidenceIndex
from decisioning.conduct.rules import EvidenceSpan, RuleHit, RuleSet
from decisioning.conduct.taxonomy import SEVERITY_ORDER, Taxonomy

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
MAX_MODEL_SPANS = 2
MIN_RANKED_SENTENCES = 2


@dataclass(frozen=True)
class SpanEvidence:
    """A quoted span with where it came from: a rule id, or ``model`` for influential sentences."""

    source: str
    reference: str
    span: EvidenceSpan
    score: float


@dataclass(frozen=True)
class ConductAssessment:
    """What the conduct pillar says about one message; the decision policy turns it into action."""

    category: str
    severity: str
    risk_score: float
    source: str
    category_probability: float
    spans: tuple[SpanEvidence, ...]
    documents: tuple[EvidenceHit, ...] = field(default=())
    rules_version: str = ""

    @property
    def flagged(self) -> bool:
        return self.severity != "none"


@dataclass(frozen=True)
class ConductModel:
    """Everything fitted or configured that scores a message; pickled into the registered model."""

    classifier: TextClassifier
    rules: RuleSet
    taxonomy: Taxonomy
    rule_hit_score: float = 0.8


@dataclass(frozen=True)
class SentenceScores:
    """Class probabilities of a message's sentences, one row per sentence, as the classifier's."""

    sentences: list[EvidenceSpan]
    probabilities: np.ndarray


def quotable_sentences(text: str) -> list[EvidenceSpan]:
    """The sentences to rank for a model-only flag: none unless there are two or more."""
    sentences = sentence_spans(text)
    return sentences if len(sentences) >= MIN_RANKED_SENTENCES else []


def sentence_spans(text: str) -> list[EvidenceSpan]:
    """Sentences with offsets into ``text``, stripped of surrounding whitespace."""
    spans = []
    for match in _SENTENCE.finditer(text):
        raw = match.group(0)
        start = match.start() + len(raw) - len(raw.lstrip())
        end = match.end() - (len(raw) - len(raw.rstrip()))
        if end > start:
            spans.append(EvidenceSpan(start, end, text[start:end]))
    return spans


class ConductAssessor:
    """Scores messages with a :class:`ConductModel`, an embedder and, optionally, an index."""

    def __init__(
        self, model: ConductModel, embedder: Embedder, index: EvidenceIndex | None = None
    ) -> None:
        self.model = model
        self.embedder = embedder
        self.index = index

    def assess_many(self, texts: Sequence[str]) -> list[ConductAssessment]:
        """Rules; one forward pass per uncached message, its sentences' vectors included; one
        classifier call for the messages and their sentences together."""
        hits = [self.model.rules.find(text) for text in texts]
        # Only a message no rule fires on can need quoted sentences, and only if it has two or
        # more (a single sentence is quoted whole); a rule hit quotes the rule's span instead.
        sentences = [
            [] if found else quotable_sentences(text)
            for text, found in zip(texts, hits, strict=True)
        ]
        embeddings = self.embedder.embed_with_ranges(
            texts,
            [[(s.start, s.end) for s in message] for message in sentences],
            ranges_required=False,
        )
        probabilities, sentence_scores = self._probabilities(texts, sentences, embeddings)
        return [
            self._assess(*row)
            for row in zip(texts, hits, sentences, probabilities, sentence_scores, strict=True)
        ]

    def assess(self, text: str) -> ConductAssessment:
        return self.assess_many([text])[0]

    def _probabilities(
        self,
        texts: Sequence[str],
        sentences: list[list[EvidenceSpan]],
        embeddings: list[MessageEmbedding],
    ) -> tuple[np.ndarray, list[SentenceScores | None]]:
        """Messages and, where their vectors are at hand, their sentences, in one classifier call:
        its fixed cost (about 1 ms of input checks) is most of the price of a few rows."""
        row_texts, row_vectors = list(texts), [e.vector[None, :] for e in embeddings]
        pending: list[tuple[int, list[EvidenceSpan]] | None] = []
        for message, embedding in zip(sentences, embeddings, strict=True):
            if not message or embedding.range_vectors is None:
                pending.append(None)
                continue
            covered, vectors = _covered(message, embedding.range_vectors)
            pending.append((len(row_texts), covered))
            row_texts.extend(s.text for s in covered)
            row_vectors.append(vectors)
        rows = self.model.classifier.predict_proba(row_texts, np.vstack(row_vectors))
        scores = [
            None if p is None else SentenceScores(p[1], rows[p[0] : p[0] + len(p[1])])
            for p in pending
        ]
        return rows[: len(texts)], scores

    def _score_sentences(self, text: str, sentences: list[EvidenceSpan]) -> SentenceScores:
        """The rare second look: the message's vector was cached without its sentences'."""
        embedding = self.embedder.embed_with_ranges([text], [[(s.start, s.end) for s in sentences]])
        assert embedding[0].range_vectors is not None  # ranges_required: always pooled
        covered, vectors = _covered(sentences, embedding[0].range_vectors)
        if not covered:
            return SentenceScores([], np.zeros((0, len(self.model.classifier.classes))))
        rows = self.model.classifier.predict_proba([s.text for s in covered], vectors)
        return SentenceScores(covered, rows)

    def _assess(
        self,
        text: str,
        hits: list[RuleHit],
        sentences: list[EvidenceSpan],
        probabilities: np.ndarray,
        sentence_scores: SentenceScores | None,
    ) -> ConductAssessment:
        taxonomy, classes = self.model.taxonomy, self.model.classifier.classes
        by_class = dict(zip(classes, probabilities.tolist(), strict=True))
        model_risk = 1.0 - by_class.get(taxonomy.neutral, 0.0)
        if hits:
            category = _rule_category(hits, by_class, taxonomy)
            score = max(model_risk, self.model.rule_hit_score)
            spans = tuple(_rule_evidence(hit) for hit in hits)
            source = "rule+model" if _model_category(by_class) == category else "rule"
        else:
            category = _model_category(by_class)
            score = model_risk
            spans = ()
            source = "model"
            if category != taxonomy.neutral:
                spans = self._influential_sentences(
                    text, category, by_class[category], sentences, sentence_scores
                )
        documents: tuple[EvidenceHit, ...] = ()
        if category != taxonomy.neutral and self.index is not None:
            documents = tuple(self.index.search(text, k=3, category=category))
        return ConductAssessment(
            category=category,
            severity=taxonomy.severity_of(category),
            risk_score=round(float(score), 6),
            source=source if category != taxonomy.neutral else "none",
            category_probability=round(by_class.get(category, 0.0), 6),
            spans=spans,
            documents=documents,
            rules_version=self.model.rules.version,
        )

    def _influential_sentences(
        self,
        text: str,
        category: str,
        probability: float,
        sentences: list[EvidenceSpan],
        scores: SentenceScores | None,
    ) -> tuple[SpanEvidence, ...]:
        """The sentences whose own tokens, read in the message, most say the flagged category.

        Each sentence is scored by the classifier on its words and on the mean of its tokens'
        embeddings from the message's forward pass, so quoting costs no second pass. (Before:
        each sentence embedded alone, a second pass about as long as the first; before that,
        leaving each sentence out, a full-length pass per sentence.)
        """
        if not sentences:  # one sentence (or none): quote it whole
            return tuple(
                SpanEvidence("model", "model:message", s, probability) for s in sentence_spans(text)
            )
        if scores is None:
            scores = self._score_sentences(text, sentences)
        column = self.model.classifier.classes.index(category)
        ranked = sorted(
            zip(scores.probabilities[:, column].tolist(), scores.sentences, strict=True),
            key=lambda pair: -pair[0],
        )
        return tuple(
            SpanEvidence("model", "model:sentence", span, round(score, 6))
            for score, span in ranked[:MAX_MODEL_SPANS]
            if score > 0
        )


def _covered(
    sentences: list[EvidenceSpan], vectors: np.ndarray
) -> tuple[list[EvidenceSpan], np.ndarray]:
    """Sentences with a vector: none past the model's truncation has tokens to pool."""
    kept = np.any(vectors != 0, axis=1)
    return [s for s, keep in zip(sentences, kept.tolist(), strict=True) if keep], vectors[kept]


def _model_category(by_class: dict[str, float]) -> str:
    return max(by_class, key=lambda label: by_class[label])


def _rule_category(hits: list[RuleHit], by_class: dict[str, float], taxonomy: Taxonomy) -> str:
    """Among the categories the rules name, the most severe; the model breaks ties."""
    candidates = {hit.category for hit in hits}
    return max(
        sorted(candidates),
        key=lambda code: (SEVERITY_ORDER[taxonomy.severity_of(code)], by_class.get(code, 0.0)),
    )


def _rule_evidence(hit: RuleHit) -> SpanEvidence:
    return SpanEvidence("rule", f"{hit.rule_id} ({hit.policy_ref})", hit.span, 1.0)
