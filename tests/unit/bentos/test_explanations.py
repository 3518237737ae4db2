"""RiskService's app explains a review after answering it: a linked record in its audit store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from decisioning.adapters.audit import AuditStore
from decisioning.adapters.llm.explanation import stored_explanation
from decisioning.settings import load_settings
from tests.support.events import PAYMENT
from tests.unit.bentos.asgi import KEY

pytestmark = pytest.mark.slow


def wait_for_explanation(home: Path, decision_id: str, patience_s: float = 30.0) -> object:
    """The decision's explanation once the service's background queue wrote it."""
    store = AuditStore.open(load_settings({"RISK_HOME": str(home), "RISK_ENV": "local"}).audit.url)
    try:
        deadline = time.monotonic() + patience_s
        while time.monotonic() < deadline:
            explanation = stored_explanation(store, decision_id)
            if explanation is not None:
                return explanation
            time.sleep(0.1)
        return None
    finally:
        store.close()


def test_a_reviewed_payment_is_explained_after_its_answer(
    risk_app: tuple[TestClient, Path],
) -> None:
    client, home = risk_app
    payment = {**PAYMENT, "transaction_id": "tx-explained"}

    response = client.post(
        "/v1/decisions", json={"transaction": payment}, headers={"Authorization": f"Bearer {KEY}"}
    )

    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["action"] == "review", "no fraud model: the policy's review fallback"
    assert decision["prompt_version"] is None, "the decision itself used no LLM"
    explanation = wait_for_explanation(home, decision["decision_id"])
    assert explanation is not None, "a review must get a linked explanation"
    assert explanation.prompt_version == "decision_explanation@1"  # type: ignore[attr-defined]
    assert "fraud_model_unavailable" in explanation.output  # type: ignore[attr-defined]
