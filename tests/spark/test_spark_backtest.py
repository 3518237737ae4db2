"""``riskctl fraud backtest --engine spark`` scores a file as the pandas engine does."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import SparkSession

from decisioning.settings import load_settings
from pipelines.fraud.backtest import BacktestWindows, backtest
from tests.unit.pipelines.fraud.conftest import byo_transactions

pytestmark = pytest.mark.spark


def test_the_spark_engine_backtests_a_file_as_the_pandas_engine_does(
    spark: SparkSession, risk_home: Path, tmp_path: Path
) -> None:
    # given a bank's file with only the required columns and labels, and the protocol's windows
    path = tmp_path / "payments.csv"
    byo_transactions().to_csv(path, index=False)
    first: date = (
        pd.to_datetime(pd.read_csv(path)["occurred_at"], utc=True, format="ISO8601").min().date()
    )
    windows = BacktestWindows(
        first, first + timedelta(13), first + timedelta(17), first + timedelta(23)
    )
    settings = load_settings()

    # when the backtest runs on each engine
    results = {
        engine: backtest(settings, path, windows, pd.Timedelta(days=3), engine=engine)
        for engine in ("pandas", "spark")
    }

    # then each test payment gets the same score and action from both
    pandas_scores, spark_scores = (
        results[engine].scores.set_index("transaction_id").sort_index()
        for engine in ("pandas", "spark")
    )
    assert list(spark_scores.index) == list(pandas_scores.index)
    assert (spark_scores["action"] == pandas_scores["action"]).all()
    assert (spark_scores["score"] - pandas_scores["score"]).abs().max() < 1e-6
    assert results["spark"].quality["average_precision"] == pytest.approx(
        results["pandas"].quality["average_precision"], abs=1e-9
    )
