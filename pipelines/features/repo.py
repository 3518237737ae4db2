"""Offline Feast jobs: register the definitions, materialize, seed the streaming history.

Definitions are the flat objects of ``feature_repo`` (``feature_repo.definitions``), applied
through Feast's Python API with the profile's store config from ``configs/feast/``; the stock
``feast`` CLI reads the same module through ``feature_repo/feature_store.yaml``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from feast import FeatureStore, FeatureView, FileSource, PushSource

from decisioning.adapters import storage
from decisioning.adapters.feast.history import PaymentHistory
from decisioning.adapters.feast.materialized import marker_row
from decisioning.adapters.storage import Location
from decisioning.fraud.activity import LONGEST_WINDOW_NS, CustomerHistory, RecentPayment
from feature_repo.definitions import DEFINITIONS
from pipelines.features.errors import FeatureTablesMissing

logger = logging.getLogger(__name__)

FEATURE_TABLES = ("customer_activity", "customer_attributes", "terminal_risk")
ALL_TIME_START = datetime(1970, 1, 1, tzinfo=UTC)


def feature_definitions(features: Location | None = None) -> list[Any]:
    """Every registered object of ``feature_repo``, in the order Feast wants them.

    With ``features`` (a folder or ``s3://`` prefix), the file sources read their tables there
    instead of under the Feast repo path (``RISK_HOME/features``), and the views follow them.
    """
    if features is None:
        return list(DEFINITIONS)
    moved = {
        source.name: _file_source_at(source, features)
        for source in DEFINITIONS
        if isinstance(source, FileSource)
    }
    return [_onto(definition, moved) for definition in DEFINITIONS]


def apply_definitions(store: FeatureStore, features: Location | None = None) -> list[str]:
    """Register the definitions in the store's registry; return the feature services' names."""
    store.apply(feature_definitions(features))
    return [service.name for service in store.list_feature_services()]


def feature_table_path(home: Path, table: str) -> Path:
    """Where ``features build`` writes a table: the file source's relative path under home."""
    return Path(home) / "features" / f"{table}.parquet"


def feature_table_location(features: Location, table: str) -> str:
    """A table's file under a features folder or ``s3://`` prefix."""
    return storage.join(features, f"{table}.parquet")


def require_feature_tables(home: Path) -> None:
    """Refuse before Feast does when a table is missing; a folder of parts (Spark) counts."""
    require_tables_at(Path(home) / "features")


def require_tables_at(features: Location) -> None:
    missing = [t for t in FEATURE_TABLES if not storage.exists(feature_table_location(features, t))]
    if missing:
        raise FeatureTablesMissing(
            f"no feature tables ({', '.join(missing)}) under {storage.as_location(features)}; "
            "run `riskctl features build --transactions PATH` first"
        )


def materialize(store: FeatureStore, history: PaymentHistory, home: Path, end: datetime) -> int:
    """Load the latest values up to ``end`` online and seed the streaming history to match.

    Seeding matters: the first payment pushed after materialize must count the ones before it.
    Returns the number of customers whose history was seeded.
    """
    return materialize_from(store, history, Path(home) / "features", end)


def materialize_from(
    store: FeatureStore, history: PaymentHistory, features: Location, end: datetime
) -> int:
    """:func:`materialize` from the tables under ``features`` (a folder or ``s3://`` prefix)."""
    require_tables_at(features)
    store.materialize(start_date=ALL_TIME_START, end_date=end)
    seeded = _seed_history(history, features, end)
    # Last: until the markers are back, a store that lost its memory degrades payments, rather
    # than scoring them against rows or histories not loaded yet as a new customer's.
    mark_materialized(store, end)
    return seeded


@dataclass(frozen=True)
class MaterializedInterval:
    """What one incremental run loaded: per batch view, the interval it covered."""

    intervals: dict[str, tuple[datetime, datetime]]
    seeded_customers: int


def materialize_incremental(
    store: FeatureStore, history: PaymentHistory, features: Location, end: datetime
) -> MaterializedInterval:
    """Load only what is new: each view from the end of its last materialization up to ``end``.

    The registry keeps each view's intervals, so an hourly task on an empty disk knows where the
    last one stopped. The first run loads everything, as :func:`materialize` does, and seeds the
    streaming history; later runs leave the history alone: the service keeps it up to date
    payment by payment, and a reseed from the tables would drop those payments.
    """
    views = [view for view in store.list_feature_views(allow_cache=False) if view.online]
    if all(view.most_recent_end_time is None for view in views):
        seeded = materialize_from(store, history, features, end)
        return MaterializedInterval({view.name: (ALL_TIME_START, end) for view in views}, seeded)
    require_tables_at(features)
    due = [view for view in views if (view.most_recent_end_time or ALL_TIME_START) < end]
    if due:  # a run up to a time already loaded has nothing to do
        store.materialize_incremental(end_date=end, feature_views=[view.name for view in due])
        mark_materialized(store, end)
    intervals = {view.name: (view.most_recent_end_time or ALL_TIME_START, end) for view in due}
    return MaterializedInterval(intervals, 0)


def _seed_history(history: PaymentHistory, features: Location, end: datetime) -> int:
    activity = storage.read_parquet(feature_table_location(features, "customer_activity"))
    return history.replace_all(histories_as_of(activity, end))


def _file_source_at(source: FileSource, features: Location) -> FileSource:
    return FileSource(
        name=source.name,
        path=storage.join(features, storage.name_of(source.path)),
        timestamp_field=source.timestamp_field,
        description=source.description,
    )


def _onto(definition: Any, sources: dict[str, FileSource]) -> Any:
    """The definition reading from ``sources`` (by name) where it read a file source."""
    if isinstance(definition, FileSource):
        return sources[definition.name]
    if isinstance(definition, PushSource):
        return PushSource(
            name=definition.name,
            batch_source=sources[definition.batch_source.name],
            description=definition.description,
        )
    if isinstance(definition, FeatureView):
        moved = copy.copy(definition)
        moved.batch_source = sources[definition.batch_source.name]
        if isinstance(definition.stream_source, PushSource):
            moved.stream_source = _onto(definition.stream_source, sources)
        return moved
    return definition


def mark_materialized(store: FeatureStore, end: datetime) -> list[str]:
    """Write each batch view's marker row as of ``end``: the store now holds the view.

    The decision service reads it beside a payment's own row, to tell a new terminal or customer
    (no row, marker present) from a store that lost its memory (neither): ``decisioning.adapters.
    feast.materialized``. Returns the views marked.
    """
    marked = []
    # FeatureStore.write_to_online_store drops a row whose features are all null, which the
    # marker's are (it describes no terminal or customer): its provider writes what it is given.
    provider = store._get_provider()
    for view in store.list_feature_views():
        source = view.batch_source
        if not view.online or view.stream_source is not None or source is None:
            continue  # views fed by the push source are written by every payment, never empty
        row: dict[str, Any] = {name: [value] for name, value in marker_row(view).items()}
        row[source.timestamp_field] = [pd.Timestamp(end)]
        row |= {feature.name: [None] for feature in view.features}
        provider.ingest_df(view, pd.DataFrame(row))
        marked.append(view.name)
    return marked


def histories_as_of(activity: pd.DataFrame, end: datetime) -> Iterator[tuple[str, CustomerHistory]]:
    """Each customer's online history after their payments up to ``end``, from the activity table.

    The last row per customer carries the profile before its payment; folding that payment in
    gives the running totals the online side would hold after replaying every payment.
    """
    upto = activity[activity["event_timestamp"] <= pd.Timestamp(end)]
    upto = upto.sort_values(["customer_id", "event_timestamp", "transaction_id"], kind="stable")
    nanos = upto["event_timestamp"].astype("int64")
    for customer_id, rows in upto.groupby("customer_id", sort=False):
        times = nanos.loc[rows.index].to_numpy()
        amounts = rows["amount"].to_numpy(dtype="float64")
        recent = times > times[-1] - LONGEST_WINDOW_NS
        countries = rows["country"].dropna()
        country_counts = countries.value_counts().to_dict()
        yield (
            str(customer_id),
            CustomerHistory(
                recent=[
                    RecentPayment(int(t), float(a), str(m))
                    for t, a, m in zip(
                        times[recent], amounts[recent], rows["terminal_id"][recent], strict=True
                    )
                ],
                payments=len(rows),
                amount_sum=float(amounts.sum()),
                amount_squares=float((amounts * amounts).sum()),
                last_payment_ns=int(times[-1]),
                country_counts={str(k): int(v) for k, v in country_counts.items()},
                usual_country=_usual_country_after(rows),
                terminal_counts={
                    str(k): int(v) for k, v in rows["terminal_id"].value_counts().items()
                },
                terminal_amount_sums=_amount_sums_by_terminal(rows["terminal_id"], amounts),
            ),
        )


def _amount_sums_by_terminal(terminals: pd.Series, amounts: np.ndarray) -> dict[str, float]:
    """Per terminal, the amounts added in payment order, as the online history adds them."""
    sums: dict[str, float] = {}
    for terminal, amount in zip(terminals.astype(str), amounts.tolist(), strict=True):
        sums[terminal] = sums.get(terminal, 0.0) + amount
    return sums


def _usual_country_after(rows: pd.DataFrame) -> str | None:
    """The usual country once the last payment is counted: the build's rule, one step on."""
    before = rows["usual_country"].iloc[-1]
    last = rows["country"].iloc[-1]
    if pd.isna(last):
        return None if pd.isna(before) else str(before)
    counts = rows["country"].value_counts()
    leading = 0 if pd.isna(before) else int(counts.get(before, 0))
    if pd.isna(before) or (last != before and int(counts[last]) > leading):
        return str(last)
    return str(before)
