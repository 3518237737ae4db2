"""The span tree of one decision, read back from an in-memory exporter."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.evidence import SqliteEvidenceIndex
from decisioning.adapters.feast.online import OnlineRead
from decisioning.adapters.llm.gateway import InMemoryLlmCallRecorder, LlmGateway, OfflineProvider
from decisioning.conduct.assessment import ConductAssessor, ConductModel
from decisioning.conduct.classifier import TextClassifier
from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.evidence import load_policy_documents
from decisioning.conduct.rules import load_rules
from decisioning.conduct.taxonomy import load_taxonomy
from decisioning.core.decision import ModelVersion
from decisioning.core.engine import DecisionEngine, DecisionRequest
from decisioning.core.events import TextEvent
from decisioning.core.policy import FraudInput, load_policy
from decisioning.pillars import ConductAssessorPillar, FraudScorerPillar
from tests.support.encoders import HashingEncoder
from tests.support.events import MESSAGE, PAYMENT
from tests.support.spans import collected_spans

CONFIGS = Path(__file__).resolve().parents[4] / "configs"
CONFIG = CONFIGS / "policy.yaml"
MODEL = ModelVersion(name="fraud-detector", version="4")
CONDUCT_MODEL = ModelVersion(name="conduct-classifier", version="3")


class StandInScorer:
    features = ("velocity_10m_count",)

    def assess(self, features: Any) -> FraudInput:
        return FraudInput(score=0.01, action="approve", reason_codes=())


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from collected_spans()


def test_a_decision_is_one_trace_with_a_span_per_step(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    pillar = FraudScorerPillar(
        lambda event: OnlineRead({"velocity_10m_count": 1}, lambda: None),
        StandInScorer(),  # type: ignore[arg-type]
        MODEL,
        "fraud_v1",
        lambda model: StandInScorer(),  # type: ignore[arg-type,return-value]
    )
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    engine = DecisionEngine(load_policy(CONFIG), audit, pillar, None)

    decision = engine.decide(DecisionRequest.model_validate({"transaction": PAYMENT}))

    finished = {span.name: span for span in spans.get_finished_spans()}
    assert {
        "decision",
        "features.fetch",
        "model.fraud-detector",
        "audit.write",
    } <= set(finished)
    root = finished["decision"]
    assert decision.trace_id == trace.format_trace_id(root.context.trace_id)
    assert "fraud.assess" not in finished  # a span per step, none only to group them (issue 19)
    assert finished["features.fetch"].parent.span_id == root.context.span_id
    assert finished["model.fraud-detector"].parent.span_id == root.context.span_id
    assert finished["model.fraud-detector"].attributes["risk.model_version"] == "4"
    assert {s.context.trace_id for s in finished.values()} == {root.context.trace_id}
    audit.close()


def _conduct_pillar(tmp_path: Path) -> ConductAssessorPillar:
    """A conduct pillar on a stand-in encoder, a two-class model and the real policy clauses."""
    taxonomy = load_taxonomy(CONFIGS / "taxonomy.yaml")
    embedder = Embedder(load_encoder=HashingEncoder, model_id="test/hashing")
    texts = [f"the monthly fee is too high {i}" for i in range(4)]
    texts += [f"please update my address {i}" for i in range(4)]
    labels = ["conduct.price_and_value"] * 4 + ["none"] * 4
    classifier = TextClassifier().fit(texts, embedder.embed(texts), labels)
    index = SqliteEvidenceIndex(tmp_path / "evidence.db", embedder)
    index.add(load_policy_documents(CONFIGS / "policies"))
    model = ConductModel(classifier, load_rules(CONFIGS / "rules.yaml", taxonomy), taxonomy)
    assessor = ConductAssessor(model, embedder, index)
    return ConductAssessorPillar(assessor, CONDUCT_MODEL, lambda version: assessor)


def test_a_conduct_assessment_traces_embeddings_and_retrieval_under_its_model(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    # given a conduct pillar, and a message the model flags with no rule firing
    pillar = _conduct_pillar(tmp_path)
    text = "I have a question about my statement. The monthly fee is too high."
    spans.clear()
    # when the message is assessed
    result = pillar.assess(TextEvent.model_validate({**MESSAGE, "text": text}))
    # then the classifier span holds an embeddings span and a retrieval span
    assert result.assessment.category == "conduct.price_and_value", "precondition: flagged"
    finished = spans.get_finished_spans()
    model_span = next(s for s in finished if s.name == "model.conduct-classifier")
    children = [s for s in finished if s.parent and s.parent.span_id == model_span.context.span_id]
    assert [s.name for s in children] == ["embeddings", "retrieval"]
    embeddings, retrieval = children
    assert embeddings.attributes["risk.embeddings.model_id"] == "test/hashing"
    assert embeddings.attributes["risk.embeddings.texts"] == 1
    assert embeddings.attributes["risk.embeddings.cache_hit"] is False, "a new message"
    assert retrieval.attributes["risk.retrieval.backend"] == "sqlite"
    documents = [e for e in result.assessment.evidence if e.kind == "document"]
    assert retrieval.attributes["risk.retrieval.documents"] == len(documents) > 0
    # and retrieval's own query embedding is a cache hit on the message just embedded
    query = next(s for s in finished if s.parent and s.parent.span_id == retrieval.context.span_id)
    assert query.name == "embeddings" and query.attributes["risk.embeddings.cache_hit"] is True
    assert not any(s.attributes.get("risk.llm.prompt") for s in finished), "no LLM decides"


def test_an_llm_gateway_call_is_a_span_named_after_its_provider(
    spans: InMemorySpanExporter,
) -> None:
    # given the offline gateway, called inside a parent span
    gateway = LlmGateway(OfflineProvider(), CONFIGS / "prompts", InMemoryLlmCallRecorder())
    with trace.get_tracer(__name__).start_as_current_span("parent") as parent:
        gateway.extract("I paid £40 on 3 March for the overdraft")
    # then the call is one llm.offline span under it, naming the prompt, never the text
    [call] = [s for s in spans.get_finished_spans() if s.name.startswith("llm.")]
    assert call.name == "llm.offline"
    assert call.parent is not None and call.parent.span_id == parent.get_span_context().span_id
    assert call.attributes["risk.llm.prompt"] == "conduct_extraction"
    assert call.attributes["risk.llm.outcome"] == "ok"
    assert isinstance(call.attributes["risk.llm.prompt_version"], int)
    assert not any("£40" in str(value) for value in call.attributes.values())
