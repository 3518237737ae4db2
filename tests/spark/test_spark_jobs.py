"""``riskctl features build --engine spark`` writes the pandas engine's files, with its values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from decisioning.settings import load_settings
from pipelines.cli import main
from pipelines.features.build import build_feature_tables
from pipelines.features.jobs import customers_beside
from pipelines.features.spark_build import TABLES
from tests.spark.tables import KEYS, assert_same_values

pytestmark = pytest.mark.spark


def test_the_spark_engine_writes_the_files_the_pandas_engine_writes(
    spark: SparkSession, small_world_dir: Path, risk_home: Path
) -> None:
    # Given the small world's files, the embedded profile, and the pandas engine's tables,
    settings = load_settings()
    transactions = small_world_dir / "transactions.parquet"
    customers = customers_beside(transactions)
    assert customers is not None

    expected_tables = build_feature_tables(
        pd.read_parquet(transactions), pd.read_parquet(customers)
    )
    stale = settings.home / "features" / "terminal_risk.parquet"
    stale.mkdir(parents=True)  # a folder of parts left by an earlier build on a cluster path

    # when the command builds them on the Spark engine (through the same reading and gate),
    code = main(["features", "build", "--transactions", str(transactions), "--engine", "spark"])
    assert code == 0

    # then each table is one Parquet file where the Feast sources read, with pandas' rows.
    for name in TABLES:
        path = settings.home / "features" / f"{name}.parquet"
        assert path.is_file(), f"{name}: the Feast file source and materialize need one file"
        expected = getattr(expected_tables, name).set_index(KEYS[name]).sort_index()
        actual = pd.read_parquet(path).set_index(KEYS[name]).reindex(expected.index)
        assert list(actual.columns) == list(expected.columns), f"{name}: columns differ"
        for column in expected.columns:
            assert_same_values(expected[column], actual[column], f"{name}.{column}")
    assert not list((settings.home / "features").glob(".*")), "no parts left behind"
