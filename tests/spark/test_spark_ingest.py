"""The Spark engine reads and gates a bank's export as the pandas engine does, without pandas.

Each file carries an oddity of real exports; both engines must keep the same rows with the same
values, write the same quarantine file, or refuse the file with the same error and message.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession

from decisioning.core.errors import RiskPlatformError
from decisioning.settings import load_settings
from pipelines.features.build import build_feature_tables
from pipelines.features.jobs import load_transactions
from pipelines.features.spark_build import TABLES
from pipelines.features.spark_gate import failing_rows
from pipelines.features.spark_ingest import ROW
from pipelines.features.spark_jobs import build_features_on_spark, check_transactions_on_spark
from pipelines.ingest import ReadingConfig
from pipelines.quality import FailedExpectation
from tests.spark.tables import KEYS, assert_same_values

pytestmark = pytest.mark.spark

QUARANTINE = ReadingConfig(timezone="Europe/London", on_bad_rows="quarantine",
                           quarantine_max_share=0.05)  # fmt: skip


def bank_export(rows: int = 300, seed: int = 7) -> pd.DataFrame:
    """Payments as a bank writes them: local times without a zone, zero amounts, labels late."""
    rng = np.random.default_rng(seed)
    local = pd.Timestamp("2024-03-01 08:00") + pd.to_timedelta(
        np.sort(rng.integers(0, 20 * 86_400, rows)), unit="s"
    )
    label = rng.random(rows) < 0.05
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i:04d}" for i in range(rows)],
            "occurred_at": local.strftime("%Y-%m-%d %H:%M:%S"),
            "customer_id": [f" c{i} " for i in rng.integers(0, 12, rows)],  # padded, as exported
            "terminal_id": [f"m{i}" for i in rng.integers(0, 9, rows)],
            "amount": np.where(rng.random(rows) < 0.1, 0.0, rng.gamma(2.0, 30.0, rows).round(2)),
            "country": rng.choice(["GB", "FR", "DE"], rows),
            "label": label.astype(int),
            "label_available_at": (local + pd.Timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S"),
            "branch": "north",  # a column of the bank's own, kept through
        }
    )


def with_oddity(change: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    return change(bank_export())


def _set(row: int, column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[row, column] = value
        return frame

    return change


def _day_first(frame: pd.DataFrame) -> pd.DataFrame:
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]).dt.strftime("%d/%m/%Y %H:%M")
    return frame


CASES: dict[str, tuple[Callable[[pd.DataFrame], pd.DataFrame], ReadingConfig]] = {
    "naive times without a zone are refused": (lambda f: f, ReadingConfig()),
    "day/month dates refused without a format": (_day_first, ReadingConfig(timezone="UTC")),
    "zero amounts and day/month dates read with the format": (
        _day_first,
        ReadingConfig(timezone="Europe/Paris", date_format="%d/%m/%Y %H:%M"),
    ),
    "one unparseable time among many": (_set(211, "occurred_at", "yesterday"), QUARANTINE),
    "one unparseable amount": (_set(17, "amount", "12,50"), QUARANTINE),
    "a time at a clock change": (_set(5, "occurred_at", "2024-03-31 01:30:00"), QUARANTINE),
    "a duplicated id, a negative amount and a reserved id quarantined": (
        lambda f: _set(9, "amount", -5.0)(
            _set(12, "terminal_id", "__materialized__")(_set(40, "transaction_id", "t0003")(f))
        ),
        QUARANTINE,
    ),
    "too many bad rows": (
        lambda f: f.assign(currency=["GBP"] * 280 + ["XXX"] * 20),
        QUARANTINE,
    ),
    "an empty file": (lambda f: f.iloc[:0], QUARANTINE),
}


@pytest.mark.parametrize("case", list(CASES))
def test_both_engines_read_and_gate_a_csv_export_alike(
    spark: SparkSession, tmp_path: Path, case: str
) -> None:
    # given a bank's CSV with one oddity and how it is to be read
    change, reading = CASES[case]
    path = tmp_path / "payments.csv"
    with_oddity(change).to_csv(path, index=False)

    # then both engines keep the same rows, quarantine the same, or refuse it in the same words
    assert_same_reading(spark, path, reading, tmp_path)


def test_both_engines_read_a_parquet_export_alike(spark: SparkSession, tmp_path: Path) -> None:
    # given the export as Parquet: nanosecond times, naive and zoned, and a duplicated id
    frame = bank_export()
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"]) + pd.Timedelta(nanoseconds=7)
    frame["label_available_at"] = pd.to_datetime(frame["label_available_at"]).dt.tz_localize(
        "Europe/London"
    )
    frame.loc[40, "transaction_id"] = "t0003"
    path = tmp_path / "payments.parquet"
    frame.to_parquet(path)

    # then both engines keep the same rows (to the nanosecond) and quarantine the same
    assert_same_reading(spark, path, QUARANTINE, tmp_path)
    # and without a zone for the naive times, both refuse the file alike
    assert_same_reading(spark, path, ReadingConfig(), tmp_path)


def assert_same_reading(
    spark: SparkSession, path: Path, reading: ReadingConfig, tmp_path: Path
) -> None:
    # Both engines write the same place, as the refusal names it; pandas' file is kept first.
    quarantine = tmp_path / "out" / "transactions.quarantine.csv"
    try:
        expected = load_transactions(path, reading, quarantine)
    except RiskPlatformError as refusal:
        written = quarantine.read_text() if quarantine.exists() else None
        with pytest.raises(type(refusal)) as spark_refusal:
            check_transactions_on_spark(spark, path, reading, quarantine)
        assert str(spark_refusal.value) == str(refusal), "the refusals must read alike"
        assert_same_quarantine(written, quarantine)
        return
    written = quarantine.read_text() if quarantine.exists() else None
    checked = check_transactions_on_spark(spark, path, reading, quarantine)
    events = checked.events.frame.orderBy(ROW).select(*checked.events.columns)
    actual = spark_events_as_pandas(events, checked.events.nanosecond_columns)
    assert list(actual.columns) == list(expected.frame.columns), "columns in pandas' order"
    assert len(actual) == len(expected.frame), "the same rows kept"
    for column in expected.frame.columns:
        want, got = expected.frame[column], actual[column]
        if isinstance(want.dtype, pd.DatetimeTZDtype):
            assert (want.isna() == got.isna()).all() and (want.dropna() == got.dropna()).all(), (
                f"{column}: times differ (to the nanosecond)"
            )
        else:
            assert_same_values(want, got, column)
    assert expected.quarantine == checked.quarantine or (
        expected.quarantine is not None
        and checked.quarantine is not None
        and (expected.quarantine.rows, expected.quarantine.total)
        == (checked.quarantine.rows, checked.quarantine.total)
    ), "the same share quarantined"
    assert_same_quarantine(written, quarantine)


def assert_same_quarantine(written_by_pandas: str | None, quarantine: Path) -> None:
    assert (written_by_pandas is None) == (not quarantine.exists()), "written by one engine only"
    if written_by_pandas is not None:
        assert quarantine.read_text() == written_by_pandas, "quarantine files differ"


def spark_events_as_pandas(events, nanosecond_columns: frozenset[str]) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame.from_records(
        [tuple(row) for row in events.collect()], columns=events.columns
    )
    for column in nanosecond_columns:
        frame[column] = pd.to_datetime(frame[column].astype("Int64"), utc=True)
    return frame


def test_the_spark_engine_builds_an_odd_export_without_pandas_holding_it(
    spark: SparkSession, risk_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a CSV export with naive times, zero amounts, a negative amount and a duplicate id,
    frame = bank_export()
    frame.loc[9, "amount"] = -5.0
    frame.loc[40, "transaction_id"] = "t0003"
    path = tmp_path / "payments.csv"
    frame.to_csv(path, index=False)
    settings = load_settings()
    expected = load_transactions(path, QUARANTINE, tmp_path / "pandas.csv")
    expected_tables = build_feature_tables(expected.frame)

    # when the Spark engine builds it with every pandas reader and gate made to fail,
    def no_pandas(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Spark engine built a pandas frame of the payments")

    for name in ("load_events", "read_table", "conform"):
        monkeypatch.setattr(f"pipelines.ingest.{name}", no_pandas)
    monkeypatch.setattr("pipelines.quality.validate_frame", no_pandas)
    monkeypatch.setattr("pipelines.quarantine.gate_events", no_pandas)
    monkeypatch.setattr("pyspark.sql.DataFrame.toPandas", no_pandas)
    built = build_features_on_spark(settings, path, reading=QUARANTINE)

    # then the tables and the quarantine are the pandas engine's
    quarantine = settings.home / "features" / "transactions.quarantine.csv"
    assert built.quarantine is not None and built.quarantine.path == quarantine
    assert quarantine.read_text() == (tmp_path / "pandas.csv").read_text()
    for name in TABLES:
        want = getattr(expected_tables, name).set_index(KEYS[name]).sort_index()
        got = pd.read_parquet(built.paths[name]).set_index(KEYS[name]).reindex(want.index)
        for column in want.columns:
            assert_same_values(want[column], got[column], f"{name}.{column}")


@pytest.mark.parametrize(
    "expectation",
    [
        ("expect_column_values_to_not_be_in_set", {"column": "v", "value_set": ["x"]}),
        ("expect_column_values_to_be_in_set", {"column": "v", "value_set": ["x"]}),
        ("expect_column_values_to_match_regex", {"column": "v", "regex": "^x$"}),
        ("expect_column_values_to_be_unique", {"column": "v"}),
    ],
)
def test_an_empty_value_is_never_neither_kept_nor_quarantined(
    spark: SparkSession, expectation: tuple[str, dict[str, object]]
) -> None:
    """A predicate that is NULL for a row would put it in neither ``bad`` nor ``~bad``: the
    gate would lose it silently. Every row's predicate is true or false."""
    name, kwargs = expectation
    frame = spark.createDataFrame([("x",), (None,), ("y",)], "v string")
    failure = FailedExpectation(name, "v", 1, (), None, None, (), kwargs)

    flags = [row[0] for row in frame.select(failing_rows(failure)).collect()]

    assert None not in flags, flags
