"""The service classes called directly: a scorer without a model says why, with the policy cause."""

import inspect
from pathlib import Path

import bentoml
import pytest

from bentos.service import FraudScorer, ScorerUnavailable, bind_routes
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


@bentoml.service(name="bound_routes_example")
class _Example:
    @bentoml.api
    def double(self, value: int = 1) -> int:
        return value * 2


def test_a_bound_route_is_looked_up_without_reading_its_signature_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a service instance whose routes are bound once, and inspect.signature counted after
    instance = _Example.inner()
    bind_routes(instance)
    calls: list[object] = []
    real = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda *a, **k: calls.append(a) or real(*a, **k))

    # when BentoML looks the route up for a request, twice, and calls it as it does
    first = instance.double.local  # type: ignore[attr-defined]
    second = instance.double.local  # type: ignore[attr-defined]

    # then no signature is read again, and the route answers as before, defaults included
    assert calls == []
    assert first is second
    assert first(value=3) == 6 and first() == 2
