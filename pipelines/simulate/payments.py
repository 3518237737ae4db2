"""Genuine payments from each customer's habits, the fraud scenarios on top, and late labels.

Everything is vectorised over all payments; per-scenario loops run once per injected incident
(tens to hundreds), never once per payment.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.simulate.population import CURRENCY_BY_COUNTRY, MCC_TICKETS

SCENARIOS = ("card_testing", "account_takeover", "compromised_terminal", "above_habit")
_DAY = 86_400.0


def genuine_payments(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    cards: pd.DataFrame,
    terminals: pd.DataFrame,
    favourites: np.ndarray,
    start: pd.Timestamp,
    days: int,
) -> pd.DataFrame:
    """Each customer pays a Poisson number of times a day, by day, at their usual terminals."""
    rate = customers["payments_per_day"].to_numpy()
    counts = rng.poisson(rate[:, None], size=(len(customers), days))
    cell = np.repeat(np.arange(counts.size), counts.ravel())
    customer_idx, day = np.divmod(cell, days)
    n = len(cell)
    seconds = np.mod(rng.normal(13.5 * 3600, 4.5 * 3600, n), _DAY)  # wraps past midnight
    terminal_idx = favourites[customer_idx, rng.integers(0, favourites.shape[1], n)]

    ticket = terminals["mcc"].map(MCC_TICKETS).to_numpy()[terminal_idx]
    habit = customers["usual_amount_mean"].to_numpy()[customer_idx]
    spread = customers["usual_amount_std"].to_numpy()[customer_idx]
    scale = (ticket / 45.0) ** 0.4
    amount = np.abs(rng.normal(habit, spread)) * scale + 0.5

    channel = rng.choice(["pos", "contactless", "ecom"], size=n, p=[0.55, 0.3, 0.15])
    device = np.where(
        channel == "ecom", customers["primary_device_id"].to_numpy()[customer_idx], None
    )
    return _frame(
        occurred_at=start + pd.to_timedelta(day * _DAY + seconds, unit="s"),
        customer_idx=customer_idx,
        card_id=_pick_cards(rng, cards, customers, customer_idx),
        terminal_idx=terminal_idx,
        amount=amount,
        channel=channel,
        device_id=device,
        customers=customers,
        terminals=terminals,
        scenario="none",
    )


def _pick_cards(
    rng: np.random.Generator,
    cards: pd.DataFrame,
    customers: pd.DataFrame,
    customer_idx: np.ndarray,
) -> np.ndarray:
    owner_idx = pd.Index(customers["customer_id"]).get_indexer(cards["customer_id"])
    first = np.full(len(customers), -1)
    count = np.bincount(owner_idx, minlength=len(customers))
    first[owner_idx[::-1]] = np.arange(len(cards))[::-1]
    second = np.where(count[customer_idx] > 1, rng.random(len(customer_idx)) < 0.3, False)
    return cards["card_id"].to_numpy()[first[customer_idx] + second.astype(int)]


def _frame(
    *,
    occurred_at: pd.DatetimeIndex,
    customer_idx: np.ndarray,
    card_id: np.ndarray,
    terminal_idx: np.ndarray,
    amount: np.ndarray,
    channel: np.ndarray,
    device_id: np.ndarray,
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    scenario: str,
) -> pd.DataFrame:
    country = terminals["country"].to_numpy()[terminal_idx]
    when = pd.DatetimeIndex(occurred_at)
    return pd.DataFrame(
        {
            "occurred_at": when if when.tz else when.tz_localize("UTC"),
            "customer_id": customers["customer_id"].to_numpy()[customer_idx],
            "card_id": card_id,
            "terminal_id": terminals["terminal_id"].to_numpy()[terminal_idx],
            "amount": np.round(amount, 2),
            "currency": pd.Series(country).map(CURRENCY_BY_COUNTRY).to_numpy(),
            "channel": channel,
            "country": country,
            "mcc": terminals["mcc"].to_numpy()[terminal_idx],
            "device_id": device_id,
            "fraud_scenario": scenario,
        }
    )


def card_testing(
    rng: np.random.Generator,
    payments: pd.DataFrame,
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    incidents: int,
) -> pd.DataFrame:
    """Bursts of small online payments at terminals the card has never used, minutes apart."""
    victims = payments.sample(n=incidents, random_state=_seed(rng))
    burst = rng.integers(6, 16, incidents)
    row = np.repeat(np.arange(incidents), burst)
    gap = rng.uniform(20, 120, len(row))  # seconds between attempts
    offset = pd.Series(gap).groupby(row).cumsum().to_numpy()
    start = _instants(victims["occurred_at"])[row] + pd.to_timedelta(
        rng.uniform(3600, 6 * 3600, incidents)[row] + offset, unit="s"
    )
    customer_idx = pd.Index(customers["customer_id"]).get_indexer(victims["customer_id"])[row]
    return _frame(
        occurred_at=pd.DatetimeIndex(start),
        customer_idx=customer_idx,
        card_id=victims["card_id"].to_numpy()[row],
        terminal_idx=rng.integers(0, len(terminals), len(row)),
        amount=rng.uniform(0.5, 4.99, len(row)),
        channel=np.full(len(row), "ecom"),
        device_id=np.array([f"DX{i:06d}" for i in rng.integers(0, 10**6, len(row))]),
        customers=customers,
        terminals=terminals,
        scenario="card_testing",
    )


def account_takeover(
    rng: np.random.Generator,
    payments: pd.DataFrame,
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    incidents: int,
) -> pd.DataFrame:
    """A new device spends large amounts abroad within a few hours."""
    victims = payments.sample(n=incidents, random_state=_seed(rng))
    spree = rng.integers(1, 5, incidents)
    row = np.repeat(np.arange(incidents), spree)
    foreign = terminals.index[terminals["country"] != "GB"].to_numpy()
    customer_idx = pd.Index(customers["customer_id"]).get_indexer(victims["customer_id"])
    habit = customers["usual_amount_mean"].to_numpy()[customer_idx][row]
    when = _instants(victims["occurred_at"])[row] + pd.to_timedelta(
        rng.uniform(1800, 6 * 3600, len(row)), unit="s"
    )
    device = np.array([f"DA{i:06d}" for i in range(incidents)])[row]
    return _frame(
        occurred_at=pd.DatetimeIndex(when),
        customer_idx=customer_idx[row],
        card_id=victims["card_id"].to_numpy()[row],
        terminal_idx=rng.choice(foreign, len(row)),
        amount=habit * rng.uniform(3, 10, len(row)) + rng.uniform(80, 400, len(row)),
        channel=np.full(len(row), "ecom"),
        device_id=device,
        customers=customers,
        terminals=terminals,
        scenario="account_takeover",
    )


def compromise_terminals(
    rng: np.random.Generator, payments: pd.DataFrame, incidents: int, days_open: int = 14
) -> None:
    """Every payment at a compromised terminal during its window is fraud (card details skimmed)."""
    by_terminal = payments.groupby("terminal_id").indices
    terminal_ids = np.array(sorted(by_terminal))
    first, last = payments["occurred_at"].min(), payments["occurred_at"].max()
    span = max((last - first).total_seconds(), 1.0)
    times = _instants(payments["occurred_at"])
    for terminal in rng.choice(terminal_ids, incidents, replace=False):
        opens, closes = _window(rng, first, span, days_open)
        rows = by_terminal[terminal]
        hit = rows[(times[rows] >= opens) & (times[rows] < closes)]
        payments.iloc[hit, payments.columns.get_loc("fraud_scenario")] = "compromised_terminal"


def spend_above_habit(
    rng: np.random.Generator, payments: pd.DataFrame, incidents: int, days_open: int = 14
) -> None:
    """A stolen card's details used at the customer's usual places, for five times the usual."""
    by_customer = payments.groupby("customer_id").indices
    customer_ids = np.array(sorted(by_customer))
    first, last = payments["occurred_at"].min(), payments["occurred_at"].max()
    span = max((last - first).total_seconds(), 1.0)
    times = _instants(payments["occurred_at"])
    amount_col = payments.columns.get_loc("amount")
    scenario_col = payments.columns.get_loc("fraud_scenario")
    for customer in rng.choice(customer_ids, incidents, replace=False):
        opens, closes = _window(rng, first, span, days_open)
        rows = by_customer[customer]
        window = rows[(times[rows] >= opens) & (times[rows] < closes)]
        hit = window[rng.random(len(window)) < 1 / 3]
        hit = hit[payments.iloc[hit, scenario_col].to_numpy() == "none"]
        payments.iloc[hit, amount_col] = (payments.iloc[hit, amount_col] * 5).round(2)
        payments.iloc[hit, scenario_col] = "above_habit"


def attach_labels(rng: np.random.Generator, payments: pd.DataFrame) -> None:
    """Labels arrive late: fraud on chargeback (days to weeks), genuine once no dispute came.

    Some labels never arrive: unreported fraud and unconfirmed genuine payments stay unknown.
    """
    fraud = (payments["fraud_scenario"] != "none").to_numpy()
    n = len(payments)
    delay_days = np.where(
        fraud,
        np.clip(rng.lognormal(np.log(7.0), 0.7, n), 1, 45),
        rng.uniform(2, 14, n),
    )
    known = np.where(fraud, rng.random(n) >= 0.08, rng.random(n) >= 0.05)
    payments["label"] = pd.array(np.where(known, fraud.astype(int), 0), dtype="Int8")
    payments.loc[~known, "label"] = pd.NA
    available = payments["occurred_at"] + pd.to_timedelta(delay_days * _DAY, unit="s")
    payments["label_available_at"] = available.where(known, pd.NaT)


def _window(
    rng: np.random.Generator, first: pd.Timestamp, span: float, days_open: int
) -> tuple[np.datetime64, np.datetime64]:
    opens = first + pd.to_timedelta(rng.uniform(0, span), unit="s")
    return opens.to_datetime64(), (opens + pd.Timedelta(days=days_open)).to_datetime64()


def _instants(timestamps: pd.Series) -> np.ndarray:
    """UTC instants as datetime64, for fast comparisons and arithmetic."""
    return timestamps.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))
