"""Feature build at handbook size, and the fraud feature service's online fetch against Redis.

Offline: 1.75 million payments, 5,000 customers, 10,000 terminals, 183 days, built in one go,
beside a naive per-row loop on a subsample (extrapolated). Online (needs Redis and PostgreSQL,
the services profile): p50/p99 of one payment's push and fetch four ways: Feast's public API
(``push`` + ``get_online_features``), the decision service's ``OnlineFeatureService`` (the service
resolved once) view by view through Feast's provider (any store) and in two Redis round trips
(what the services profile uses), and the floor of reading the same hashes from Redis in one
pipeline.
Targets: build under 120 s, online p99 under 2 ms.
Engines (``--engine spark``): time and peak memory (the whole process tree, JVM included) of the
pandas and Spark engines at 1.75, 7 and 17.5 million payments (handbook populations side by
side, one contract Parquet file with nanosecond times), each engine reading the file, gating it
with the transactions suite, building and writing the tables as ``riskctl features build`` does
(Spark on local[2], reading and gating on Spark); where pandas stops fitting a 16 GB task by
the measured curve; pandas is not run at sizes the curve says this machine cannot hold.
Run: .venv/bin/python bench/features.py [--skip-online] [--skip-offline]
     .venv/bin/python bench/features.py --engine spark [--sizes 1750000,7000000,17500000]
"""

import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from decisioning.adapters.feast.online import (
    CUSTOMER_ACTIVITY_PUSH,
    FRAUD_FEATURE_SERVICE,
    OnlineFeatureService,
    online_features,
    request_row,
)
from decisioning.adapters.feast.store import open_feature_store, open_payment_history
from decisioning.core.events import TransactionEvent
from decisioning.fraud.activity import record_payment
from decisioning.settings import load_settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize

PAYMENTS, CUSTOMERS, TERMINALS, DAYS = 1_750_000, 5_000, 10_000, 183
START = pd.Timestamp("2024-01-01", tz="UTC")


def handbook_payments(count: int = PAYMENTS, seed: int = 0, prefix: str = "") -> pd.DataFrame:
    """Synthetic payments of the handbook's shape, with late labels for 1% fraud."""
    rng = np.random.default_rng(seed)
    seconds = np.sort(rng.integers(0, DAYS * 86_400, count))
    fraud = rng.random(count) < 0.01
    frame = pd.DataFrame(
        {
            "transaction_id": np.char.add(f"tx{prefix}", np.arange(count).astype(str)),
            "occurred_at": START + pd.to_timedelta(seconds, unit="s"),
            "customer_id": np.char.add(f"c{prefix}", rng.integers(0, CUSTOMERS, count).astype(str)),
            "terminal_id": np.char.add(f"m{prefix}", rng.integers(0, TERMINALS, count).astype(str)),
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


ENGINE_SIZES = (1_750_000, 7_000_000, 17_500_000)
TASK_MEMORY_GB = 16.0


def compare_engines(sizes: tuple[int, ...]) -> None:
    """Both engines at each size, each in its own process; pandas as far as memory allows."""
    import psutil

    curve: list[tuple[int, float]] = []
    # Small sizes first give pandas a curve even where the larger ones cannot run here.
    pandas_sizes = sorted({sizes[0] // 4, sizes[0] // 2, *sizes})
    print(f"{'engine':<8} {'payments':>12} {'seconds':>9} {'peak GB':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for count in sorted({*sizes, *pandas_sizes}):
            data = Path(folder) / f"payments-{count}.parquet"
            _run_child(["--make-input", str(count), str(data)])
            for engine in ("pandas", "spark"):
                if engine == "spark" and count not in sizes:
                    continue
                needed = _pandas_peak_gb(curve, count) if engine == "pandas" else 0.0
                spare = psutil.virtual_memory().available / 2**30 * 0.8
                if needed > spare:
                    skipped = f"not run: needs ~{needed:.1f} GB, {spare:.1f} GB free"
                    print(f"{engine:<8} {count:>12,} {skipped}")
                    continue
                seconds, peak = _measure(engine, data, Path(folder) / f"out-{engine}-{count}")
                print(f"{engine:<8} {count:>12,} {seconds:>9.1f} {peak:>9.2f}", flush=True)
                if engine == "pandas":
                    curve.append((count, peak))
    if len(curve) >= 2:
        counts, peaks = np.array(curve, dtype=float).T
        slope, intercept = np.polyfit(counts, peaks, 1)
        limit = (TASK_MEMORY_GB - intercept) / slope
        print(
            f"pandas peak ~ {intercept:.2f} GB + {slope * 1e6:.2f} GB per million payments "
            f"(fit over {len(curve)} sizes): a {TASK_MEMORY_GB:.0f} GB task holds "
            f"~{limit / 1e6:.1f}M"
        )


def _pandas_peak_gb(curve: list[tuple[int, float]], count: int) -> float:
    if len(curve) < 2:
        return 0.0
    counts, peaks = np.array(curve, dtype=float).T
    slope, intercept = np.polyfit(counts, peaks, 1)
    return float(intercept + slope * count)


def _measure(engine: str, data: Path, out: Path) -> tuple[float, float]:
    """Seconds the child reports, and the peak resident memory of its whole process tree."""
    import psutil

    child = subprocess.Popen(
        [sys.executable, __file__, "--measure", engine, str(data), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    parent, peak = psutil.Process(child.pid), 0
    while child.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    output = child.stdout.read() if child.stdout else ""
    if child.returncode != 0:
        raise SystemExit(f"{engine} at {data.name} failed ({child.returncode})")
    return float(output.strip().splitlines()[-1]), peak / 2**30


def _run_child(arguments: list[str]) -> None:
    subprocess.run([sys.executable, __file__, *arguments], check=True)


def make_engine_input(count: int, path: Path) -> None:
    """Handbook populations of 1.75M payments side by side, one contract Parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for part, start in enumerate(range(0, count, PAYMENTS)):
        frame = handbook_payments(min(PAYMENTS, count - start), seed=part, prefix=f"{part}_")
        table = pa.Table.from_pandas(frame, preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()


def measure_engine(engine: str, data: Path, out: Path) -> float:
    """Read, gate, build and write with one engine; the seconds it took."""
    from pipelines.features.jobs import load_transactions

    started = time.perf_counter()
    quarantine = out / "transactions.quarantine.csv"
    if engine == "pandas":
        build_feature_tables(load_transactions(data, None, quarantine).frame).write(out)
        return time.perf_counter() - started
    from decisioning.settings import DEFAULT_CONFIG_DIR
    from pipelines.features.spark_build import build_feature_tables_spark, events_to_spark_input
    from pipelines.features.spark_jobs import check_transactions_on_spark
    from pipelines.features.spark_session import load_spark_settings, spark_session

    settings = load_spark_settings(DEFAULT_CONFIG_DIR, "local")
    with spark_session(settings) as spark:
        checked = check_transactions_on_spark(spark, data, None, quarantine)
        build_feature_tables_spark(events_to_spark_input(checked.events.frame)).write(out)
    return time.perf_counter() - started


if __name__ == "__main__":
    if "--make-input" in sys.argv:
        at = sys.argv.index("--make-input")
        make_engine_input(int(sys.argv[at + 1]), Path(sys.argv[at + 2]))
        sys.exit(0)
    if "--measure" in sys.argv:
        at = sys.argv.index("--measure")
        print(measure_engine(sys.argv[at + 1], Path(sys.argv[at + 2]), Path(sys.argv[at + 3])))
        sys.exit(0)
    if "--engine" in sys.argv and sys.argv[sys.argv.index("--engine") + 1] == "spark":
        sizes = ENGINE_SIZES
        if "--sizes" in sys.argv:
            sizes = tuple(int(n) for n in sys.argv[sys.argv.index("--sizes") + 1].split(","))
        compare_engines(sizes)
        sys.exit(0)
    if "--skip-offline" not in sys.argv:
        offline()
    if "--skip-online" not in sys.argv:
        online()
