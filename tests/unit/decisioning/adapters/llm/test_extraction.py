"""Fact extraction: spans that must hold, facts as evidence that never change the decision."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.llm.extraction import extract_facts, needs_extraction, validated_facts
from decisioning.adapters.llm.gateway import (
    AuditLlmCallRecorder,
    Completion,
    InMemoryLlmCallRecorder,
    LlmGateway,
    OfflineProvider,
    RenderedPrompt,
)
from decisioning.conduct.assessment import ConductAssessment
from decisioning.conduct.errors import LlmProviderError
from decisioning.core.decision import ModelVersion
from decisioning.core.engine import DecisionEngine, DecisionRequest
from decisioning.core.events import TextEvent
from decisioning.core.policy import load_policy
from decisioning.core.ports import ConductResult
from decisioning.pillars import ConductAssessorPillar
from tests.support.configs import CONFIGS

PROMPTS = CONFIGS / "prompts"
MODEL = ModelVersion(name="conduct-classifier", version="2")
TEXT = "I lost my job and a caller took £250 from my credit card last Tuesday. I can't cope."


class ScriptedProvider:
    name = "offline"
    model = "scripted"

    def __init__(self, output: str) -> None:
        self.output = output

    def complete(self, prompt: RenderedPrompt) -> Completion:
        return Completion(self.output)


class DownProvider:
    name = "offline"
    model = "down"

    def complete(self, prompt: RenderedPrompt) -> Completion:
        raise LlmProviderError("HTTP 503")


class FixedAssessor:
    def __init__(self, category: str, source: str = "rule:scam", probability: float = 0.9) -> None:
        self.assessment = ConductAssessment(
            category=category,
            severity="critical",
            risk_score=0.9,
            source=source,
            category_probability=probability,
            spans=(),
            rules_version="rules-v1",
        )

    def assess(self, text: str) -> ConductAssessment:
        return self.assessment


def gateway(provider: object) -> LlmGateway:
    return LlmGateway(provider, PROMPTS, InMemoryLlmCallRecorder())  # type: ignore[arg-type]


def test_a_span_the_text_does_not_contain_is_dropped_and_counted() -> None:
    output = json.dumps(
        {
            "facts": [
                {"kind": "amount", "text": "£250", "start": 32, "end": 36},
                {"kind": "amount", "text": "£9,999", "start": 32, "end": 38},  # not in the text
                {"kind": "date", "text": "last Tuesday", "start": 0, "end": 12},  # wrong place
                {"kind": "feeling", "text": "I", "start": 0, "end": 1},  # not a kind we take
            ]
        }
    )
    assert TEXT[32:36] == "£250"

    facts, dropped = validated_facts(TEXT, output)

    assert [(f.kind, f.text) for f in facts] == [("amount", "£250")]
    assert dropped == 3


def test_output_that_is_not_the_json_asked_for_is_an_error() -> None:
    with pytest.raises(LlmProviderError, match="not the JSON"):
        validated_facts(TEXT, "Sure! Here are the facts: £250")


def test_offline_extraction_finds_each_kind_with_spans_on_the_original_message() -> None:
    text = "Call me on 07700 900123. " + TEXT

    extraction = extract_facts(gateway(OfflineProvider()), text)

    kinds = {(fact.kind, fact.text) for fact in extraction.facts}
    assert {("amount", "£250"), ("date", "last Tuesday"), ("product", "credit card")} <= kinds
    assert {("vulnerability", "lost my job"), ("vulnerability", "can't cope")} <= kinds
    for fact in extraction.facts:
        assert text[fact.start : fact.end] == fact.text, "spans are on the message as received"
    assert extraction.dropped == 0 and extraction.prompt_version == "conduct_facts@1"


def test_a_fact_quoting_a_redaction_tag_is_dropped_too() -> None:
    text = "My card 4539 1488 0343 6467 was charged £250"
    output = {"facts": [{"kind": "product", "text": "[CARD]", "start": 8, "end": 14}]}

    extraction = extract_facts(gateway(ScriptedProvider(json.dumps(output))), text)

    assert extraction.facts == () and extraction.dropped == 1


EVENT = TextEvent(message_id="m1", received_at="2026-06-01T10:00:00Z", text=TEXT)  # type: ignore[arg-type]


def assessed(provider: object | None) -> ConductResult:
    """A scam report assessed by the pillar, with a gateway on ``provider`` or none."""
    assessor = FixedAssessor("conduct.scam_report")
    extractor = None if provider is None else gateway(provider)
    pillar = ConductAssessorPillar(assessor, MODEL, lambda _: assessor, extractor)  # type: ignore[arg-type]
    return pillar.assess(EVENT)


def test_extraction_adds_evidence_and_names_the_prompt_but_never_moves_the_category() -> None:
    plain, extracted = assessed(None), assessed(OfflineProvider())

    assert plain.prompt_version is None
    assert extracted.prompt_version == "conduct_facts@1"
    quotes = {e.quote for e in extracted.assessment.evidence if "extracted." in e.reference}
    assert {"£250", "credit card", "last Tuesday"} <= quotes
    for field in ("category", "severity", "score", "source", "reason_codes"):
        assert getattr(extracted.assessment, field) == getattr(plain.assessment, field), field


def test_a_provider_outage_leaves_the_conduct_result_as_without_a_gateway() -> None:
    assert assessed(DownProvider()) == assessed(None)


def test_only_unsure_flags_or_categories_that_need_facts_are_extracted() -> None:
    assert needs_extraction(FixedAssessor("conduct.scam_report").assessment)
    sure_rule = FixedAssessor("conduct.unclear_communication", "rule:x", 0.3).assessment
    unsure_model = FixedAssessor("conduct.unclear_communication", "model", 0.55).assessment
    sure_model = FixedAssessor("conduct.unclear_communication", "model", 0.9).assessment
    assert not needs_extraction(sure_rule) and not needs_extraction(sure_model)
    assert needs_extraction(unsure_model)
    none = ConductAssessment("none", "none", 0.0, "model", 0.9, ())
    assert not needs_extraction(none), "nothing flagged: nothing to extract"


def facts_json(*facts: tuple[str, str, int, int]) -> str:
    return json.dumps(
        {"facts": [{"kind": k, "text": t, "start": s, "end": e} for k, t, s, e in facts]}
    )


def test_repeated_spans_are_kept_once_and_facts_are_capped() -> None:
    at = TEXT.index("£250")
    repeated = facts_json(*[("amount", "£250", at, at + 4)] * 50)

    kept, dropped = validated_facts(TEXT, repeated)

    assert len(kept) == 1 and dropped == 49, "one span is one fact however often it is quoted"

    words = [(i, w) for i, w in enumerate(TEXT) if w.isalpha()]
    many = facts_json(*[("product", TEXT[i : i + 2], i, i + 2) for i, _ in words[:40]])
    kept, dropped = validated_facts(TEXT, many)
    assert len(kept) <= 20 and len(kept) + dropped == 40, (len(kept), dropped)


def test_a_fact_must_hold_what_its_kind_needs() -> None:
    dot = TEXT.index(".")
    tuesday = TEXT.index("last Tuesday")
    lost = TEXT.index("lost")
    output = facts_json(
        ("amount", ".", dot, dot + 1),
        ("amount", "lost", lost, lost + 4),
        ("date", "last Tuesday", tuesday, tuesday + 12),
    )

    kept, dropped = validated_facts(TEXT, output)

    assert [f.text for f in kept] == ["last Tuesday"] and dropped == 2, kept


def test_an_output_too_large_for_a_message_is_a_provider_error() -> None:
    at = TEXT.index("£250")
    with pytest.raises(LlmProviderError, match="characters"):
        validated_facts(TEXT, facts_json(*[("amount", "£250", at, at + 4)] * 5_000))


def test_dropped_spans_are_counted_in_prometheus() -> None:
    # given a provider whose output quotes one span the text does not hold and one it does
    at = TEXT.index("£250")
    output = {
        "facts": [
            {"kind": "amount", "text": "£250", "start": 0, "end": 4},
            {"kind": "amount", "text": "£250", "start": at, "end": at + 4},
        ]
    }
    before = REGISTRY.get_sample_value("risk_llm_spans_dropped_total") or 0.0

    extraction = extract_facts(gateway(ScriptedProvider(json.dumps(output))), TEXT)

    assert extraction.dropped == 1
    after = REGISTRY.get_sample_value("risk_llm_spans_dropped_total")
    assert after == before + 1, "a dropped span must be visible to Prometheus, not the log only"


def decided_with_extraction(audit: AuditStore, prompts: Path) -> tuple[DecisionEngine, str]:
    """A scam report decided by an engine whose extraction calls go to its audit store."""
    assessor = FixedAssessor("conduct.scam_report")
    extractor = LlmGateway(OfflineProvider(), prompts, AuditLlmCallRecorder(audit))
    pillar = ConductAssessorPillar(assessor, MODEL, lambda _: assessor, extractor)  # type: ignore[arg-type]
    engine = DecisionEngine(load_policy(CONFIGS / "policy.yaml"), audit, None, pillar)
    request = DecisionRequest.model_validate({"text": EVENT.model_dump(mode="json")})
    decision = engine.decide(request)
    assert decision.prompt_version == "conduct_facts@1"
    return engine, decision.decision_id


def copied(audit: AuditStore, path: Path, kind: str, change: dict[str, object]) -> AuditStore:
    """Another store holding the same records, those of ``kind`` with ``change`` in their body."""
    copy = AuditStore.open(f"sqlite:///{path}")
    for record in audit.records():
        body = {**record.body, **change} if record.kind == kind else record.body
        copy.append(record.kind, record.record_id, body)
    return copy


def test_a_decision_names_its_extraction_call_and_replays_against_it(tmp_path: Path) -> None:
    # given a decision whose facts were extracted, its call logged in the audit store
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompts)
    audit = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    try:
        engine, decision_id = decided_with_extraction(audit, prompts)
        (call,) = audit.records("llm_call")
        stored = audit.get(decision_id)
        assert stored is not None
        references = [e["reference"] for e in stored.body["decision"]["evidence"]]

        # then the decision names the call, and replays identical against it
        assert f"m1:extracted@{call.record_id}" in references, references
        assert engine.replay(decision_id).identical, engine.replay(decision_id).differences

        # when the stored completion says something else, the facts differ
        for field, value in (("output", '{"facts": []}'), ("input_hash", "sha256:0")):
            other = copied(audit, tmp_path / f"{field}.db", "llm_call", {field: value})
            try:
                engine.audit = other
                differences = engine.replay(decision_id).differences
            finally:
                engine.audit = audit
                other.close()
            assert "extraction" in differences, (field, differences)

        # and when the prompt version it names is gone, replay says so
        shutil.rmtree(prompts / "conduct_facts")
        gone = engine.replay(decision_id).differences
    finally:
        audit.close()
    assert "no prompt 'conduct_facts'" in gone["extraction"][1], gone


def test_a_fact_lands_on_the_occurrence_its_span_came_from_not_the_nearest() -> None:
    # given the same amount twice, a long e-mail address between them redacted to [EMAIL]
    text = "£250 to refunds.department.of.the.bank@example.com then £250 again"
    second_on_original = text.rindex("£250")
    # the model quotes the second £250 of what it saw: "£250 to [EMAIL] then £250 again"
    output = {"facts": [{"kind": "amount", "text": "£250", "start": 21, "end": 25}]}

    extraction = extract_facts(gateway(ScriptedProvider(json.dumps(output))), text)

    assert [(f.start, f.end) for f in extraction.facts] == [
        (second_on_original, second_on_original + 4)
    ], "the nearest occurrence to offset 21 is the first £250, which the model did not quote"
