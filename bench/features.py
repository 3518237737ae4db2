"""Feature build at handbook size, and the fraud feature service's online fetch against Redis.

Offline: 1.75 million payments, 5,000 customers, 10,000 terminals, 183 days, built in one go,
beside a naive per-row loop on a subsample (extrapolated). Online (needs Redis and PostgreSQL,
the services profile): p50/p99 of one payment's push and fetch four ways: Feast's public API
(``push`` + ``get_online_features``), the decision service's ``OnlineFeatureService`` (the service
resolved once) view by view through Feast's provider (any store) and in two Redis round trips
(what the services profile uses), and the floor of reading the same hashes from Redis in one
pipeline.
Targets: build under 120 s, online p99 under 2 ms.
Run: .venv/bin/python bench/features.py [--skip-online] [--skip-offline]
"""

import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from decisioning.events import TransactionEvent
from decisioning.features.activity import record_payment
from decisioning.features.online import (
    CUSTOMER_ACTIVITY_PUSH,
    FRAUD_FEATURE_SERVICE,
    OnlineFeatureService,
    online_features,
    request_row,
)
from decisioning.features.store import open_feature_store, open_payment_history
from decisioning.settings import load_settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize

PAYMENTS, CUSTOMERS, TERMINALS, DAYS = 1_750_000, 5_000, 10_000, 183
START = pd.Timestamp("2024-01-01", tz="UTC")


def handbook_payments(count: int = PAYMENTS, seed: int = 0) -> pd.DataFrame:
    """Synthetic payments of the handbook's shape, with late labels for 1% fraud."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, DAYS * 86_400, count))
    fraud = rng.random(count) < 0.01
    frame = pd.DataFrame(
        {
            "transaction_id": np.char.add("tx", np.arange(count).astype(str)),
            "occurred_at": START + pd.to_timedelta(seconds, unit="s"),
            "customer_id": np.char.add("c", rng.integers(0, CUSTOMERS, count).astype(str)),
            "terminal_id": np.char.add("m", rng.integers(0, TERMINALS, count).astype(str)),
            "amount": rng.gamma(2.0, 30.0, count).round(2),
            "country": rng.choice(np.array(["GB", "FR", "DE", "ES"]), count),
            "label": pd.array(fraud.astype(int), dtype="Int8"),
        }
    )
    delay = pd.to_timedelta(rng.integers(86_400, 30 * 86_400, count), unit="s")
    frame["label_available_at"] = frame["occurred_at"] + delay
    return frame


def naive_velocity(frame: pd.DataFrame, rows: pd.DataFrame) -> None:
    """The loop a first attempt writes: filter the history for every payment and window."""
    by_customer = {key: group for key, group in frame.groupby("customer_id")}
    for payment in rows.itertuples():
        history = by_customer[payment.customer_id]
        for hours in (1 / 6, 1, 24, 168, 720):
            since = payment.occurred_at - pd.Timedelta(hours=hours)
            window = history[
                (history["occurred_at"] > since) & (history["occurred_at"] <= payment.occurred_at)
            ]
            (len(window), window["amount"].sum(), window["terminal_id"].nunique())


def offline() -> None:
    started = time.perf_counter()
    frame = handbook_payments()
    print(f"{'generate 1.75M synthetic payments':<48} {time.perf_counter() - started:7.2f} s")
    started = time.perf_counter()
    tables = build_feature_tables(frame)
    build_s = time.perf_counter() - started
    print(f"{'build all feature tables (vectorised)':<48} {build_s:7.2f} s")
    print(f"{'':<48} {len(frame) / build_s:,.0f} payments/s")
    sample = frame.sample(500, random_state=0)
    started = time.perf_counter()
    naive_velocity(frame, sample)
    naive_s = (time.perf_counter() - started) * len(frame) / len(sample)
    print(f"{'naive per-row loop, velocity only (extrapolated)':<48} {naive_s:7.0f} s")
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        tables.write(Path(folder))
        print(f"{'write the three Parquet tables':<48} {time.perf_counter() - started:7.2f} s")
    print(f"target: build under 120 s -> {'met' if build_s < 120 else 'NOT met'}")


def online(fetches: int = 1_000) -> None:
    run = uuid.uuid4().hex[:8]
    database = f"risk_feast_bench_{run}"
    with tempfile.TemporaryDirectory() as home:
        env = {
            "RISK_ENV": "services",
            "RISK_HOME": home,
            "RISK_FEAST_PROJECT": f"bench_{run}",
            "RISK_FEAST_REGISTRY_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}",
        }
        settings = load_settings(env)
        frame = handbook_payments(count=50_000, seed=1)
        build_feature_tables(frame).write(Path(home) / "features")
        store = open_feature_store(settings, env)
        history = open_payment_history(settings, env)
        apply_definitions(store)
        materialize(store, history, Path(home), frame["occurred_at"].max().to_pydatetime())
        try:
            measure_online(store, history, frame, fetches)
        finally:
            store.teardown()
            history.clear()  # type: ignore[attr-defined]
            store.registry.teardown()
            with psycopg.connect("postgresql://postgres@127.0.0.1/postgres", autocommit=True) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def measure_online(store, history, frame: pd.DataFrame, fetches: int) -> None:  # type: ignore[no-untyped-def]
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    events = [
        TransactionEvent(
            transaction_id=p.transaction_id,
            occurred_at=p.occurred_at.to_pydatetime(),
            customer_id=p.customer_id,
            terminal_id=p.terminal_id,
            amount=p.amount,
            country=p.country,
        )
        for p in frame.sample(fetches, random_state=2).sort_values("occurred_at").itertuples()
    ]
    # Each pass pushes its payments after everything stored so far: a payment older than its
    # customer's stored values would leave them in place (Feast's rule), and skip the write.
    first, last = events[0].occurred_at, events[-1].occurred_at
    stored_until = frame["occurred_at"].max().to_pydatetime()
    passes = iter(range(1, 4))

    def after_everything_stored() -> list[TransactionEvent]:
        shift = stored_until - first + next(passes) * (last - first + timedelta(seconds=1))
        return [e.model_copy(update={"occurred_at": e.occurred_at + shift}) for e in events]

    from feast.data_source import PushMode

    service = store.get_feature_service(FRAUD_FEATURE_SERVICE)
    online_features(store, events[0])  # warm the registry cache
    feast_ms = []
    for event in after_everything_stored():
        started = time.perf_counter()
        row = history.update(event.customer_id, lambda h, e=event: record_payment(h, e))
        pushed = pd.DataFrame([{**row, "event_timestamp": pd.Timestamp(event.occurred_at)}])
        store.push(CUSTOMER_ACTIVITY_PUSH, pushed, to=PushMode.ONLINE)
        store.get_online_features(features=service, entity_rows=[request_row(event)])
        feast_ms.append((time.perf_counter() - started) * 1e3)
    ours_ms = {}
    for two_round_trips in (False, True):
        resolved = OnlineFeatureService(store, history, two_round_trips=two_round_trips)
        ours_ms[two_round_trips] = []
        for event in after_everything_stored():
            started = time.perf_counter()
            resolved.fetch(event)
            ours_ms[two_round_trips].append((time.perf_counter() - started) * 1e3)
    client = store._get_provider().online_store._get_client(store.config.online_store)
    project = store.project.encode()

    def key(**ids: str) -> bytes:
        names = sorted(ids)
        entity = EntityKey(join_keys=names, entity_values=[Value(string_val=ids[n]) for n in names])
        return serialize_entity_key(entity, entity_key_serialization_version=3) + project

    floor_ms = []
    for event in events:
        started = time.perf_counter()
        pipe = client.pipeline(transaction=False)
        pipe.hgetall(key(customer_id=event.customer_id))
        pipe.hgetall(key(terminal_id=event.terminal_id))
        pipe.hgetall(key(customer_id=event.customer_id, terminal_id=event.terminal_id))
        assert pipe.execute()[0], "the floor must read real values"
        floor_ms.append((time.perf_counter() - started) * 1e3)
    for label, values in (
        ("push + fetch, Feast API (push, get_online_features)", feast_ms),
        ("push + fetch, OnlineFeatureService, view by view", ours_ms[False]),
        ("push + fetch, OnlineFeatureService, 2 round trips", ours_ms[True]),
        ("floor: 3 HGETALL in one Redis pipeline (read only)", floor_ms),
    ):
        p50, p99 = statistics.median(values), float(np.percentile(values, 99))
        print(f"{label:<54} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms")


if __name__ == "__main__":
    if "--skip-offline" not in sys.argv:
        offline()
    if "--skip-online" not in sys.argv:
        online()
