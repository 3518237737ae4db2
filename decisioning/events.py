"""The event contracts of DESIGN 4.1: column names and types of transactions and texts.

Column specs drive file ingestion (``pipelines.ingest``); the pydantic models check a single event
arriving over HTTP, where labels are refused because a caller must never supply its own outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ColumnKind = Literal["string", "timestamp", "float", "label"]

TRANSACTION_REQUIRED: dict[str, ColumnKind] = {
    "transaction_id": "string",
    "occurred_at": "timestamp",
    "customer_id": "string",
    "terminal_id": "string",
    "amount": "float",
}
TRANSACTION_OPTIONAL: dict[str, ColumnKind] = {
    "card_id": "string",
    "currency": "string",
    "channel": "string",
    "country": "string",
    "mcc": "string",
    "device_id": "string",
    "label": "label",
    "label_available_at": "timestamp",
}
TEXT_REQUIRED: dict[str, ColumnKind] = {
    "message_id": "string",
    "received_at": "timestamp",
    "text": "string",
}
TEXT_OPTIONAL: dict[str, ColumnKind] = {
    "customer_id": "string",
    "channel": "string",
    "related_transaction_id": "string",
}
TEXT_CHANNELS = ("complaint", "chat", "email", "call_note")


class TransactionEvent(BaseModel):
    """One payment to decide. Labels are not accepted here: outcomes arrive later, by batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: str = Field(min_length=1, max_length=128)
    occurred_at: AwareDatetime
    customer_id: str = Field(min_length=1, max_length=128)
    terminal_id: str = Field(min_length=1, max_length=128)
    amount: float = Field(gt=0, allow_inf_nan=False)
    card_id: str | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    channel: str | None = None
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    mcc: str | None = Field(default=None, pattern=r"^\d{4}$")
    device_id: str | None = None


class TextEvent(BaseModel):
    """One customer message, complaint, chat turn or agent note to assess."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(min_length=1, max_length=128)
    received_at: AwareDatetime
    text: str = Field(min_length=1, max_length=20_000)
    customer_id: str | None = None
    channel: Literal["complaint", "chat", "email", "call_note"] | None = None
    related_transaction_id: str | None = None


def utc_now() -> datetime:
    """The one clock the platform reads, so tests can see where time enters."""
    from datetime import UTC

    return datetime.now(UTC)
