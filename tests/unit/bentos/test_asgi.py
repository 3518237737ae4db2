"""RiskService's ASGI app through a test client: keys, field-level 4xx, an audited decision.

The second of the three tiers: the real app BentoML builds (routes, pydantic models, the key
middleware) in this process, no models registered, so every decision is the policy's fallback.
"""

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.support.events import PAYMENT
from tests.support.served import audit_rows
from tests.unit.bentos.asgi import KEY

pytestmark = pytest.mark.slow


@pytest.fixture
def client(risk_app: tuple[TestClient, Path]) -> tuple[TestClient, Path]:
    return risk_app


def test_without_a_key_the_app_answers_401(client: tuple[TestClient, Path]) -> None:
    test_client, _ = client

    assert test_client.post("/v1/decisions", json={"transaction": PAYMENT}).status_code == 401


def test_bad_input_gets_a_field_level_reason_and_writes_nothing(
    client: tuple[TestClient, Path],
) -> None:
    test_client, home = client
    before = audit_rows(home)
    body = {"transaction": {**PAYMENT, "amount": "lots"}}

    response = test_client.post(
        "/v1/decisions", json=body, headers={"Authorization": f"Bearer {KEY}"}
    )

    assert 400 <= response.status_code < 500, response.text
    assert "amount" in response.text, f"the reason must name the field: {response.text}"
    assert audit_rows(home) == before, "a refused request must not be audited"


def test_a_payment_gets_a_complete_audited_decision(client: tuple[TestClient, Path]) -> None:
    test_client, home = client
    before = audit_rows(home)

    response = test_client.post(
        "/v1/decisions", json={"transaction": PAYMENT}, headers={"Authorization": f"Bearer {KEY}"}
    )

    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["degraded"], "without a fraud model the decision must be degraded"
    assert decision["degraded"][0]["component"] == "fraud_model_unavailable"
    assert decision["action"] == "review", "a missing model must never approve"
    assert decision["trace_id"] and decision["decision_id"]
    assert audit_rows(home) == before + 1, "the decision must be in the audit store"
