"""The Spark engine builds the pandas engine's feature tables, row by row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from pipelines.features.build import FeatureTables, build_feature_tables
from pipelines.features.spark_build import (
    build_feature_tables_spark,
    customers_to_spark,
    transactions_to_spark,
)
from pipelines.simulate import SimulatedWorld, SimulationConfig, simulate_world
from pipelines.simulate.world import FraudIncidents
from tests.spark.tables import KEYS, assert_same_values

pytestmark = pytest.mark.spark

# Few terminals and many incidents, so every terminal fraud count has rows to disagree on.
FRAUD_DENSE_WORLD = SimulationConfig(
    customers=60,
    terminals=40,
    days=30,
    seed=3,
    start="2026-06-01",
    incidents=FraudIncidents(
        card_testing=4, account_takeover=4, compromised_terminal=4, above_habit=4
    ),
)


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return simulate_world(FRAUD_DENSE_WORLD)


@pytest.fixture(scope="module")
def awkward_payments(world: SimulatedWorld) -> pd.DataFrame:
    """The world's payments in shuffled file order, with ties, mixed countries and odd labels.

    Every tenth payment takes the time of the payment before it (same customer, and half the time
    the same terminal: ordered by id); countries vary, some unknown, so the usual country meets
    ties; a label in twenty loses its arrival time (assumed 7 days late), some fraud labels come
    within the hour or with the payment itself; rows come in no order at all.
    """
    rng = np.random.default_rng(5)
    frame = world.transactions.copy()
    frame["country"] = rng.choice(["GB", "FR", "DE", None], len(frame), p=[0.5, 0.25, 0.2, 0.05])
    tied = np.arange(1, len(frame), 10)
    frame.loc[tied, "occurred_at"] = frame["occurred_at"].to_numpy()[tied - 1]
    frame.loc[tied, "customer_id"] = frame["customer_id"].to_numpy()[tied - 1]
    frame.loc[tied[::2], "terminal_id"] = frame["terminal_id"].to_numpy()[tied[::2] - 1]
    unknown = frame.index[frame["label"].notna()][::20]
    frame.loc[unknown, "label_available_at"] = pd.NaT
    frauds = frame.index[frame["label"] == 1]
    frame.loc[frauds[1::6], "label_available_at"] = frame["occurred_at"] + pd.Timedelta("30min")
    frame.loc[frauds[2::6], "label_available_at"] = frame["occurred_at"]
    return frame.sample(frac=1.0, random_state=11).reset_index(drop=True)


@pytest.fixture(scope="module")
def both_engines(
    spark: SparkSession, awkward_payments: pd.DataFrame, world: SimulatedWorld
) -> tuple[FeatureTables, dict[str, pd.DataFrame]]:
    pandas_tables = build_feature_tables(awkward_payments, world.customers)
    spark_tables = build_feature_tables_spark(
        transactions_to_spark(spark, awkward_payments),
        customers_to_spark(spark, world.customers),
    ).to_pandas()
    return pandas_tables, spark_tables


@pytest.mark.parametrize("table", sorted(KEYS))
def test_spark_and_pandas_give_the_same_rows(
    both_engines: tuple[FeatureTables, dict[str, pd.DataFrame]], table: str
) -> None:
    # Given the same awkward payments, when both engines build the table,
    expected = getattr(both_engines[0], table)
    actual = both_engines[1][table]

    # then it has the same columns in the same order, and the same rows value by value.
    assert list(actual.columns) == list(expected.columns), f"{table}: columns differ"
    assert len(actual) == len(expected), f"{table}: {len(actual)} rows, pandas {len(expected)}"
    key = KEYS[table]
    expected = expected.set_index(key).sort_index()
    actual = actual.set_index(key).reindex(expected.index)
    for column in expected.columns:
        assert_same_values(expected[column], actual[column], f"{table}.{column}")


def test_the_awkward_payments_exercise_what_the_engines_could_disagree_on(
    awkward_payments: pd.DataFrame,
) -> None:
    frame = awkward_payments
    tables = build_feature_tables(frame)
    assert not frame["occurred_at"].is_monotonic_increasing, "rows should arrive out of order"
    assert frame.duplicated(["customer_id", "occurred_at"]).any(), "a customer needs tied times"
    late = frame["label_available_at"] > frame["occurred_at"] + pd.Timedelta(days=1)
    assert late.any(), "labels should arrive late"
    assert (frame["label"].notna() & frame["label_available_at"].isna()).any()
    assert (frame["label_available_at"] == frame["occurred_at"]).any(), "a label with its payment"
    fraud_counts = tables.terminal_risk.filter(regex="frauds|fraud_rate")
    silent = [name for name, column in fraud_counts.items() if not (column > 0).any()]
    assert not silent, f"no payment has a nonzero {silent}: equality there would prove nothing"
    assert tables.customer_activity["usual_country"].nunique() == 3, "usual countries vary"
