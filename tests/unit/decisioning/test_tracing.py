"""The span tree of one decision, read back from an in-memory exporter."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from decisioning.audit import AuditStore
from decisioning.decision import ModelVersion
from decisioning.engine import DecisionEngine, DecisionRequest
from decisioning.fraud.model import FraudAssessment
from decisioning.pillars import FraudScorerPillar
from decisioning.policy import load_policy
from tests.events import PAYMENT

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "policy.yaml"
MODEL = ModelVersion(name="fraud-detector", version="4")


class StandInScorer:
    features = ("velocity_10m_count",)

    def assess(self, features: Any) -> FraudAssessment:
        return FraudAssessment(score=0.01, action="approve", reason_codes=(), contributions={})


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Collect spans on the global provider (an SDK one, made here if none is set yet)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


def test_a_decision_is_one_trace_with_a_span_per_step(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    pillar = FraudScorerPillar(
        lambda event: {"velocity_10m_count": 1},
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
        "fraud.assess",
        "features.fetch",
        "model.fraud-detector",
        "audit.write",
    } <= set(finished)
    root = finished["decision"]
    assert decision.trace_id == trace.format_trace_id(root.context.trace_id)
    assert finished["fraud.assess"].parent.span_id == root.context.span_id
    assert finished["features.fetch"].parent.span_id == finished["fraud.assess"].context.span_id
    assert finished["model.fraud-detector"].attributes["risk.model_version"] == "4"
    assert {s.context.trace_id for s in finished.values()} == {root.context.trace_id}
    audit.close()
