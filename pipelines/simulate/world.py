"""The simulator entry point: one config in, four frames out, the same frames for a seed."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from pipelines.progress import Progress
from pipelines.simulate import payments as pay
from pipelines.simulate.population import (
    favourite_terminals,
    make_cards,
    make_customers,
    make_terminals,
)
from pipelines.simulate.texts import simulate_texts

logger = logging.getLogger(__name__)


class FraudIncidents(BaseModel):
    """Incidents per fraud scenario; a scenario left unset scales with customers x days.

    Small worlds (tests) set counts so every scenario shows up; the scenarios stay as they are.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    card_testing: int | None = Field(None, ge=1)
    account_takeover: int | None = Field(None, ge=1)
    compromised_terminal: int | None = Field(None, ge=1)
    above_habit: int | None = Field(None, ge=1)


class SimulationConfig(BaseModel):
    """Size and seed of a simulated world. Incident rates scale with the population."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: int = Field(5_000, ge=10)
    terminals: int | None = Field(None, ge=10, description="default: twice the customers")
    days: int = Field(90, ge=7)
    seed: int = 7
    start: str = "2026-06-01"
    messages_per_customer: float = Field(1.0, ge=0)
    incidents: FraudIncidents = FraudIncidents()

    @property
    def n_terminals(self) -> int:
        return self.terminals or 2 * self.customers


@dataclass(frozen=True)
class SimulatedWorld:
    transactions: pd.DataFrame
    texts: pd.DataFrame
    customers: pd.DataFrame
    terminals: pd.DataFrame


def simulate_world(config: SimulationConfig, progress: Progress | None = None) -> SimulatedWorld:
    """Build customers, terminals, genuine payments, fraud incidents, late labels and texts."""
    step = progress or (lambda message: logger.info("%s", message))
    rng = np.random.default_rng(config.seed)
    start = pd.Timestamp(config.start, tz="UTC")

    step("population")
    customers = make_customers(rng, config.customers, start)
    terminals = make_terminals(rng, config.n_terminals)
    cards = make_cards(rng, customers)
    favourites = favourite_terminals(rng, customers, terminals)

    step("genuine payments")
    genuine = pay.genuine_payments(rng, customers, cards, terminals, favourites, start, config.days)
    step("fraud scenarios")
    counts = _incident_counts(config)
    injected = [
        pay.card_testing(rng, genuine, customers, terminals, counts["card_testing"]),
        pay.account_takeover(rng, genuine, customers, terminals, counts["account_takeover"]),
    ]
    payments = pd.concat([genuine, *injected], ignore_index=True)
    payments = payments.sort_values("occurred_at", kind="stable", ignore_index=True)
    n_terminals_hit = min(counts["compromised_terminal"], payments["terminal_id"].nunique())
    pay.compromise_terminals(rng, payments, incidents=n_terminals_hit)
    pay.spend_above_habit(rng, payments, min(counts["above_habit"], config.customers))
    pay.attach_labels(rng, payments)
    payments.insert(0, "transaction_id", [f"tx{i:09d}" for i in range(len(payments))])

    step("texts")
    texts = simulate_texts(
        rng, customers, payments, max(10, round(config.customers * config.messages_per_customer))
    )
    texts = texts.sort_values("received_at", kind="stable", ignore_index=True)
    return SimulatedWorld(
        transactions=payments,
        texts=texts,
        customers=customers.drop(columns=["x", "y"]),
        terminals=terminals.drop(columns=["x", "y"]),
    )


def _incident_counts(config: SimulationConfig) -> dict[str, int]:
    """Incidents per scenario: the configured count, else a rate per 5,000 customer-days."""
    scale = config.days * config.customers / 5_000
    per_scale = {
        "card_testing": 2.0,
        "account_takeover": 1.5,
        "compromised_terminal": 0.6,
        "above_habit": 1.0,
    }
    configured = config.incidents.model_dump()
    return {
        scenario: configured[scenario] or max(1, round(rate * scale))
        for scenario, rate in per_scale.items()
    }


def write_world(world: SimulatedWorld, out: Path) -> dict[str, Path]:
    """Write the four Parquet files of ``riskctl data simulate`` into ``out``.

    Their columns are described in docs/design.md, Contracts: events.
    """
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in ("transactions", "texts", "customers", "terminals"):
        path = out / f"{name}.parquet"
        getattr(world, name).to_parquet(path, index=False)
        written[name] = path
    return written
