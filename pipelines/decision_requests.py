"""Request bodies for the decision service made from simulated data: the contract's fields of a
row, where the live day begins, and the demo's sample of events."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from decisioning.core.events import TextEvent, TransactionEvent

if TYPE_CHECKING:  # pandas loads when a sample is drawn, not for riskctl --help
    import pandas as pd

# The fields a caller may send: the event models' own, so labels never leave the file.
REQUEST_FIELDS = {
    "transaction": tuple(TransactionEvent.model_fields),
    "text": tuple(TextEvent.model_fields),
}


def request_fields(row: dict[str, Any], kind: str) -> dict[str, Any]:
    """The contract's fields of a row, labels and ground truth left out, nulls dropped."""
    out = {}
    for name in REQUEST_FIELDS[kind]:
        value = row.get(name)
        if value is None or value != value:  # None or NaN
            continue
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


def last_day_start(payments: pd.DataFrame) -> pd.Timestamp:
    """Where the demo's live day begins: 24 hours before the last simulated payment."""
    import pandas as pd

    start: pd.Timestamp = payments["occurred_at"].max() - pd.Timedelta(days=1)
    return start


def sample_requests(data_dir: Path, count: int) -> list[dict[str, Any]]:
    """Events from the last simulated day, in an order that shows the platform at work.

    First a whole card-testing burst in time order (when the day has one), so its later payments
    see the earlier ones through the streaming velocity features; then ``count`` events:
    payments, messages and both together, half of each drawn from the risky ones. Requests carry
    no label or ground truth.
    """
    import pandas as pd

    payments = pd.read_parquet(data_dir / "transactions.parquet")
    texts = pd.read_parquet(data_dir / "texts.parquet")
    live_day = payments[payments["occurred_at"] > last_day_start(payments)]
    burst = _largest_burst(live_day)
    rest = live_day.drop(burst.index)
    picked_payments = _half_risky(rest, rest.get("fraud_scenario"), count)
    picked_texts = _half_risky(texts, texts.get("category"), count)
    requests: list[dict[str, Any]] = [
        {"transaction": request_fields(row, "transaction")} for row in burst.to_dict("records")
    ]
    for i, (payment, message) in enumerate(
        zip(picked_payments.to_dict("records"), picked_texts.to_dict("records"), strict=False)
    ):
        body: dict[str, Any] = {}
        if i % 3 != 1:
            body["transaction"] = request_fields(payment, "transaction")
        if i % 3 != 0:
            body["text"] = request_fields(message, "text")
        requests.append(body)
    return requests


def _largest_burst(payments: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """The card-testing burst with the most payments (at most ``limit``), in time order."""
    if "fraud_scenario" not in payments or "card_id" not in payments:
        return payments.iloc[:0]
    testing = payments[payments["fraud_scenario"] == "card_testing"]
    if testing.empty:
        return testing
    card = testing["card_id"].value_counts().idxmax()
    return testing[testing["card_id"] == card].sort_values("occurred_at").head(limit)


def _half_risky(frame: pd.DataFrame, truth: pd.Series | None, count: int) -> pd.DataFrame:
    """``count`` rows in time order, half of them risky by the ground-truth column if present."""
    import pandas as pd

    if truth is None:
        return frame.sample(n=min(count, len(frame)), random_state=0)
    risky = frame[truth != "none"]
    risky = risky.sample(n=min(count // 2, len(risky)), random_state=0)
    rest = frame.drop(risky.index)
    rest = rest.sample(n=min(count - len(risky), len(rest)), random_state=0)
    return pd.concat([risky, rest]).sample(frac=1.0, random_state=1)
