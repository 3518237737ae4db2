"""Small payment frames for feature tests, and a replay through the online computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from decisioning.core.events import TransactionEvent
from decisioning.fraud.activity import CustomerHistory, record_payment

T0 = pd.Timestamp("2024-03-01 12:00", tz="UTC")


def payments(*rows: dict[str, object]) -> pd.DataFrame:
    """A frame from rows with ``minutes`` after T0; ids and defaults filled in."""
    frame = pd.DataFrame(list(rows))
    frame["occurred_at"] = T0 + pd.to_timedelta(frame.pop("minutes"), unit="min")
    frame["transaction_id"] = [f"tx{i:04d}" for i in range(len(frame))]
    for column, default in (("customer_id", "c1"), ("terminal_id", "m1"), ("amount", 10.0)):
        frame[column] = frame.get(column, pd.Series(default, index=frame.index)).fillna(default)
    return frame


def random_payments(seed: int, count: int = 600, days: int = 40) -> pd.DataFrame:
    """Payments of a few customers and terminals with late labels, bursts and equal timestamps."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, days * 86_400, count))
    seconds[rng.random(count) < 0.1] //= 600  # crowd some payments into bursts
    fraud = rng.random(count) < 0.15
    frame = pd.DataFrame(
        {
            "transaction_id": [f"tx{i:05d}" for i in range(count)],
            "occurred_at": T0 + pd.to_timedelta(np.sort(seconds), unit="s"),
            "customer_id": rng.choice([f"c{i}" for i in range(8)], count),
            "terminal_id": rng.choice([f"m{i}" for i in range(12)], count),
            "amount": rng.gamma(2.0, 30.0, count).round(2),
            "country": rng.choice(["GB", "FR", "DE", None], count, p=[0.6, 0.2, 0.1, 0.1]),
            "label": pd.array(np.where(rng.random(count) < 0.2, pd.NA, fraud), dtype="Int8"),
        }
    )
    delay = pd.to_timedelta(rng.integers(3_600, 12 * 86_400, count), unit="s")
    frame["label_available_at"] = (frame["occurred_at"] + delay).where(frame["label"].notna())
    return frame


def replay_online(frame: pd.DataFrame) -> pd.DataFrame:
    """Each payment through ``record_payment`` in arrival order: the online values."""
    histories: dict[str, CustomerHistory] = {}
    rows = []
    ordered = frame.sort_values(["occurred_at", "transaction_id"])
    for payment in ordered.itertuples():
        event = as_event(payment)
        row = record_payment(histories.setdefault(event.customer_id, CustomerHistory()), event)
        rows.append({**row, "transaction_id": payment.transaction_id})
    return pd.DataFrame(rows)


def as_event(payment: object) -> TransactionEvent:
    country = getattr(payment, "country", None)
    return TransactionEvent(
        transaction_id=payment.transaction_id,  # type: ignore[attr-defined]
        occurred_at=payment.occurred_at.to_pydatetime(),  # type: ignore[attr-defined]
        customer_id=payment.customer_id,  # type: ignore[attr-defined]
        terminal_id=payment.terminal_id,  # type: ignore[attr-defined]
        amount=payment.amount,  # type: ignore[attr-defined]
        country=None if pd.isna(country) else country,
    )


def assert_frames_agree(online: pd.DataFrame, offline: pd.DataFrame, columns: list[str]) -> None:
    """Same values per transaction, floats to 1e-9 relative, nulls equal to nulls."""
    left = online.set_index("transaction_id").sort_index()
    right = offline.set_index("transaction_id").reindex(left.index)
    for column in columns:
        a, b = left[column], right[column]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            same = np.isclose(
                a.astype("float64"), b.astype("float64"), rtol=1e-9, atol=1e-9, equal_nan=True
            )
        else:
            same = a.astype(object).fillna("<null>") == b.astype(object).fillna("<null>")
        differing = list(left.index[~np.asarray(same)][:3])
        assert not differing, f"{column} differs online vs offline for {differing}"


def assert_same_values(ours: dict[str, object], feast: dict[str, object]) -> None:
    """The same features in the same order with equal values (NaN equal to NaN)."""
    assert list(ours) == list(feast), "the two reads must name the same features in order"

    def nan(value: object) -> bool:
        return isinstance(value, float) and math.isnan(value)

    differing = {
        name: (ours[name], feast[name])
        for name in ours
        if not (nan(ours[name]) and nan(feast[name])) and ours[name] != feast[name]
    }
    assert not differing, f"the fast path and Feast's read differ: {differing}"
