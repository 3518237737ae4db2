"""Customers, their cards and habits, and the terminals they pay at."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

COUNTRIES = np.array(["GB", "IE", "FR", "DE", "ES", "NL", "US"])
CURRENCY_BY_COUNTRY = {
    "GB": "GBP",
    "IE": "EUR",
    "FR": "EUR",
    "DE": "EUR",
    "ES": "EUR",
    "NL": "EUR",
    "US": "USD",
}
# Merchant category codes with a typical ticket size (GBP) that shapes genuine amounts.
MCC_TICKETS = {
    "5411": 45.0,  # grocery
    "5812": 30.0,  # restaurants
    "5541": 55.0,  # fuel
    "5999": 40.0,  # misc retail
    "5311": 60.0,  # department stores
    "4121": 18.0,  # taxis
    "5732": 180.0,  # electronics
    "4511": 320.0,  # airlines
    "7995": 60.0,  # gambling
    "5967": 25.0,  # direct marketing / digital goods
}
SEGMENTS = np.array(["retail", "premium", "student", "small_business"])
SEGMENT_SPEND = {"retail": 1.0, "premium": 2.2, "student": 0.55, "small_business": 1.6}


def make_terminals(rng: np.random.Generator, n_terminals: int) -> pd.DataFrame:
    """Terminals on a 100x100 map; most in GB, some abroad (where account takeovers cash out)."""
    home_share = 0.85
    country = np.where(
        rng.random(n_terminals) < home_share,
        "GB",
        rng.choice(COUNTRIES[1:], size=n_terminals),
    )
    mcc = rng.choice(list(MCC_TICKETS), size=n_terminals, p=_mcc_weights())
    return pd.DataFrame(
        {
            "terminal_id": [f"T{i:06d}" for i in range(n_terminals)],
            "mcc": mcc,
            "country": country,
            "x": rng.uniform(0, 100, n_terminals),
            "y": rng.uniform(0, 100, n_terminals),
        }
    )


def _mcc_weights() -> np.ndarray:
    weights = np.array([0.22, 0.18, 0.1, 0.14, 0.08, 0.08, 0.05, 0.02, 0.03, 0.1])
    return weights / weights.sum()


def make_customers(rng: np.random.Generator, n_customers: int, start: pd.Timestamp) -> pd.DataFrame:
    """Customers with a segment, home, account age, spending habit and a vulnerability flag."""
    segment = rng.choice(SEGMENTS, size=n_customers, p=[0.6, 0.12, 0.18, 0.1])
    spend = np.array([SEGMENT_SPEND[s] for s in segment])
    mean_amount = rng.lognormal(mean=np.log(35.0), sigma=0.45, size=n_customers) * spend
    account_age_days = rng.integers(20, 365 * 15, size=n_customers)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n_customers)],
            "segment": segment,
            "home_country": np.where(
                rng.random(n_customers) < 0.93, "GB", rng.choice(COUNTRIES[1:6], n_customers)
            ),
            "account_opened_at": start - pd.to_timedelta(account_age_days, unit="D"),
            "vulnerable": rng.random(n_customers) < 0.06,
            "usual_amount_mean": mean_amount.round(2),
            "usual_amount_std": (mean_amount * rng.uniform(0.25, 0.6, n_customers)).round(2),
            "payments_per_day": rng.uniform(0.3, 2.6, size=n_customers).round(3),
            "primary_device_id": [f"D{i:07d}" for i in rng.permutation(n_customers)],
            "x": rng.uniform(0, 100, n_customers),
            "y": rng.uniform(0, 100, n_customers),
        }
    )


def make_cards(rng: np.random.Generator, customers: pd.DataFrame) -> pd.DataFrame:
    """One or two cards per customer."""
    n_cards = np.where(rng.random(len(customers)) < 0.25, 2, 1)
    owner = np.repeat(customers["customer_id"].to_numpy(), n_cards)
    return pd.DataFrame({"card_id": [f"K{i:07d}" for i in range(len(owner))], "customer_id": owner})


def favourite_terminals(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    terminals: pd.DataFrame,
    per_customer: int = 12,
) -> np.ndarray:
    """Indices of the terminals each customer habitually uses: near home, in their country."""
    domestic = terminals.index[terminals["country"] == "GB"].to_numpy()
    tree = cKDTree(terminals.loc[domestic, ["x", "y"]].to_numpy())
    k = min(per_customer * 3, len(domestic))
    _, nearest = tree.query(customers[["x", "y"]].to_numpy(), k=k)
    nearest = np.atleast_2d(nearest)
    # Pick a random subset of the nearest, so neighbours do not share identical habits.
    order = np.argsort(rng.random(nearest.shape), axis=1)[:, : min(per_customer, k)]
    return domestic[np.take_along_axis(nearest, order, axis=1)]
