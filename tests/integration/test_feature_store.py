"""Feast on the real services: PostgreSQL registry, Redis online store, streaming velocity.

Each run uses its own Feast project (Redis key namespace) and its own registry database, and
removes both afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from feast import FeatureStore

from decisioning.adapters.feast.history import PaymentHistory, RedisPaymentHistory
from decisioning.adapters.feast.online import OnlineFeatureService, online_features
from decisioning.adapters.feast.store import open_feature_store, open_payment_history
from decisioning.core.events import TransactionEvent
from decisioning.settings import load_settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize
from tests.support.payments import (
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
        read = online_service.read(event)
        read.push()
        served = read.values
        # then each fetch equals what Feast's own read of the service gives right after it, but
        # for the terminal rows, 90 days old: past their view's TTL, they are served as unknown
        assert read.stale, "the materialized terminal rows are past their 30-day TTL here"
        feast = online_features(services.store, event)
        assert_same_values(served, {**feast, **{name: None for name in read.stale}})
        rows.append({**served, "transaction_id": payment.transaction_id})
    online = pd.DataFrame(rows)
    # and every streamed velocity and profile feature equals its offline value
    streamed = [c for c in offline.columns if c.startswith("velocity_")]
    streamed += ["seconds_since_previous_payment", "payments_before", "usual_amount"]
    assert_frames_agree(online, offline, [*streamed, "amount_spread"])


def test_the_two_round_trip_path_stores_and_serves_what_the_general_path_does(
    services: Services,
) -> None:
    # given one sequence of payments, with one arriving after a later one, for two fresh customers
    at = T0 + pd.Timedelta(days=95)
    offsets = [0, 40, 300, 200, 4_000]  # seconds; the fourth arrives after the third
    fused, general = (f"{name}-{uuid.uuid4().hex[:6]}" for name in ("fused", "general"))
    two_trips = services.online
    view_by_view = OnlineFeatureService(services.store, services.history, two_round_trips=False)
    assert two_trips._round_trips is not None, "the services profile shares one Redis"
    for offset in offsets:
        # when each path pushes and fetches its customer's payment
        moment = at + pd.Timedelta(seconds=offset)
        served_fused = two_trips.fetch(_payment(fused, moment, terminal=f"t-{offset % 3}"))
        served_general = view_by_view.fetch(_payment(general, moment, terminal=f"t-{offset % 3}"))
        # then both serve the same values
        assert_same_values(served_fused, served_general)
        # and Feast's own read finds the same stored values (a late payment keeps the newer ones)
        read_fused = online_features(services.store, _payment(fused, moment, f"t-{offset % 3}"))
        read_general = online_features(services.store, _payment(general, moment, f"t-{offset % 3}"))
        assert_same_values(read_fused, read_general)


def test_payments_of_one_customer_decided_at_once_are_all_counted(services: Services) -> None:
    # given one customer paying from four threads at once, 25 payments each
    customer = f"race-{uuid.uuid4().hex[:6]}"
    at = T0 + pd.Timedelta(days=97)
    online = services.online

    def pay(thread: int) -> None:
        for index in range(25):
            second = thread * 25 + index
            online.fetch(_payment(customer, at + pd.Timedelta(seconds=second)))

    # when their histories are updated concurrently
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(pay, range(4)))
    # then none was lost: the next payment sees the hundred before it
    served = online.fetch(_payment(customer, at + pd.Timedelta(seconds=200)))
    assert served["payments_before"] == 100, "a concurrent update overwrote another"
    assert served["velocity_10m_count"] == 101


def test_a_new_terminal_is_unknown_until_the_store_loses_its_memory(services: Services) -> None:
    # Runs last: it empties the run's online store, as a Redis restarted without persistence.
    # given a payment at a terminal the materialized store never saw, read on both paths
    last = as_event(services.history_frame.sort_values("occurred_at").iloc[-1])
    new_terminal = last.model_copy(update={"terminal_id": f"new-{uuid.uuid4().hex[:6]}"})
    paths = (
        services.online,
        OnlineFeatureService(services.store, services.history, two_round_trips=False),
    )
    for path in paths:
        read = path.read(new_terminal)
        # then the terminal is new: its features unknown, none missing (the marker is there)
        assert read.missing == (), read.missing
        assert read.values["terminal_payments_30d_count"] is None

    # when the online store loses every row of the run's project, markers included (Feast's Redis
    # keys end with the project's name)
    assert isinstance(services.history, RedisPaymentHistory)
    client = services.history.client
    lost = list(client.scan_iter(match=f"*{services.store.project}".encode(), count=1000))
    assert lost, "the run's project has keys in Redis"
    client.delete(*lost)
    # then both paths name the batch features as missing, for a known terminal too
    for path in paths:
        read = path.read(last)
        assert "terminal_payments_30d_count" in read.missing, read.missing
