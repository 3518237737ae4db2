"""The fraud feature services on the embedded default: one feature list for training and serving."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from feast import FeatureStore

from decisioning.adapters.feast.history import PaymentHistory
from decisioning.adapters.feast.online import OnlineFeatureService, feature_names, online_features
from decisioning.adapters.feast.store import open_feature_store, open_payment_history
from decisioning.settings import load_settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize
from pipelines.features.training import entity_frame, training_frame
from tests.support.payments import as_event, assert_same_values, random_payments

DAY = timedelta(days=1)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning"),
]


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, Path]]:
    home = tmp_path_factory.mktemp("home")
    env = {"RISK_ENV": "local", "RISK_HOME": str(home)}
    settings = load_settings(env)
    frame = random_payments(7, count=300, days=20)
    build_feature_tables(frame).write(home / "features")
    store = open_feature_store(settings, env)
    apply_definitions(store)
    end = frame["occurred_at"].max().to_pydatetime()
    materialize(store, open_payment_history(settings, env), home, end)
    yield store, home


def history_of(home: Path) -> PaymentHistory:
    settings = load_settings({"RISK_ENV": "local", "RISK_HOME": str(home)})
    return open_payment_history(settings, {"RISK_HOME": str(home)})


def test_training_columns_equal_serving_columns(local_store: tuple[FeatureStore, Path]) -> None:
    # given the registered service new models train on, and a few payments
    store, home = local_store
    frame = random_payments(7, count=300, days=20)
    settings = load_settings({"RISK_ENV": "local", "RISK_HOME": str(home)})
    # when a training set is built and one payment is served
    training = training_frame(store, entity_frame(frame.head(20)))
    event = as_event(next(frame.tail(1).itertuples()))
    history = open_payment_history(settings, {"RISK_HOME": str(home)})
    served = OnlineFeatureService(store, history).fetch(event)
    # then both carry exactly the service's features, in its order
    names = feature_names(store)
    assert list(served) == names, "serving must return the service's features in order"
    assert_same_values(served, online_features(store, event))
    assert list(training.columns[-len(names) :]) == names, "training must end with them too"
    assert len(names) == len(set(names)), "feature names must be unique across views"


def test_training_rows_are_point_in_time(local_store: tuple[FeatureStore, Path]) -> None:
    # given payments whose features were built offline
    store, home = local_store
    frame = random_payments(7, count=300, days=20)
    offline = pd.read_parquet(home / "features" / "customer_activity.parquet")
    # when their training set is fetched through Feast
    training = training_frame(store, entity_frame(frame))
    # then each row carries its own payment's velocity, not a later one
    joined = training.merge(offline, on="transaction_id", suffixes=("", "_offline"))
    assert len(joined) == len(frame)
    mismatched = joined["velocity_24h_count"] != joined["velocity_24h_count_offline"]
    assert not mismatched.any(), f"{int(mismatched.sum())} rows joined another payment's features"


def test_a_model_trained_on_fraud_v1_is_served_exactly_fraud_v1(
    local_store: tuple[FeatureStore, Path],
) -> None:
    # given both services registered, and a payment
    store, home = local_store
    history = history_of(home)
    event = as_event(next(random_payments(8, count=5, days=2).tail(1).itertuples()))
    # when a model version tagged fraud_v1 is served
    served = OnlineFeatureService(store, history, "fraud_v1").fetch(event)
    # then it gets v1's features only, and each later service adds its own without dropping any
    v1, v2, v3 = (feature_names(store, f"fraud_v{n}") for n in (1, 2, 3))
    assert list(served) == v1
    added = {"terminal_frauds_confirmed_7d", "terminal_frauds_confirmed_14d"}
    added.add("amount_to_usual_at_terminal_ratio")
    assert added.isdisjoint(v1), "fraud_v1 must keep the list its models were trained on"
    assert set(v2) == set(v1) | added, "fraud_v2 changed: new features belong in a new service"
    assert set(v3) == set(v2) | {"terminal_regular_frauds_10d"}, "a view grew: add a new service"
    # and no view taken whole by a released service grew under it (v1: 34 features, v2: 37)
    assert (len(v1), len(v2)) == (34, 37), "a released service changed: list its features"


def test_a_batch_row_older_than_its_views_ttl_is_named_stale(
    local_store: tuple[FeatureStore, Path],
) -> None:
    # given the materialized store, and the last payment of the built history
    store, home = local_store
    service = OnlineFeatureService(store, history_of(home))
    last = as_event(next(random_payments(7, count=300, days=20).tail(1).itertuples()))
    terminal_risk = {f.name for f in store.get_feature_view("terminal_risk").features}

    # when the same payment is read a day later, and past the terminal view's 30-day TTL
    a_day_on = service.read(last.model_copy(update={"occurred_at": last.occurred_at + DAY}))
    past_ttl = service.read(last.model_copy(update={"occurred_at": last.occurred_at + 31 * DAY}))

    # then only the later read names the terminal's features, and serves them as unknown (a
    # point-in-time join past the TTL would give none); nothing is missing in either
    assert a_day_on.stale == () and a_day_on.missing == ()
    assert a_day_on.values["terminal_payments_30d_count"] is not None
    assert set(past_ttl.stale) == terminal_risk & set(service.names)
    assert past_ttl.stale and past_ttl.missing == ()
    assert all(past_ttl.values[name] is None for name in past_ttl.stale)


def test_a_new_terminal_is_unknown_but_a_store_that_lost_its_rows_is_missing(
    local_store: tuple[FeatureStore, Path], tmp_path: Path
) -> None:
    # given the materialized store (each batch view carries its marker row), a copy of it whose
    # online rows are all gone, and a payment at a terminal neither has seen
    store, home = local_store
    shutil.copytree(home, tmp_path / "home")
    with sqlite3.connect(tmp_path / "home" / "feast" / "online.db") as online:
        tables = online.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        for (table,) in tables:
            online.execute(f'DELETE FROM "{table}"')
    emptied = open_feature_store(
        load_settings({"RISK_ENV": "local", "RISK_HOME": str(tmp_path / "home")})
    )
    last = as_event(next(random_payments(7, count=300, days=20).tail(1).itertuples()))
    new_terminal = last.model_copy(update={"terminal_id": "a-terminal-never-seen"})

    # when both stores read it
    fresh = OnlineFeatureService(store, history_of(home)).read(new_terminal)
    lost = OnlineFeatureService(emptied, history_of(tmp_path / "home")).read(new_terminal)

    # then the materialized one knows the terminal is new (values unknown, nothing missing), and
    # the emptied one names every batch feature as missing
    assert fresh.missing == ()
    assert fresh.values["terminal_payments_30d_count"] is None
    assert "terminal_payments_30d_count" in lost.missing
    assert "segment" in lost.missing, "customer attributes are a batch view too"
