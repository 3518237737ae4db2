"""The bounds of a request that depend on the deployment and the clock (``configs/contract.yaml``).

``decisioning.core.events`` says what an event is (types, lengths, finite amounts); this says what a
deployment will decide: amounts within its range and event times within a window around now. A
request outside them is refused field by field, in the shape pydantic gives its own errors, and
nothing is written. Replay never checks these: a stored decision was within them when it was made.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from decisioning.core.events import TextEvent, TransactionEvent


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AmountBounds(_Strict):
    max: float = Field(gt=0, allow_inf_nan=False)
    min_positive: float = Field(gt=0, allow_inf_nan=False)


class EventTimeWindow(_Strict):
    past_days: int = Field(gt=0)
    future_minutes: int = Field(ge=0)


class ContractLimits(_Strict):
    amount: AmountBounds
    event_time: EventTimeWindow


def load_contract_limits(path: Path) -> ContractLimits:
    return ContractLimits.model_validate(yaml.safe_load(path.read_text()))


def refusals(
    limits: ContractLimits,
    now: datetime,
    transaction: TransactionEvent | None = None,
    text: TextEvent | None = None,
) -> list[dict[str, Any]]:
    """Every bound the request breaks, as ``{"type", "loc", "msg"}``; empty when it is within."""
    found: list[dict[str, Any]] = []
    if transaction is not None:
        amount = transaction.amount
        if amount > limits.amount.max:
            found.append(
                _refusal("transaction", "amount", f"must be at most {limits.amount.max:g}")
            )
        elif 0 < amount < limits.amount.min_positive:
            bound = limits.amount.min_positive
            found.append(_refusal("transaction", "amount", f"must be 0 or at least {bound:g}"))
        found += _outside_window(
            limits.event_time, now, "transaction", "occurred_at", transaction.occurred_at
        )
    if text is not None:
        found += _outside_window(limits.event_time, now, "text", "received_at", text.received_at)
    return found


def _outside_window(
    window: EventTimeWindow, now: datetime, event: str, field: str, moment: datetime
) -> list[dict[str, Any]]:
    earliest = now - timedelta(days=window.past_days)
    latest = now + timedelta(minutes=window.future_minutes)
    if earliest <= moment <= latest:
        return []
    message = (
        f"must be within {window.past_days} days before and {window.future_minutes} minutes "
        "after the service's clock"
    )
    return [_refusal(event, field, message)]


def _refusal(event: str, field: str, message: str) -> dict[str, Any]:
    return {"type": "out_of_bounds", "loc": [event, field], "msg": message}
