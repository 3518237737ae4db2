"""The request contract: strict types, bounded strings, and the deployment's bounds on top."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from decisioning.core.contract import load_contract_limits, refusals
from decisioning.core.engine import DecisionRequest
from decisioning.core.events import TextEvent, TransactionEvent
from tests.support.events import MESSAGE, PAYMENT

LIMITS = load_contract_limits(Path(__file__).resolve().parents[4] / "configs" / "contract.yaml")
NOW = datetime(2026, 6, 1, 10, 5, tzinfo=UTC)  # five minutes after PAYMENT and MESSAGE


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", True),
        ("amount", "12.5"),
        ("amount", -1),
        ("amount", float("inf")),
        ("occurred_at", 0),
        ("occurred_at", 1780000000.0),
        ("occurred_at", "2026-06-01T10:00:00"),  # no zone
        ("card_id", "c" * 1_000_000),
        ("device_id", "d" * 129),
        ("channel", "x" * 65),
        ("card_id", ""),
        ("terminal_id", "__materialized__"),  # the feature store's marker rows' id
        ("customer_id", "__materialized__"),
    ],
)
def test_a_payment_outside_the_types_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        TransactionEvent.model_validate({**PAYMENT, field: value})

    assert refused.value.errors()[0]["loc"] == (field,), refused.value.errors()


@pytest.mark.parametrize(
    ("field", "value"),
    [("received_at", 0), ("related_transaction_id", "r" * 129), ("customer_id", "c" * 129)],
)
def test_a_message_outside_the_types_is_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        TextEvent.model_validate({**MESSAGE, field: value})


def test_zero_and_whole_numbers_are_amounts() -> None:
    assert TransactionEvent.model_validate({**PAYMENT, "amount": 0}).amount == 0.0
    assert TransactionEvent.model_validate({**PAYMENT, "amount": 12}).amount == 12.0


def test_json_true_is_not_an_amount_even_through_the_json_parser() -> None:
    body = '{"transaction": {"transaction_id": "t", "occurred_at": "2026-06-01T10:00:00Z", '
    body += '"customer_id": "c", "terminal_id": "x", "amount": true}}'

    with pytest.raises(ValidationError):
        DecisionRequest.model_validate_json(body)


@pytest.mark.parametrize(
    ("amount", "refused"),
    [
        *[(0, False), (0.01, False), (24.5, False), (1_000_000, False)],
        *[(1e-40, True), (5e-324, True), (1_000_000.01, True), (1e39, True), (1e308, True)],
    ],
)
def test_amounts_outside_the_deployments_range_are_refused(amount: float, refused: bool) -> None:
    payment = TransactionEvent.model_validate({**PAYMENT, "amount": amount})

    found = refusals(LIMITS, NOW, transaction=payment)

    assert bool(found) == refused, found
    if refused:
        assert found[0]["loc"] == ["transaction", "amount"]


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "1970-01-01T00:00:00Z",
        (NOW + timedelta(minutes=16)).isoformat(),
        (NOW - timedelta(days=732)).isoformat(),
    ],
)
def test_event_times_outside_the_window_around_now_are_refused(moment: str) -> None:
    payment = TransactionEvent.model_validate({**PAYMENT, "occurred_at": moment})
    message = TextEvent.model_validate({**MESSAGE, "received_at": moment})

    found = refusals(LIMITS, NOW, transaction=payment, text=message)

    assert [refusal["loc"] for refusal in found] == [
        ["transaction", "occurred_at"],
        ["text", "received_at"],
    ]


def test_an_ordinary_request_is_within_every_bound() -> None:
    request = DecisionRequest.model_validate({"transaction": PAYMENT, "text": MESSAGE})

    assert refusals(LIMITS, NOW, request.transaction, request.text) == []
