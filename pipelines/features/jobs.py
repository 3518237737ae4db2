"""The feature steps as functions of settings and paths: what the CLI and the demo call."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd

from decisioning.events import utc_now
from decisioning.features.store import open_feature_store, open_payment_history
from decisioning.settings import Settings
from pipelines.features.build import build_feature_tables
from pipelines.features.repo import apply_definitions, materialize
from pipelines.ingest import ReadingConfig, load_checked, read_table

logger = logging.getLogger(__name__)
Progress = Callable[[str], None]


def load_transactions(path: Path, reading: ReadingConfig | None = None) -> pd.DataFrame:
    """Read a transactions file to the DESIGN 4.1 contract and stop unless it passes its gate."""
    return load_checked(path, "transactions", reading)


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
) -> dict[str, Path]:
    """Build the point-in-time tables from files and write them where the Feast sources read."""
    progress(f"reading {transactions}")
    frame = load_transactions(transactions, reading)
    customer_frame = read_table(customers) if customers is not None else None
    progress(f"computing features of {len(frame):,} payments")
    tables = build_feature_tables(frame, customer_frame)
    progress("writing feature tables")
    return tables.write(Path(home) / "features")


def apply_features(settings: Settings) -> list[str]:
    """Register the ``feature_repo`` definitions in the profile's registry."""
    return apply_definitions(open_feature_store(settings))


def materialize_features(settings: Settings, end: datetime | None = None) -> int:
    """Fill the online store up to ``end`` (now by default) and seed the streaming history."""
    store = open_feature_store(settings)
    history = open_payment_history(settings)
    return materialize(store, history, settings.home, end or utc_now())
