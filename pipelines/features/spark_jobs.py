"""The feature build on either engine: what ``riskctl features build --engine`` calls.

The pandas engine is the embedded default (``jobs.build_features``). The Spark engine reads the
file on Spark (``spark_ingest``) and gates it there (``spark_gate``) by the same contract and suite,
so quarantine and refusals do not depend on the engine and the driver never holds the payments,
then computes the tables with ``spark_build`` and writes them where the Feast sources read. Locally
each table is one Parquet file, as the pandas engine writes it; on object storage (``s3a://``),
a folder of parts, which Feast's Spark offline store reads.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from decisioning.settings import Settings
from pipelines.features.build import FeatureTables, build_feature_tables
from pipelines.features.engines import ENGINES, Engine
from pipelines.features.jobs import BuiltFeatures, build_features
from pipelines.ingest import ReadingConfig, read_table
from pipelines.progress import Progress

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from decisioning.adapters.storage import Location
    from pipelines.features.spark_gate import SparkCheckedEvents

logger = logging.getLogger(__name__)


def build_features_with(
    engine: Engine,
    settings: Settings,
    transactions: Path,
    customers: Path | None = None,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
) -> BuiltFeatures:
    """Build the point-in-time tables under the profile's home with the engine named."""
    if engine == "pandas":
        return build_features(
            settings.home, transactions, customers, progress, reading, settings.features_location
        )
    if engine == "spark":
        return build_features_on_spark(settings, transactions, customers, progress, reading)
    raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


def feature_tables_with(
    engine: Engine,
    settings: Settings,
    transactions: pd.DataFrame,
    customers: pd.DataFrame | None = None,
) -> FeatureTables:
    """The point-in-time tables of checked payments, in memory, computed by the engine named.

    What ``fraud backtest --engine`` joins through Feast. The Spark engine's tables are collected
    to the driver, so this spreads the window computation, not the memory of the join.
    """
    if engine == "pandas":
        return build_feature_tables(transactions, customers)
    if engine != "spark":
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    from pipelines.features.spark_build import (
        build_feature_tables_spark,
        customers_to_spark,
        transactions_to_spark,
    )
    from pipelines.features.spark_session import load_spark_settings, spark_session

    with spark_session(load_spark_settings(settings.config_dir, settings.name)) as spark:
        tables = build_feature_tables_spark(
            transactions_to_spark(spark, transactions),
            None if customers is None else customers_to_spark(spark, customers),
        )
        return FeatureTables(**tables.to_pandas())


def build_features_on_spark(
    settings: Settings,
    transactions: Path,
    customers: Path | None = None,
    progress: Progress = logger.info,
    reading: ReadingConfig | None = None,
) -> BuiltFeatures:
    """The Spark engine, in the session ``configs/spark.yaml`` sets for the profile."""
    # pyspark loads when the Spark engine runs, never for the pandas engine or --help.
    from pipelines.features.spark_build import (
        TABLES,
        build_feature_tables_spark,
        customers_to_spark,
        events_to_spark_input,
    )
    from pipelines.features.spark_session import load_spark_settings, spark_session

    folder = Path(settings.home) / "features"
    customer_frame = read_table(customers) if customers is not None else None
    spark_settings = load_spark_settings(settings.config_dir, settings.name)
    progress(f"starting Spark ({spark_settings.master or 'from spark-submit'})")
    with spark_session(spark_settings) as spark:
        progress(f"reading and checking {transactions} on Spark")
        checked = check_transactions_on_spark(
            spark, transactions, reading, folder / "transactions.quarantine.csv"
        )
        progress("computing features on Spark")
        tables = build_feature_tables_spark(
            events_to_spark_input(checked.events.frame),
            None if customer_frame is None else customers_to_spark(spark, customer_frame),
        )
        progress("writing feature tables")
        folder.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in TABLES:
            paths[name] = write_single_parquet(getattr(tables, name), folder / f"{name}.parquet")
    return BuiltFeatures(paths, checked.quarantine)


def check_transactions_on_spark(
    spark: SparkSession, path: Location, reading: ReadingConfig | None, quarantine_to: Path
) -> SparkCheckedEvents:
    """``jobs.load_transactions`` on Spark: read to the contract, then the gate, rows kept apart.

    Raises ``SchemaError``, ``QualityGateFailed`` or ``TooManyBadRows`` as the pandas engine does.
    """
    from pipelines.features.spark_gate import gate_events_spark
    from pipelines.features.spark_ingest import read_events_spark

    reading = reading or ReadingConfig()
    events = read_events_spark(spark, path, "transactions", reading)
    return gate_events_spark(events, "transactions", reading, quarantine_to)


def write_single_parquet(table: DataFrame, path: Path) -> Path:
    """Write a Spark frame as one local Parquet file at ``path``, replacing what was there.

    Spark writes a folder of parts; the Feast file sources and ``materialize`` expect the one
    file the pandas engine writes, so the single part is moved into place.
    """
    parts = path.with_name(f".{path.name}.parts")
    table.coalesce(1).write.mode("overwrite").parquet(str(parts))
    (written,) = parts.glob("part-*.parquet")
    if path.is_dir():
        shutil.rmtree(path)
    written.replace(path)
    shutil.rmtree(parts)
    return path
