"""The engine with stand-in pillars: audited decisions, degradation, replay, request contract."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine, text

from decisioning.adapters.audit import AuditStore
from decisioning.core.decision import (
    Evidence,
    FeatureValue,
    ModelVersion,
    ReasonCode,
    RiskDecision,
    canonical_json,
    sha256_hex,
)
from decisioning.core.engine import DecisionEngine, DecisionRequest
from decisioning.core.errors import AuditUnavailable
from decisioning.core.events import TextEvent, TransactionEvent
from decisioning.core.policy import ConductInput, FraudInput, load_policy
from decisioning.core.ports import ConductResult, FraudResult, PillarUnavailable
from tests.support.events import MESSAGE, PAYMENT

CONFIG = Path(__file__).resolve().parents[4] / "configs" / "policy.yaml"
FRAUD_MODEL = ModelVersion(name="fraud-detector", version="3", run_id="r3")
CONDUCT_MODEL = ModelVersion(name="conduct-classifier", version="2")


class StandInFraud:
    """Scores by the 10-minute count it is given: deterministic, so replays must agree."""

    def __init__(self, count: int = 1, fail: bool = False) -> None:
        self.count, self.fail = count, fail

    def assess(self, event: TransactionEvent) -> FraudResult:
        if self.fail:
            raise PillarUnavailable("features_unavailable", "redis down")
        values: dict[str, FeatureValue] = {"velocity_10m_count": self.count}
        return FraudResult(self.rescore(values, FRAUD_MODEL), values, None, FRAUD_MODEL, "fraud_v1")

    def rescore(self, feature_values: dict[str, FeatureValue], model: ModelVersion) -> FraudInput:
        count = float(feature_values["velocity_10m_count"] or 0)
        score = min(count / 10, 1.0)
        action = "decline" if score >= 0.9 else "approve"
        reason = ReasonCode(
            code="velocity.burst_10m",
            description=f"{count:.0f} payments in the last 10 minutes",
            contribution=count,
            source="model",
        )
        return FraudInput(score=score, action=action, reason_codes=(reason,))


class StandInConduct:
    def assess(self, event: TextEvent) -> ConductResult:
        return ConductResult(self.reassess(event, CONDUCT_MODEL), CONDUCT_MODEL, "rules-v1")

    def reassess(self, event: TextEvent, model: ModelVersion) -> ConductInput:
        span = Evidence(kind="span", reference="m1:rule", quote=event.text, start=0, end=12)
        return ConductInput("conduct.vulnerable_customer", "high", 0.8, "rule", (), (span,))

    def replay_facts(self, decision: RiskDecision, event: TextEvent, audit: Any) -> tuple[str, ...]:
        return ()


class AssessOnlyConduct:
    """A conduct pillar that only assesses, as the served one over HTTP does."""

    def assess(self, event: TextEvent) -> ConductResult:
        return StandInConduct().assess(event)


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[AuditStore]:
    store = AuditStore.open(f"sqlite:///{tmp_path / 'audit.db'}")
    yield store
    store.close()


def engine(audit: AuditStore, fraud: object = None, conduct: object = None) -> DecisionEngine:
    return DecisionEngine(
        load_policy(CONFIG),
        audit,
        fraud,  # type: ignore[arg-type]
        conduct,  # type: ignore[arg-type]
        clock=lambda: datetime(2026, 6, 1, 10, 0, 1, tzinfo=UTC),
    )


def test_a_burst_is_declined_audited_and_explained(audit: AuditStore) -> None:
    decision = engine(audit, StandInFraud(count=10)).decide(
        DecisionRequest.model_validate({"transaction": PAYMENT})
    )

    assert decision.action == "decline" and decision.risk_category == "fraud.card_testing"
    assert decision.model_versions == (FRAUD_MODEL,)
    assert decision.feature_values == {"velocity_10m_count": 10}
    assert len(decision.trace_id) == 32 and decision.input_hash
    stored = audit.get(decision.decision_id)
    assert stored is not None and stored.body["request"]["transaction"]["amount"] == 12.5
    assert audit.verify().ok


def test_an_answer_is_the_audit_records_decision_byte_for_byte(audit: AuditStore) -> None:
    # given a decision taken, and the same request again (answered from the store)
    request = DecisionRequest.model_validate({"transaction": PAYMENT})
    decider = engine(audit, StandInFraud(count=10))
    first, again = decider.answer(request), decider.answer(request)
    # then each answer's text is its decision's canonical JSON
    for answer in (first, again):
        assert answer.text == canonical_json(answer.decision.model_dump(mode="json"))
    assert json.loads(again.text) == {**json.loads(first.text), "replay": True}
    # and the stored record is canonical JSON whose decision is the first answer's text
    with audit._engine.connect() as connection:
        stored_text = connection.execute(
            text("SELECT body FROM audit_records WHERE record_id = :id"),
            {"id": first.decision.decision_id},
        ).scalar_one()
    body = json.loads(stored_text)
    assert stored_text == canonical_json(body)
    assert canonical_json(body["decision"]) == first.text
    assert body["decision"]["input_hash"] == sha256_hex(canonical_json(body["request"]))
    assert audit.verify().ok


def test_a_failed_feature_fetch_is_degraded_to_review(audit: AuditStore) -> None:
    decision = engine(audit, StandInFraud(fail=True)).decide(
        DecisionRequest.model_validate({"transaction": PAYMENT})
    )

    assert decision.action == "review"
    assert [d.component for d in decision.degraded] == ["features_unavailable"]


def test_a_missing_model_is_never_a_silent_approval(audit: AuditStore) -> None:
    decision = engine(audit, fraud=None).decide(
        DecisionRequest.model_validate({"transaction": PAYMENT})
    )

    assert decision.action == "review" and decision.degraded


def test_payment_and_message_together_take_the_more_severe_action(audit: AuditStore) -> None:
    decision = engine(audit, StandInFraud(count=1), StandInConduct()).decide(
        DecisionRequest.model_validate({"transaction": PAYMENT, "text": MESSAGE})
    )

    assert decision.subject == "both" and decision.action == "escalate"
    assert decision.evidence[-1].quote == "I can't cope"
    assert {m.name for m in decision.model_versions} == {"fraud-detector", "conduct-classifier"}


def test_replay_recomputes_the_same_decision(audit: AuditStore) -> None:
    decided = engine(audit, StandInFraud(count=7), StandInConduct()).decide(
        DecisionRequest.model_validate({"transaction": PAYMENT, "text": MESSAGE})
    )

    report = engine(audit, StandInFraud(count=0), StandInConduct()).replay(decided.decision_id)

    assert report.identical, report.differences


def test_replay_of_a_text_decision_needs_a_pillar_that_can_replay(audit: AuditStore) -> None:
    """A conduct pillar served over HTTP assesses only: replaying a text decision with it says
    so instead of comparing against nothing (replay runs in process)."""
    decided = engine(audit, None, AssessOnlyConduct()).decide(
        DecisionRequest.model_validate({"text": MESSAGE})
    )

    with pytest.raises(TypeError, match="AssessOnlyConduct cannot replay"):
        engine(audit, None, AssessOnlyConduct()).replay(decided.decision_id)


def test_a_text_decision_conduct_never_scored_replays_without_the_replay_side(
    audit: AuditStore,
) -> None:
    """Decided while conduct was unavailable, a text decision holds no conduct model: replaying
    it asks nothing of the pillar, so an assess-only one replays it as before."""
    decided = engine(audit, None, None).decide(DecisionRequest.model_validate({"text": MESSAGE}))

    report = engine(audit, None, AssessOnlyConduct()).replay(decided.decision_id)

    assert report.identical, report.differences


def test_replay_reports_what_a_changed_model_would_decide(audit: AuditStore) -> None:
    decided = engine(audit, StandInFraud(count=10)).decide(
        DecisionRequest.model_validate({"transaction": PAYMENT})
    )

    class Lenient(StandInFraud):
        def rescore(
            self, feature_values: dict[str, FeatureValue], model: ModelVersion
        ) -> FraudInput:
            return FraudInput(score=0.1, action="approve", reason_codes=())

    report = engine(audit, Lenient()).replay(decided.decision_id)

    assert report.differences["action"] == ("decline", "approve")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"transaction": {**PAYMENT, "label": 1}},
        {"transaction": {**PAYMENT, "amount": "lots"}},
        {"transaction": PAYMENT, "extra": True},
        {"text": {**MESSAGE, "text": ""}},
    ],
    ids=["empty", "label supplied", "bad amount", "unknown field", "empty text"],
)
def test_bad_requests_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DecisionRequest.model_validate(body)


def test_a_decision_the_audit_store_did_not_record_is_not_returned(tmp_path: Path) -> None:
    # given an audit store whose database cannot be opened
    unreachable = AuditStore(create_engine(f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"))
    # when a payment is decided, then the engine raises instead of returning the decision
    with pytest.raises(AuditUnavailable):
        engine(unreachable, StandInFraud(count=1)).decide(
            DecisionRequest.model_validate({"transaction": PAYMENT})
        )
