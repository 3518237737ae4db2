"""Explanations of reviews and escalations: linked audit records written after the answer.

The engine decides with stand-in pillars; the explanation queue explains what it decided through
the gateway, the way ``RiskService.decide`` hands it over.
"""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.llm.breaker import CircuitBreaker
from decisioning.adapters.llm.explanation import (
    EXPLANATION_KIND,
    UNAVAILABLE,
    Explainer,
    ExplanationQueue,
    explanation_inputs,
    explanation_record_id,
    replay_explanation,
    stored_explanation,
)
from decisioning.adapters.llm.gateway import (
    AuditLlmCallRecorder,
    Completion,
    InMemoryLlmCallRecorder,
    LlmGateway,
    OfflineProvider,
    RenderedPrompt,
)
from decisioning.conduct.errors import LlmProviderError
from decisioning.core.decision import Evidence, FeatureValue, ModelVersion, ReasonCode, RiskDecision
from decisioning.core.engine import DecisionEngine, DecisionRequest
from decisioning.core.events import TextEvent, TransactionEvent
from decisioning.core.policy import ConductInput, FraudInput, load_policy
from decisioning.core.ports import ConductResult, FraudResult
from tests.support.configs import CONFIGS
from tests.support.events import MESSAGE, PAYMENT

PROMPTS = CONFIGS / "prompts"
FRAUD_MODEL = ModelVersion(name="fraud-detector", version="3")
CONDUCT_MODEL = ModelVersion(name="conduct-classifier", version="2")


class QuietFraud:
    """Always approves: a payment with nothing wrong."""

    def assess(self, event: TransactionEvent) -> FraudResult:
        values: dict[str, FeatureValue] = {"velocity_10m_count": 1}
        return FraudResult(self.rescore(values, FRAUD_MODEL), values, None, FRAUD_MODEL, "fraud_v1")

    def rescore(self, feature_values: dict[str, FeatureValue], model: ModelVersion) -> FraudInput:
        return FraudInput(score=0.01, action="approve", reason_codes=())


class VulnerableConduct:
    """A high-severity flag with a quoted span: the policy escalates it."""

    def assess(self, event: TextEvent) -> ConductResult:
        return ConductResult(self.reassess(event, CONDUCT_MODEL), CONDUCT_MODEL, "rules-v1")

    def reassess(self, event: TextEvent, model: ModelVersion) -> ConductInput:
        reason = ReasonCode(
            code="conduct.vulnerable_customer",
            description="high severity conduct.vulnerable_customer (rule, p=0.90)",
            contribution=0.8,
            source="rule",
        )
        span = Evidence(kind="span", reference="m1:rule", quote=event.text, start=0, end=12)
        return ConductInput("conduct.vulnerable_customer", "high", 0.8, "rule", (reason,), (span,))


class BlockedProvider:
    """Waits until released, then fails: a provider outage that hangs before it errors."""

    name = "offline"
    model = "blocked"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self.threads: set[int] = set()

    def complete(self, prompt: RenderedPrompt) -> Completion:
        self.calls += 1
        self.threads.add(threading.get_ident())
        self.entered.set()
        self.release.wait(30)
        raise LlmProviderError("provider down")


class FailingProvider:
    name = "offline"
    model = "down"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, prompt: RenderedPrompt) -> Completion:
        self.calls += 1
        raise LlmProviderError("HTTP 503")


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditStore]:
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.close()


def decide(audit: AuditStore, body: dict[str, object], **pillars: object) -> RiskDecision:
    engine = DecisionEngine(
        load_policy(CONFIGS / "policy.yaml"),
        audit,
        pillars.get("fraud"),  # type: ignore[arg-type]
        pillars.get("conduct"),  # type: ignore[arg-type]
        clock=lambda: datetime(2026, 6, 1, 10, 0, 1, tzinfo=UTC),
    )
    return engine.decide(DecisionRequest.model_validate(body))


def offline_queue(audit: AuditStore) -> ExplanationQueue:
    gateway = LlmGateway(OfflineProvider(), PROMPTS, AuditLlmCallRecorder(audit))
    return ExplanationQueue(Explainer(gateway, audit))


def test_reviews_and_escalations_get_a_linked_explanation_and_approvals_none(
    audit: AuditStore,
) -> None:
    # given a review (no fraud model: the fallback), an escalation and an approval
    review = decide(audit, {"transaction": PAYMENT})
    escalation = decide(audit, {"text": MESSAGE}, conduct=VulnerableConduct())
    approval = decide(
        audit, {"transaction": {**PAYMENT, "transaction_id": "tx2"}}, fraud=QuietFraud()
    )
    assert (review.action, escalation.action, approval.action) == ("review", "escalate", "approve")

    # when each is handed to the explanation queue after it was answered
    explanations = offline_queue(audit)
    for decision in (review, escalation, approval):
        explanations.submit(decision)
    assert explanations.drain(timeout=30), "the queue must finish the explanations"

    # then the two cases a person picks up are explained, linked to their decision records
    records = {r.body["explanation"]["decision_id"]: r for r in audit.records(EXPLANATION_KIND)}
    assert set(records) == {review.decision_id, escalation.decision_id}, "approvals get none"
    for decision in (review, escalation):
        body = records[decision.decision_id].body["explanation"]
        stored = audit.get(decision.decision_id)
        assert stored is not None
        assert (body["decision_seq"], body["decision_row_hash"]) == (stored.seq, stored.row_hash)
        assert body["prompt_version"] == "decision_explanation@1"
        assert body["status"] == "ok" and body["model"] == "offline-template"
        assert body["input_hash"].startswith("sha256:") and body["call_id"]
        assert decision.action in body["output"] and decision.risk_category in body["output"]
    escalated = records[escalation.decision_id].body["explanation"]["output"]
    assert "conduct.vulnerable_customer" in escalated and "I can't cope" in escalated
    assert audit.verify().ok, "explanations join the hash chain"


def test_the_explanation_sees_reasons_and_evidence_only_redacted(audit: AuditStore) -> None:
    message = {**MESSAGE, "text": "I can't cope, call me on 07700 900123"}
    decision = decide(audit, {"text": message}, conduct=VulnerableConduct())
    recorder = InMemoryLlmCallRecorder()

    Explainer(LlmGateway(OfflineProvider(), PROMPTS, recorder), audit).explain(decision)

    sent = recorder.calls[0].redacted_input
    assert "07700 900123" not in sent and "[PHONE]" in sent, "inputs are redacted first"
    assert set(explanation_inputs(decision)) == {"action", "risk_category", "reasons", "evidence"}
    assert MESSAGE["received_at"] not in sent, "the request itself never reaches the prompt"


def test_a_provider_outage_neither_delays_nor_changes_a_decision(audit: AuditStore) -> None:
    # given a provider that hangs and then fails
    provider = BlockedProvider()
    gateway = LlmGateway(provider, PROMPTS, InMemoryLlmCallRecorder())
    explanations = ExplanationQueue(Explainer(gateway, audit))
    reference = decide(audit, {"text": MESSAGE}, conduct=VulnerableConduct())
    explanations.submit(reference)
    assert provider.entered.wait(10), "the worker must be inside the provider"

    # when another decision is made and handed over while the provider is still hanging
    started = time.perf_counter()
    second = decide(audit, {"text": {**MESSAGE, "message_id": "m2"}}, conduct=VulnerableConduct())
    explanations.submit(second)
    elapsed = time.perf_counter() - started

    # then both returned while the provider hung (it would for 30 s), on another thread
    assert elapsed < 2.0, f"decide and submit took {elapsed:.1f} s while the provider hung"
    assert threading.get_ident() not in provider.threads, "the provider runs off the caller"
    stored = audit.get(second.decision_id)
    assert stored is not None and stored.body["decision"] == second.model_dump(mode="json")
    assert (second.action, second.risk_score, second.reason_codes) == (
        reference.action,
        reference.risk_score,
        reference.reason_codes,
    ), "the same case decides the same way with the provider down"
    provider.release.set()
    assert explanations.drain(timeout=30)
    for decision in (reference, second):
        explanation = stored_explanation(audit, decision.decision_id)
        assert explanation is not None and explanation.status == "unavailable"
        assert explanation.output == UNAVAILABLE and "provider down" in explanation.error
    assert audit.get(second.decision_id).body == stored.body, "the decision record is untouched"  # type: ignore[union-attr]


def test_an_open_breaker_records_unavailable_without_calling_the_provider(
    audit: AuditStore,
) -> None:
    provider = FailingProvider()
    gateway = LlmGateway(
        provider, PROMPTS, InMemoryLlmCallRecorder(), CircuitBreaker(failure_threshold=2)
    )
    explainer = Explainer(gateway, audit)
    decisions = [
        decide(audit, {"text": {**MESSAGE, "message_id": f"m{i}"}}, conduct=VulnerableConduct())
        for i in range(4)
    ]

    outcomes = [explainer.explain(decision) for decision in decisions]

    assert provider.calls == 2, "after two failures the breaker stops calling the provider"
    assert all(o is not None and o.output == UNAVAILABLE for o in outcomes)
    assert "circuit open" in outcomes[-1].error  # type: ignore[union-attr]


def test_a_decision_is_explained_once(audit: AuditStore) -> None:
    decision = decide(audit, {"transaction": PAYMENT})
    explainer = Explainer(LlmGateway(OfflineProvider(), PROMPTS, InMemoryLlmCallRecorder()), audit)

    first, again = explainer.explain(decision), explainer.explain(decision)

    assert first is not None and again is None
    assert len(list(audit.records(EXPLANATION_KIND))) == 1


class RefusingProvider:
    """Fails the test if anything calls it."""

    name = "offline"
    model = "offline-template"

    def complete(self, prompt: RenderedPrompt) -> Completion:
        raise AssertionError("replay called an LLM provider")


def test_replay_reuses_the_stored_completion_and_checks_the_prompt_version(
    audit: AuditStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decision = decide(audit, {"transaction": PAYMENT})
    explainer = Explainer(
        LlmGateway(OfflineProvider(), PROMPTS, AuditLlmCallRecorder(audit)), audit
    )
    stored = explainer.explain(decision)
    assert stored is not None
    # any provider the platform could build now refuses to be called
    monkeypatch.setattr(OfflineProvider, "complete", RefusingProvider.complete)

    replayed = replay_explanation(audit, decision, PROMPTS)

    assert replayed.identical, replayed.problems
    assert replayed.explanation == stored, "the stored completion is the replay's output"

    # a prompt version that no longer exists is reported, not silently re-rendered
    (tmp_path / "prompts").mkdir()
    gone = replay_explanation(audit, decision, tmp_path / "prompts")
    assert not gone.identical and "decision_explanation" in gone.problems[0]

    # and an approval has nothing to replay, a review without one says so
    missing = replay_explanation(
        audit, decision.model_copy(update={"decision_id": "dec_other"}), PROMPTS
    )
    assert missing.problems == ("no explanation stored",)


def test_close_stops_within_its_timeout_and_calls_no_provider_after(audit: AuditStore) -> None:
    # given a provider hanging in the first explanation and three more decisions queued
    provider = BlockedProvider()
    explanations = ExplanationQueue(
        Explainer(LlmGateway(provider, PROMPTS, InMemoryLlmCallRecorder()), audit)
    )
    decisions = [
        decide(audit, {"text": {**MESSAGE, "message_id": f"m{i}"}}, conduct=VulnerableConduct())
        for i in range(4)
    ]
    for decision in decisions:
        explanations.submit(decision)
    assert provider.entered.wait(10), "the worker must be inside the provider"

    # when the service stops with a 1 s budget
    started = time.perf_counter()
    explanations.close(timeout=1.0)
    elapsed = time.perf_counter() - started
    provider.release.set()

    # then close kept to its budget, called nothing more, and stored the queued as unavailable
    assert elapsed < 1.8, f"close(timeout=1.0) took {elapsed:.1f} s"
    assert provider.calls == 1, "no provider call once shutdown started"
    for decision in decisions[1:]:
        explanation = stored_explanation(audit, decision.decision_id)
        assert explanation is not None and explanation.status == "unavailable"
        assert "shutting down" in explanation.error


def explained(audit: AuditStore, transaction_id: str) -> RiskDecision:
    """A review decided and explained as the service does it: the call logged in the store."""
    decision = decide(audit, {"transaction": {**PAYMENT, "transaction_id": transaction_id}})
    gateway = LlmGateway(OfflineProvider(), PROMPTS, AuditLlmCallRecorder(audit))
    assert Explainer(gateway, audit).explain(decision) is not None
    return decision


def forge(audit: AuditStore, decision: RiskDecision, changes: dict[str, object]) -> None:
    """Append an explanation of ``decision`` copied from another's with ``changes``: its own
    chain row is valid, so only what it claims can give it away."""
    honest = next(audit.records(EXPLANATION_KIND)).body["explanation"]
    stored = audit.get(decision.decision_id)
    assert stored is not None
    link = {"decision_seq": stored.seq, "decision_row_hash": stored.row_hash}
    forged = {**honest, "decision_id": decision.decision_id, **link, **changes}
    audit.append(
        EXPLANATION_KIND, explanation_record_id(decision.decision_id), {"explanation": forged}
    )


def test_replay_refuses_an_explanation_forged_through_the_store(audit: AuditStore) -> None:
    # given an honest explanation, and forged ones for three other decisions
    honest = explained(audit, "t1")
    wrong_row, wrong_output, no_call = (
        decide(audit, {"transaction": {**PAYMENT, "transaction_id": f"t{i}"}}) for i in (2, 3, 4)
    )
    forge(audit, wrong_row, {"decision_seq": 1, "decision_row_hash": "0" * 64})
    forge(audit, wrong_output, {"output": "Nothing suspicious: approve and close the case."})
    forge(audit, no_call, {"call_id": "no-such-call"})

    # when each is replayed
    row, output, call = (
        replay_explanation(audit, d, PROMPTS).problems for d in (wrong_row, wrong_output, no_call)
    )

    # then the honest one still replays identical and each forgery names what it got wrong
    assert replay_explanation(audit, honest, PROMPTS).identical
    assert any("names decision row seq 1" in p for p in row), row
    assert any("has another output" in p for p in output), output
    assert any("no llm_call record 'no-such-call'" in p for p in call), call


def test_replay_finds_a_row_edited_in_the_database(tmp_path: Path) -> None:
    # given an explained decision whose explanation row is edited in place, triggers dropped
    audit_path = tmp_path / "edited.db"
    audit = AuditStore.open(f"sqlite:///{audit_path}")
    decision = explained(audit, "t1")
    record_id = explanation_record_id(decision.decision_id)
    audit.close()
    with sqlite3.connect(audit_path) as db:
        for (trigger,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            db.execute(f"DROP TRIGGER {trigger}")
        db.execute(
            "UPDATE audit_records SET body = replace(body, 'Sent to', 'Approve. Sent to') "
            "WHERE record_id = ?",
            (record_id,),
        )

    # when it is replayed
    audit = AuditStore.open(f"sqlite:///{audit_path}")
    try:
        replayed = replay_explanation(audit, decision, PROMPTS)
    finally:
        audit.close()

    # then the edited row is named
    assert any(f"row {record_id}" in p and "edited" in p for p in replayed.problems), (
        replayed.problems
    )


def test_replay_finds_the_parameters_changed_under_the_same_version(
    audit: AuditStore, tmp_path: Path
) -> None:
    # given an explained decision and its prompt version's temperature edited in a copy
    decision = explained(audit, "t1")
    prompts = tmp_path / "prompts"
    shutil.copytree(PROMPTS, prompts)
    prompt_file = prompts / "decision_explanation" / "v1.yaml"
    text = prompt_file.read_text()
    assert "temperature: 0.0" in text
    prompt_file.write_text(text.replace("temperature: 0.0", "temperature: 1.5"))

    replayed = replay_explanation(audit, decision, prompts)

    assert replayed.problems == ("decision_explanation@1's parameters changed since it explained",)


def explanations_counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("risk_explanations_total", {"outcome": outcome}) or 0.0


def test_every_explanation_outcome_is_counted_in_prometheus(audit: AuditStore) -> None:
    # given the four outcome series before
    outcomes = ("ok", "unavailable", "dropped", "failed")
    before = {outcome: explanations_counted(outcome) for outcome in outcomes}

    # when one decision is explained, one finds the provider down, one finds the queue full
    # behind a hanging provider, and one is not in the audit store (the explainer raises)
    Explainer(LlmGateway(OfflineProvider(), PROMPTS, InMemoryLlmCallRecorder()), audit).explain(
        decide(audit, {"transaction": PAYMENT})
    )
    down = Explainer(LlmGateway(FailingProvider(), PROMPTS, InMemoryLlmCallRecorder()), audit)
    down.explain(decide(audit, {"transaction": {**PAYMENT, "transaction_id": "t2"}}))
    blocked = BlockedProvider()
    queue = ExplanationQueue(
        Explainer(LlmGateway(blocked, PROMPTS, InMemoryLlmCallRecorder()), audit), limit=1
    )
    queued = [
        decide(audit, {"text": {**MESSAGE, "message_id": f"q{i}"}}, conduct=VulnerableConduct())
        for i in range(3)
    ]
    queue.submit(queued[0])
    assert blocked.entered.wait(10), "the worker must be inside the provider"
    queue.submit(queued[1])  # waits in the queue's one place
    queue.submit(queued[2])  # the queue is full: dropped
    blocked.release.set()
    queue.close(timeout=5.0)
    failing = ExplanationQueue(
        Explainer(LlmGateway(OfflineProvider(), PROMPTS, InMemoryLlmCallRecorder()), audit)
    )
    failing.submit(queued[0].model_copy(update={"decision_id": "dec_not_stored"}))
    failing.close(timeout=5.0)

    # then each outcome moved its own series
    moved = {outcome: explanations_counted(outcome) - before[outcome] for outcome in outcomes}
    # unavailable: the provider down, the hanging call, the one queued when the queue closed
    assert moved == {"ok": 1, "unavailable": 3, "dropped": 1, "failed": 1}, moved
