"""The event contracts: column names and types of transactions and texts.

What a file must also meet is described in docs/design.md, Contracts: events.

Column specs drive file ingestion (``pipelines.ingest``); the pydantic models check a single event
arriving over HTTP, where labels are refused because a caller must never supply its own outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

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
# Every identifier and free-form label has a ceiling, so no value can swell the append-only store.
ID_LENGTH = 128
LABEL_LENGTH = 64
TEXT_LENGTH = 20_000


def _refuse_bool_and_text(value: object) -> object:
    """JSON ``true`` is not an amount, nor "12.5": pydantic's lax mode would take both."""
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON number")
    return value


def _refuse_numbers(value: object) -> object:
    """A time is an ISO 8601 string; pydantic's lax mode would read 0 as 1970-01-01."""
    if isinstance(value, bool | int | float):
        raise ValueError("must be an ISO 8601 date-time string with a time zone")
    return value


# The entity id of the marker rows materialize writes into each batch view
# (adapters.feast.materialized): no payment may name it, or its terminal's or customer's real
# rows would be overwritten by the empty marker at every materialization.
RESERVED_ENTITY_ID = "__materialized__"


def _refuse_reserved_id(value: str) -> str:
    if value == RESERVED_ENTITY_ID:
        raise ValueError(f"{RESERVED_ENTITY_ID!r} is reserved for the platform's marker rows")
    return value


class TransactionEvent(BaseModel):
    """One payment to decide. Labels are not accepted here: outcomes arrive later, by batch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    transaction_id: str = Field(min_length=1, max_length=ID_LENGTH)
    occurred_at: AwareDatetime
    customer_id: str = Field(min_length=1, max_length=ID_LENGTH)
    terminal_id: str = Field(min_length=1, max_length=ID_LENGTH)
    # Finite and not negative here; the largest amount and the smallest non-zero one are the
    # deployment's (configs/contract.yaml, checked by ``decisioning.core.contract``).
    amount: float = Field(ge=0, allow_inf_nan=False)
    card_id: str | None = Field(default=None, min_length=1, max_length=ID_LENGTH)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    channel: str | None = Field(default=None, min_length=1, max_length=LABEL_LENGTH)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    mcc: str | None = Field(default=None, pattern=r"^\d{4}$")
    device_id: str | None = Field(default=None, min_length=1, max_length=ID_LENGTH)

    _amount_is_a_number = field_validator("amount", mode="before")(_refuse_bool_and_text)
    _time_is_a_string = field_validator("occurred_at", mode="before")(_refuse_numbers)
    _ids_not_reserved = field_validator("customer_id", "terminal_id")(_refuse_reserved_id)


class TextEvent(BaseModel):
    """One customer message, complaint, chat turn or agent note to assess."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message_id: str = Field(min_length=1, max_length=ID_LENGTH)
    received_at: AwareDatetime
    text: str = Field(min_length=1, max_length=TEXT_LENGTH)
    customer_id: str | None = Field(default=None, min_length=1, max_length=ID_LENGTH)
    channel: Literal["complaint", "chat", "email", "call_note"] | None = None
    related_transaction_id: str | None = Field(default=None, min_length=1, max_length=ID_LENGTH)

    _time_is_a_string = field_validator("received_at", mode="before")(_refuse_numbers)


def utc_now() -> datetime:
    """The one clock the platform reads, so tests can see where time enters."""
    from datetime import UTC

    return datetime.now(UTC)
