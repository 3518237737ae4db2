"""The service classes called directly: a scorer without a model says why, with the policy cause."""

from pathlib import Path

import pytest

from bentos.service import FraudScorer, ScorerUnavailable
from decisioning.core.events import TransactionEvent

PAYMENT = TransactionEvent.model_validate(
    {
        "transaction_id": "tx1",
        "occurred_at": "2026-06-01T10:00:00Z",
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount": 12.5,
    }
)


@pytest.mark.slow
def test_fraud_scorer_without_a_champion_answers_503_naming_the_cause(risk_home: Path) -> None:
    scorer = FraudScorer.inner()

    with pytest.raises(ScorerUnavailable) as refused:
        scorer.score(PAYMENT)

    assert str(refused.value).startswith("fraud_model_unavailable")
    assert refused.value.error_code == 503
