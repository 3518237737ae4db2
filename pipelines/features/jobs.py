"""The feature steps as functions of settings and paths: what the CLI and the demo call."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from decisioning.adapters import storage
from decisioning.adapters.feast.store import open_feature_store, open_payment_history
from decisioning.adapters.storage import Location
from decisioning.core.events import utc_now
from decisioning.settings import Settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import (
    MaterializedInterval,
    apply_definitions,
    materialize_from,
    materialize_incremental,
)
from pipelines.ingest import ReadingConfig, load_events, read_table
from pipelines.progress import Progress
from pipelines.quarantine import CheckedEvents, Quarantine, gate_events, quarantine_path

logger = logging.getLogger(__name__)
_QUARANTINE = "transactions.quarantine.csv"


@dataclass(frozen=True)
class BuiltFeatures:
    """The feature tables written, by name, and the rows quarantined on the way, if any."""

    paths: dict[str, str]
    quarantine: Quarantine | None


def load_transactions(
    path: Location, reading: ReadingConfig | None = None, quarantine_to: Path | None = None
) -> CheckedEvents:
    """Read a transactions file to its contract and stop unless it passes its gate.

    The contract is described in docs/design.md, Contracts: events.

    In quarantine mode the rows set aside go to ``quarantine_to`` (default: beside the file).
    """
    reading = reading or ReadingConfig()
    target = quarantine_to or quarantine_path(Path(path), "transactions")
    return gate_events(load_events(path, "transactions", reading), "transactions", reading, target)


def customers_beside(transactions: Location) -> str | None:
    """``customers.parquet`` next to the transactions, as ``data simulate`` writes it, if any."""
    candidate = storage.join(storage.parent_of(transactions), "customers.parquet")
    return candidate if storage.is_file(candidate) else None


def build_features(
    home: Path,
    transactions: Location,
    customers: Location | None = None,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
    features: Location | None = None,
) -> BuiltFeatures:
    """Build the point-in-time tables from files and write them where the Feast sources read:
    ``features`` (a folder or ``s3://`` prefix), by default ``<home>/features``.

    Rows quarantined (``reading.on_bad_rows``) are written beside the tables (local only).
    """
    progress(f"reading {storage.as_location(transactions)}")
    folder = features if features is not None else Path(home) / "features"
    checked = load_transactions(
        transactions, reading, None if storage.is_remote(folder) else Path(folder, _QUARANTINE)
    )
    customer_frame = read_table(customers) if customers is not None else None
    progress(f"computing features of {len(checked.frame):,} payments")
    tables = build_feature_tables(checked.frame, customer_frame)
    progress("writing feature tables")
    return BuiltFeatures(tables.write(folder), checked.quarantine)


def apply_features(settings: Settings) -> list[str]:
    """Register the ``feature_repo`` definitions in the profile's registry, their file sources
    reading the profile's features location when it is not ``RISK_HOME/features``."""
    return apply_definitions(open_feature_store(settings), relocated_features(settings))


def relocated_features(settings: Settings) -> str | None:
    """The profile's features location when the sources must be moved there, else None."""
    default = str(Path(settings.home) / "features")
    return None if settings.features_location == default else settings.features_location


def materialize_features(settings: Settings, end: datetime | None = None) -> int:
    """Fill the online store up to ``end`` (now by default) and seed the streaming history."""
    store = open_feature_store(settings)
    history = open_payment_history(settings)
    return materialize_from(store, history, settings.features_location, end or utc_now())


def materialize_new_interval(
    settings: Settings, end: datetime | None = None
) -> MaterializedInterval:
    """Fill the online store from where the last materialization stopped up to ``end``."""
    store = open_feature_store(settings)
    history = open_payment_history(settings)
    return materialize_incremental(store, history, settings.features_location, end or utc_now())
