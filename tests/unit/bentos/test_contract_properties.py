"""Properties of the contract through RiskService's app (hypothesis): accepted -> a decision,
refused -> a 4xx that writes nothing, and the next ordinary payment is always decided."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from decisioning.core.engine import DecisionRequest
from tests.support.clock import NOW
from tests.support.served import audit_rows
from tests.unit.bentos.asgi import KEY

AUTH = {"Authorization": f"Bearer {KEY}"}

amounts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1e39, 1e-40, 5e-324, 1e308, -0.0, 24.5]),
    st.booleans(),
    st.text(max_size=5),
)
days = st.integers(min_value=-800_000, max_value=3_000_000)
moments = st.one_of(
    days.map(lambda d: (datetime(2026, 6, 1, tzinfo=UTC) + timedelta(minutes=d)).isoformat()),
    st.integers(),
    st.sampled_from(["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "x"]),
)
names = st.text(min_size=0, max_size=200)


@st.composite
def payments(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "transaction_id": f"prop-{uuid.uuid4().hex}",
        "occurred_at": draw(moments),
        "customer_id": "C-prop",
        "terminal_id": draw(st.one_of(st.just("T1"), names)),
        "amount": draw(amounts),
        "card_id": draw(st.one_of(st.none(), names)),
        "device_id": draw(st.one_of(st.none(), names)),
        "channel": draw(st.one_of(st.none(), names)),
    }


def ordinary() -> dict[str, Any]:
    return {
        "transaction_id": f"ordinary-{uuid.uuid4().hex}",
        "occurred_at": NOW.isoformat(),
        "customer_id": "C-prop",
        "terminal_id": "T1",
        "amount": 24.5,
    }


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(payments(), min_size=1, max_size=3))
def test_accepted_is_decided_refused_writes_nothing_and_the_next_payment_is_decided(
    risk_app: tuple[TestClient, Path], sequence: list[dict[str, Any]]
) -> None:
    client, home = risk_app
    for payment in sequence:
        before = audit_rows(home)

        response = client.post("/v1/decisions", json={"transaction": payment}, headers=AUTH)

        assert response.status_code in (200, 400), (payment, response.text)
        if response.status_code == 400:
            assert audit_rows(home) == before, "a refused payment must write nothing"
        else:
            DecisionRequest.model_validate({"transaction": payment})  # the contract accepts it
            assert audit_rows(home) == before + 1

    response = client.post("/v1/decisions", json={"transaction": ordinary()}, headers=AUTH)
    assert response.status_code == 200, response.text
