"""A point-in-time training set through Feast's Spark offline store equals the file store's."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from decisioning.adapters.feast.store import open_feature_store
from decisioning.settings import load_settings
from pipelines.features.repo import apply_definitions, feature_table_path
from pipelines.features.spark_build import (
    TABLES,
    build_feature_tables_spark,
    customers_to_spark,
    transactions_to_spark,
)
from pipelines.features.spark_jobs import write_single_parquet
from pipelines.features.spark_repo import open_spark_feature_store
from pipelines.features.training import entity_frame, training_frame
from tests.spark.conftest import TEST_SPARK
from tests.spark.tables import assert_same_values

pytestmark = pytest.mark.spark

ENTITY_COLUMNS = [
    "transaction_id",
    "customer_id",
    "terminal_id",
    "occurred_at",
    "amount",
    "country",
]


def test_the_spark_offline_store_joins_what_the_file_store_joins(
    spark: SparkSession, small_world_dir: Path, risk_home: Path, tmp_path: Path
) -> None:
    # Given feature tables the Spark engine wrote, and labelled payments to train on,
    settings = load_settings()
    world = pd.read_parquet(small_world_dir / "transactions.parquet")
    tables = build_feature_tables_spark(
        transactions_to_spark(spark, world),
        customers_to_spark(spark, pd.read_parquet(small_world_dir / "customers.parquet")),
    )
    for name in TABLES:
        write_single_parquet(getattr(tables, name), feature_table_path(settings.home, name))
    payments = world[world["label"].notna()].iloc[::8][ENTITY_COLUMNS]
    entities = entity_frame(payments.reset_index(drop=True))

    # when Feast joins the fraud feature service with its file store and with its Spark store
    # (its own registry, the same Parquet tables),
    file_store = open_feature_store(settings)
    apply_definitions(file_store)
    by_file = training_frame(file_store, entities)
    spark_settings = settings.model_copy(update={"home": tmp_path / "spark-registry"})
    spark_store = open_spark_feature_store(
        spark_settings, TEST_SPARK, features_uri=str(settings.home / "features")
    )
    by_spark = training_frame(spark_store, entities)

    # then both give every payment the same features (its own row: counts include it).
    assert by_file["velocity_1h_count"].ge(1).all(), "each payment should find its own row"
    assert list(by_spark.columns) == list(by_file.columns), "the service's columns, in order"
    assert len(by_spark) == len(by_file) == len(entities)
    expected = by_file.set_index("transaction_id").sort_index()
    actual = by_spark.set_index("transaction_id").reindex(expected.index)
    for column in expected.columns:
        assert_same_values(expected[column], actual[column], f"training set.{column}")
