"""Feast on the real services: PostgreSQL registry, Redis online store, streaming velocity.

Each run uses its own Feast project (Redis key namespace) and its own registry database, and
removes both afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from feast import FeatureStore

from decisioning.events import TransactionEvent
from decisioning.features.history import PaymentHistory, RedisPaymentHistory
from decisioning.features.online import OnlineFeatureService, online_features
from decisioning.features.store import open_feature_store, open_payment_history
from decisioning.settings import load_settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize
from tests.unit.features.payments import (
    T0,
    as_event,
    assert_frames_agree,
    assert_same_values,
    random_payments,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning"),
]
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Services:
    store: FeatureStore
    history: PaymentHistory
    home: Path
    history_frame: pd.DataFrame

    @property
    def online(self) -> OnlineFeatureService:
        """The decision service's path: fraud_v1 resolved once, push then read."""
        return OnlineFeatureService(self.store, self.history)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    run = uuid.uuid4().hex[:8]
    database = f"risk_feast_test_{run}"
    home = tmp_path_factory.mktemp("home")
    env = {
        "RISK_ENV": "services",
        "RISK_HOME": str(home),
        "RISK_FEAST_PROJECT": f"feat_test_{run}",
        "RISK_FEAST_REGISTRY_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}",
    }
    settings = load_settings(env)
    frame = random_payments(11, count=400, days=25)
    build_feature_tables(frame).write(home / "features")
    store = open_feature_store(settings, env)
    history = open_payment_history(settings, env)
    apply_definitions(store)
    materialize(store, history, home, frame["occurred_at"].max().to_pydatetime())
    yield Services(store, history, home, frame)
    store.teardown()
    assert isinstance(history, RedisPaymentHistory)
    history.clear()
    store.registry.teardown()
    with psycopg.connect(ADMIN, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _payment(customer: str, at: pd.Timestamp, terminal: str = "burst-m1") -> TransactionEvent:
    return TransactionEvent(
        transaction_id=f"{customer}-{at.value}",
        occurred_at=at.to_pydatetime(),
        customer_id=customer,
        terminal_id=terminal,
        amount=25.0,
        country="GB",
    )


def test_materialized_values_are_fetched_by_fraud_v1(services: Services) -> None:
    # given materialized features of a known customer and terminal
    last = services.history_frame.sort_values("occurred_at").iloc[-1]
    event = as_event(last)
    # when fetched online through the feature service (without a new push)
    served = online_features(services.store, event)
    # then the values are the offline ones of that customer's last payment
    offline = pd.read_parquet(services.home / "features" / "customer_activity.parquet")
    expected = offline.set_index("transaction_id").loc[last["transaction_id"]]
    assert served["velocity_30d_count"] == expected["velocity_30d_count"]
    assert served["terminal_payments_30d_count"] is not None, "terminal risk missing online"


def test_a_burst_of_ten_payments_counts_one_to_ten(services: Services) -> None:
    # given a new customer paying ten times within a minute
    customer = f"burst-{uuid.uuid4().hex[:6]}"
    counts = []
    online = services.online
    # when each payment is decided: pushed, then its features fetched
    for second in range(0, 60, 6):
        event = _payment(customer, T0 + pd.Timedelta(days=60, seconds=second))
        counts.append(online.fetch(event)["velocity_10m_count"])
    # then the tenth payment sees itself and the nine before it, in order
    assert counts == list(range(1, 11)), f"counts rose as {counts}"


def test_a_payment_61_minutes_old_leaves_the_hour(services: Services) -> None:
    # given two payments of a new customer, the second 61 minutes after the first
    customer = f"expiry-{uuid.uuid4().hex[:6]}"
    first = T0 + pd.Timedelta(days=61)
    online = services.online
    online.fetch(_payment(customer, first))
    later = _payment(customer, first + timedelta(minutes=61))
    # when the second is pushed and fetched
    served = online.fetch(later)
    # then the hour holds only the second, the day both
    assert served["velocity_1h_count"] == 1, "the 61-minute-old payment must have expired"
    assert served["velocity_24h_count"] == 2


def test_online_after_streaming_equals_offline_point_in_time(services: Services) -> None:
    # given a sequence of payments of fresh customers, after the materialized history
    frame = random_payments(12, count=120, days=3)
    frame["customer_id"] = "skew-" + frame["customer_id"]
    frame["occurred_at"] = frame["occurred_at"] + pd.Timedelta(days=90)
    offline = build_feature_tables(frame).customer_activity
    online_service = services.online
    # when replayed one by one through the decision service's push and fetch
    rows = []
    for payment in frame.sort_values(["occurred_at", "transaction_id"]).itertuples():
        event = as_event(payment)
        served = online_service.fetch(event)
        # then each fetch equals what Feast's own read of the service gives right after it
        assert_same_values(served, online_features(services.store, event))
        rows.append({**served, "transaction_id": payment.transaction_id})
    online = pd.DataFrame(rows)
    # and every streamed velocity and profile feature equals its offline value
    streamed = [c for c in offline.columns if c.startswith("velocity_")]
    streamed += ["seconds_since_previous_payment", "payments_before", "usual_amount"]
    assert_frames_agree(online, offline, [*streamed, "amount_spread"])
