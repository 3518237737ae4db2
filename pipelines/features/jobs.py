"""The feature steps as functions of settings and paths: what the CLI and the demo call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from decisioning.events import utc_now
from decisioning.features.store import open_feature_store, open_payment_history
from decisioning.settings import Settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize
from pipelines.ingest import ReadingConfig, load_events, read_table
from pipelines.quarantine import CheckedEvents, Quarantine, gate_events, quarantine_path

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltFeatures:
    """The feature tables written, by name, and the rows quarantined on the way, if any."""

    paths: dict[str, Path]
    quarantine: Quarantine | None


def load_transactions(
    path: Path, reading: ReadingConfig | None = None, quarantine_to: Path | None = None
) -> CheckedEvents:
    """Read a transactions file to its contract and stop unless it passes its gate.

    The contract is described in docs/design.md, Contracts: events.

    In quarantine mode the rows set aside go to ``quarantine_to`` (default: beside the file).
    """
    reading = reading or ReadingConfig()
    target = quarantine_to or quarantine_path(Path(path), "transactions")
    return gate_events(load_events(path, "transactions", reading), "transactions", reading, target)


def customers_beside(transactions: Path) -> Path | None:
    """``customers.parquet`` next to the transactions, as ``data simulate`` writes it, if any."""
    candidate = Path(transactions).with_name("customers.parquet")
    return candidate if candidate.is_file() else None


def build_features(
    home: Path,
    transactions: Path,
    customers: Path | None = None,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
) -> BuiltFeatures:
    """Build the point-in-time tables from files and write them where the Feast sources read.

    Rows quarantined (``reading.on_bad_rows``) are written beside the tables.
    """
    progress(f"reading {transactions}")
    folder = Path(home) / "features"
    checked = load_transactions(transactions, reading, folder / "transactions.quarantine.csv")
    customer_frame = read_table(customers) if customers is not None else None
    progress(f"computing features of {len(checked.frame):,} payments")
    tables = build_feature_tables(checked.frame, customer_frame)
    progress("writing feature tables")
    return BuiltFeatures(tables.write(folder), checked.quarantine)


def apply_features(settings: Settings) -> list[str]:
    """Register the ``feature_repo`` definitions in the profile's registry."""
    return apply_definitions(open_feature_store(settings))


def materialize_features(settings: Settings, end: datetime | None = None) -> int:
    """Fill the online store up to ``end`` (now by default) and seed the streaming history."""
    store = open_feature_store(settings)
    history = open_payment_history(settings)
    return materialize(store, history, settings.home, end or utc_now())
