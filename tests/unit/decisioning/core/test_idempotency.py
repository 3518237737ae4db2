"""Repeats decide once: one decision, one audit row, one count in the customer's history.

The engine with a counting stand-in for the fraud pillar and a real audit store (SQLite file);
"two workers" are two engines, each with its own store on the same database.
"""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from decisioning.adapters.audit import AuditStore
from decisioning.core.decision import FeatureValue, ModelVersion
from decisioning.core.engine import DecisionEngine, DecisionRequest
from decisioning.core.errors import AuditUnavailable, IdempotencyConflict
from decisioning.core.events import TransactionEvent
from decisioning.core.policy import FraudInput, load_policy
from decisioning.core.ports import FraudResult
from tests.support.events import MESSAGE, PAYMENT

CONFIG = Path(__file__).resolve().parents[4] / "configs" / "policy.yaml"
MODEL = ModelVersion(name="fraud-detector", version="1")
REQUEST = DecisionRequest.model_validate({"transaction": PAYMENT})


class CountingFraud:
    """Scores nothing of note; counts the pushes the engine asks for, as a history would."""

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self._lock = threading.Lock()

    def assess(self, event: TransactionEvent) -> FraudResult:
        values: dict[str, FeatureValue] = {"velocity_10m_count": len(self.pushed) + 1}

        def push() -> None:
            with self._lock:
                self.pushed.append(event.transaction_id)

        return FraudResult(
            self.rescore(values, MODEL), values, None, MODEL, "fraud_v3", record_payment=push
        )

    def rescore(self, feature_values: dict[str, FeatureValue], model: ModelVersion) -> FraudInput:
        return FraudInput(score=0.01, action="approve", reason_codes=())


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.db'}"


@pytest.fixture
def audit(database: str) -> Iterator[AuditStore]:
    store = AuditStore.open(database)
    yield store
    store.close()


def engine(audit: AuditStore, fraud: CountingFraud) -> DecisionEngine:
    return DecisionEngine(load_policy(CONFIG), audit, fraud, None)


def rows(audit: AuditStore) -> int:
    return sum(1 for _ in audit.records())


def test_a_repeat_gets_the_stored_decision_and_counts_nothing(audit: AuditStore) -> None:
    fraud = CountingFraud()
    decide = engine(audit, fraud).decide

    first, second, third = decide(REQUEST), decide(REQUEST), decide(REQUEST)

    assert first.decision_id == second.decision_id == third.decision_id
    assert not first.replay and second.replay and third.replay, "repeats say they are repeats"
    assert second.model_copy(update={"replay": False}) == first, "the stored answer, unchanged"
    assert rows(audit) == 1, "a repeat writes no audit row"
    assert fraud.pushed == ["tx1"], "a repeat is not counted in the customer's history again"


def test_the_same_id_with_another_request_is_a_conflict(audit: AuditStore) -> None:
    fraud = CountingFraud()
    engine(audit, fraud).decide(REQUEST)
    other = DecisionRequest.model_validate({"transaction": {**PAYMENT, "amount": 99.0}})

    with pytest.raises(IdempotencyConflict):
        engine(audit, fraud).decide(other)

    assert rows(audit) == 1 and fraud.pushed == ["tx1"]


def test_a_message_is_idempotent_by_its_message_id(audit: AuditStore) -> None:
    request = DecisionRequest.model_validate({"text": MESSAGE})
    decide = engine(audit, CountingFraud()).decide

    assert decide(request).decision_id == decide(request).decision_id
    assert rows(audit) == 1


def test_a_retry_after_an_audit_outage_counts_once(database: str, tmp_path: Path) -> None:
    # given a first attempt whose audit write fails (the service answers 503)
    fraud = CountingFraud()
    broken = AuditStore(create_engine(f"sqlite:///{tmp_path / 'missing' / 'audit.db'}"))
    with pytest.raises(AuditUnavailable):
        engine(broken, fraud).decide(REQUEST)
    # then nothing was counted
    assert fraud.pushed == []

    # when the caller retries once the store is back, and once more
    store = AuditStore.open(database)
    try:
        first, again = engine(store, fraud).decide(REQUEST), engine(store, fraud).decide(REQUEST)
        # then the payment is decided and counted once
        assert first.decision_id == again.decision_id and again.replay
        assert fraud.pushed == ["tx1"] and rows(store) == 1
    finally:
        store.close()


def test_concurrent_repeats_on_two_workers_decide_once(database: str) -> None:
    # given two workers (each its own engine and store) sharing the counted history
    fraud = CountingFraud()
    stores = [AuditStore.open(database) for _ in range(2)]
    engines = [engine(store, fraud) for store in stores]
    answers: list[str] = []
    replays: list[bool] = []
    failures: list[BaseException] = []
    start = threading.Barrier(8)

    def send(worker: DecisionEngine) -> None:
        start.wait()
        try:
            decision = worker.decide(REQUEST)
            answers.append(decision.decision_id)
            replays.append(decision.replay)
        except BaseException as exc:  # collected, so the test names it
            failures.append(exc)

    # when eight copies of one payment arrive at once, four on each worker
    threads = [threading.Thread(target=send, args=(engines[i % 2],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        # then every caller gets the one decision, one of them the original
        assert not failures, failures
        assert len(set(answers)) == 1 and len(answers) == 8
        assert replays.count(False) == 1, replays
        assert rows(stores[0]) == 1, "one audit row"
        assert fraud.pushed == ["tx1"], "one count in the history"
        assert stores[0].verify().ok
    finally:
        for store in stores:
            store.close()
