"""RiskService's ASGI app through a test client: keys, field-level 4xx, an audited decision.

The second of the three tiers: the real app BentoML builds (routes, pydantic models, the key
middleware) in this process, no models registered, so every decision is the policy's fallback.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.testclient import TestClient

from decisioning.core.decision import RiskDecision, canonical_json
from tests.support.events import PAYMENT
from tests.support.served import audit_rows, recorded_decision
from tests.support.spans import collected_spans
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


def test_the_answer_is_the_audit_records_decision_byte_for_byte(
    client: tuple[TestClient, Path],
) -> None:
    # an answer a client kept can be compared with the record, byte for byte
    test_client, home = client
    payment = {**PAYMENT, "transaction_id": f"{PAYMENT['transaction_id']}-bytes"}  # not a repeat

    response = test_client.post(
        "/v1/decisions", json={"transaction": payment}, headers={"Authorization": f"Bearer {KEY}"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    decision = response.json()
    stored = recorded_decision(home, decision["decision_id"])
    assert audit_rows(home) >= 1  # the chain verifies: every stored body is canonical JSON
    assert response.content == canonical_json(stored).encode()
    assert RiskDecision.model_validate(decision).decision_id == decision["decision_id"]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    yield from collected_spans()


def test_a_served_decision_is_one_trace_under_its_server_span(
    client: tuple[TestClient, Path], spans: InMemorySpanExporter
) -> None:
    # BentoML's own middleware made an unsampled span here, and every span beneath it was dropped
    test_client, _ = client
    payment = {**PAYMENT, "transaction_id": f"{PAYMENT['transaction_id']}-traced"}  # not a repeat

    response = test_client.post(
        "/v1/decisions", json={"transaction": payment}, headers={"Authorization": f"Bearer {KEY}"}
    )

    finished = {span.name: span for span in spans.get_finished_spans()}
    server, decision = finished["POST /v1/decisions"], finished["decision"]
    assert decision.parent.span_id == server.context.span_id
    assert response.json()["trace_id"] == trace.format_trace_id(server.context.trace_id)
    assert "audit.write" in finished, sorted(finished)


def test_bentomls_own_tracing_middleware_is_off(client: tuple[TestClient, Path]) -> None:
    # its spans go to a provider of its own: what shows it off is the URL it skips
    from bentoml._internal.configuration.containers import BentoMLContainer

    skipped = BentoMLContainer.tracing_excluded_urls.get()

    assert skipped.url_disabled("http://testserver/v1/decisions")
