"""Point-in-time feature tables on Spark: the tables of ``build.py``, for files past one machine.

Every feature is a window over one customer's or one terminal's payments in arrival order (time,
then transaction id), so each partition of the work is one customer or one terminal and no
process holds the whole file. The definitions are those of ``build.py``, and a test holds the two
engines equal row by row. Times are integer nanoseconds: Spark's timestamps keep microseconds,
the contract keeps nanoseconds, and a window edge must fall where the pandas build puts it. Sums
run in arrival order, as the pandas build and the online history add them; the written
``event_timestamp`` has Spark's microseconds.

Terminal fraud counts are not a window frame (a fraud counts from when its label is known, not
from its payment), so they are counted as the pandas build counts intervals: each fraud becomes
a start and an end event in the terminal's timeline, and a running sum of events gives each
payment the frauds open at its place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from functools import reduce
from pathlib import Path

import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame, SparkSession, Window, WindowSpec
from pyspark.sql import functions as F

from decisioning.fraud.activity import VELOCITY_WINDOWS
from pipelines.features.build import (
    CONFIRMED_WINDOWS,
    LABEL_DELAY_WHEN_UNKNOWN,
    REGULAR_FRAUDS_WINDOW,
    TERMINAL_WINDOWS,
)

logger = logging.getLogger(__name__)

TABLES = ("customer_activity", "customer_attributes", "terminal_risk")
ARRIVAL = ("occurred_ns", "transaction_id")
# The Spark input: the contract's columns with times as integer nanoseconds since the epoch.
TRANSACTIONS_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("customer_id", pa.string()),
        ("terminal_id", pa.string()),
        ("amount", pa.float64()),
        ("country", pa.string()),
        ("occurred_ns", pa.int64()),
        ("label", pa.int32()),
        ("label_available_ns", pa.int64()),
    ]
)


@dataclass(frozen=True)
class SparkFeatureTables:
    """The three tables the Feast sources read, as Spark frames (nothing computed yet)."""

    customer_activity: DataFrame
    customer_attributes: DataFrame
    terminal_risk: DataFrame

    def write(self, directory: Path | str) -> dict[str, str]:
        """Write each table as Parquet at ``<directory>/<name>.parquet`` (local or ``s3a://``)."""
        root = str(directory).rstrip("/")
        paths = {}
        for name in TABLES:
            paths[name] = f"{root}/{name}.parquet"
            getattr(self, name).write.mode("overwrite").parquet(paths[name])
        return paths

    def to_pandas(self) -> dict[str, pd.DataFrame]:
        """Each table collected to pandas: for tests and small files only."""
        return {name: getattr(self, name).toPandas() for name in TABLES}


def transactions_to_spark(spark: SparkSession, transactions: pd.DataFrame) -> DataFrame:
    """A checked pandas frame as the Spark input: optional columns null, times in nanoseconds."""
    return spark.createDataFrame(spark_input_table(transactions))


def spark_input_table(transactions: pd.DataFrame) -> pa.Table:
    """Payments in :data:`TRANSACTIONS_SCHEMA`, the shape the Spark engine reads."""
    frame = pd.DataFrame(index=transactions.index)
    for column in ("transaction_id", "customer_id", "terminal_id", "country"):
        values = transactions.get(column, pd.Series(pd.NA, index=transactions.index))
        frame[column] = values.astype("string").astype(object).where(values.notna(), None)
    frame["amount"] = transactions["amount"].astype("float64")
    frame["occurred_ns"] = _nanoseconds(transactions["occurred_at"])
    missing = pd.Series(pd.NA, index=transactions.index)
    label = pd.to_numeric(transactions.get("label", missing), errors="coerce")
    frame["label"] = pd.array(label, dtype="Int32")
    frame["label_available_ns"] = _nanoseconds(transactions.get("label_available_at", missing))
    return pa.Table.from_pandas(frame, schema=TRANSACTIONS_SCHEMA, preserve_index=False)


def events_to_spark_input(events: DataFrame) -> DataFrame:
    """Conformed events read on Spark (``spark_ingest``: times already in nanoseconds) as the
    input :data:`TRANSACTIONS_SCHEMA` describes."""
    return events.select(
        *(F.col(c) for c in ("transaction_id", "customer_id", "terminal_id")),
        F.col("amount").cast("double").alias("amount"),
        F.col("country"),
        F.col("occurred_at").alias("occurred_ns"),
        F.col("label").cast("int").alias("label"),
        F.col("label_available_at").alias("label_available_ns"),
    )


def customers_to_spark(spark: SparkSession, customers: pd.DataFrame) -> DataFrame:
    """``customers.parquet``'s attribute columns as a Spark frame (absent ones left out)."""
    columns = [c for c in ("segment", "home_country", "account_opened_at") if c in customers]
    frame = customers[["customer_id", *columns]].drop_duplicates("customer_id").copy()
    for column in ("customer_id", "segment", "home_country"):
        if column in frame:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    if "account_opened_at" in frame:
        frame["account_opened_at"] = pd.to_datetime(frame["account_opened_at"], utc=True)
    return spark.createDataFrame(pa.Table.from_pandas(frame, preserve_index=False))


def build_feature_tables_spark(
    transactions: DataFrame, customers: DataFrame | None = None
) -> SparkFeatureTables:
    """Every feature table from a frame shaped like :data:`TRANSACTIONS_SCHEMA`."""
    frame = transactions.withColumn(
        "label_known_ns",
        F.coalesce(
            F.col("label_available_ns"), F.col("occurred_ns") + _ns(LABEL_DELAY_WHEN_UNKNOWN)
        ),
    )
    return SparkFeatureTables(
        customer_activity=customer_activity_table(frame),
        customer_attributes=customer_attributes_table(frame, customers),
        terminal_risk=terminal_risk_table(frame),
    )


def customer_activity_table(transactions: DataFrame) -> DataFrame:
    """Velocity, profile and terminal habit of each payment's customer, as of that payment."""
    customer = Window.partitionBy("customer_id")
    arrival = customer.orderBy(*ARRIVAL)
    earlier = arrival.rowsBetween(Window.unboundedPreceding, -1)
    so_far = arrival.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    same_country = Window.partitionBy("customer_id", "country").orderBy(*ARRIVAL)
    # Window functions cannot nest, so the counts other windows read are columns first.
    frame = transactions.select(
        "*",
        F.row_number().over(arrival).alias("position"),
        F.sum("amount").over(so_far).alias("running_amount"),
        F.when(F.col("country").isNotNull(), F.row_number().over(same_country))
        .otherwise(0)
        .alias("country_seen"),
    )
    frame = frame.withColumn("country_leader", _takes_the_lead(earlier))
    columns: list[Column] = [
        *map(F.col, ("customer_id", "terminal_id", "transaction_id", "amount", "country")),
        _event_timestamp(),
    ]
    for name, window in VELOCITY_WINDOWS.items():
        columns.extend(_velocity(customer, name, _ns(window)))
    previous = F.lag("occurred_ns").over(arrival)
    columns.append(
        ((F.col("occurred_ns") - previous) / F.lit(1e9)).alias("seconds_since_previous_payment")
    )
    columns.extend(_profile_before(earlier))
    columns.extend(_terminal_habit())
    return frame.select(*columns)


def _velocity(customer: WindowSpec, name: str, span: int) -> list[Column]:
    """Count, amount and distinct terminals over (t - span, t], the payment itself included.

    Rows at or before t - span are counted by a range frame and taken from the running totals;
    rows sharing the payment's time but arriving after it (a later id) are never in its window.
    """
    by_time = customer.orderBy("occurred_ns")
    gone = by_time.rangeBetween(Window.unboundedPreceding, -span)
    recent = by_time.rangeBetween(-(span - 1), Window.currentRow)
    count_gone = F.count(F.lit(1)).over(gone)
    amount_gone = F.coalesce(F.sum("amount").over(gone), F.lit(0.0))
    seen = F.filter(
        F.collect_list(F.struct("position", "terminal_id")).over(recent),
        lambda row: row["position"] <= F.col("position"),
    )
    terminals = F.array_distinct(F.transform(seen, lambda row: row["terminal_id"]))
    return [
        (F.col("position") - count_gone).cast("long").alias(f"velocity_{name}_count"),
        (F.col("running_amount") - amount_gone).alias(f"velocity_{name}_amount_sum"),
        F.size(terminals).cast("long").alias(f"velocity_{name}_distinct_terminals"),
    ]


def _profile_before(earlier: WindowSpec) -> list[Column]:
    """Usual amount, spread and usual country from the customer's earlier payments only."""
    count = F.col("position") - 1
    safe = F.greatest(count, F.lit(1))
    mean = F.coalesce(F.sum("amount").over(earlier), F.lit(0.0)) / safe
    squares = F.coalesce(F.sum(F.col("amount") * F.col("amount")).over(earlier), F.lit(0.0))
    variance = F.greatest(squares / safe - mean * mean, F.lit(0.0))
    return [
        count.cast("long").alias("payments_before"),
        F.when(count >= 1, mean).alias("usual_amount"),
        F.when(count >= 2, F.sqrt(variance)).alias("amount_spread"),
        # The usual country before a payment: the last earlier payment to have taken the lead.
        F.last("country_leader", ignorenulls=True).over(earlier).alias("usual_country"),
    ]


def _takes_the_lead(earlier: WindowSpec) -> Column:
    """The payment's country when its count so far passes the best count before it, else null.

    Most frequent wins; a tie keeps the country that got there first.
    """
    best_before = F.coalesce(F.max("country_seen").over(earlier), F.lit(0))
    return F.when(
        F.col("country").isNotNull() & (F.col("country_seen") > best_before), F.col("country")
    )


def _terminal_habit() -> list[Column]:
    """Earlier payments by the customer at this terminal, and their usual amount there."""
    pair = Window.partitionBy("customer_id", "terminal_id").orderBy(*ARRIVAL)
    seen = F.row_number().over(pair) - 1
    amount_before = F.sum("amount").over(pair.rowsBetween(Window.unboundedPreceding, -1))
    return [
        seen.cast("long").alias("payments_at_terminal_before"),
        F.when(seen >= 1, amount_before / F.greatest(seen, F.lit(1))).alias(
            "usual_amount_at_terminal"
        ),
    ]


def customer_attributes_table(transactions: DataFrame, customers: DataFrame | None) -> DataFrame:
    """One row per customer: segment, home country, account opening (null when unknown)."""
    out = transactions.select("customer_id").distinct()
    if customers is not None:
        out = out.join(customers.dropDuplicates(["customer_id"]), "customer_id", "left")
    for column, kind in (("segment", "string"), ("home_country", "string")):
        if column not in out.columns:
            out = out.withColumn(column, F.lit(None).cast(kind))
    if "account_opened_at" not in out.columns:
        out = out.withColumn("account_opened_at", F.lit(None).cast("timestamp"))
    return out.select(
        "customer_id",
        "segment",
        "home_country",
        F.col("account_opened_at").cast("timestamp").alias("account_opened_at"),
        F.lit("1970-01-01 00:00:00").cast("timestamp").alias("event_timestamp"),
    )


def terminal_risk_table(transactions: DataFrame) -> DataFrame:
    """Payments, known-fraud rate and recent chargebacks at each payment's terminal before it."""
    terminal = Window.partitionBy("terminal_id")
    arrival = terminal.orderBy(*ARRIVAL)
    by_time = terminal.orderBy("occurred_ns")
    regular_window = Window.partitionBy("terminal_id", "customer_id").orderBy(*ARRIVAL)
    frame = transactions.select(
        "terminal_id",
        "transaction_id",
        "occurred_ns",
        "label_known_ns",
        (F.col("label") == 1).alias("fraud"),
        F.row_number().over(arrival).alias("position"),
        # Frauds on the terminal's own regulars (customers who had paid there before) point to
        # the terminal as the leak; a card tested once at a random terminal does not.
        (F.row_number().over(regular_window) > 1).alias("regular"),
    )
    earlier_counts = {}
    for name, window in TERMINAL_WINDOWS.items():
        gone = by_time.rangeBetween(Window.unboundedPreceding, -_ns(window))
        earlier_counts[name] = F.col("position") - 1 - F.count(F.lit(1)).over(gone)
    frame = frame.select(
        "*",
        *(c.cast("long").alias(f"terminal_payments_{n}_count") for n, c in earlier_counts.items()),
    )

    fraud = F.coalesce(F.col("fraud"), F.lit(False))
    occurred, known = F.col("occurred_ns"), F.col("label_known_ns")
    counted = {
        **{
            f"frauds_{name}": (fraud, occurred + _ns(window))
            for name, window in TERMINAL_WINDOWS.items()
        },
        **{
            f"terminal_frauds_confirmed_{name}": (fraud, known + _ns(window))
            for name, window in CONFIRMED_WINDOWS.items()
        },
        "terminal_regular_frauds_10d": (
            fraud & F.coalesce(F.col("regular"), F.lit(False)),
            occurred + _ns(REGULAR_FRAUDS_WINDOW),
        ),
    }
    frame = _known_frauds_until(frame, counted)

    columns: list[Column] = [F.col("terminal_id"), F.col("transaction_id"), _event_timestamp()]
    for name in TERMINAL_WINDOWS:
        earlier = F.col(f"terminal_payments_{name}_count")
        columns.append(earlier)
        columns.append(
            F.when(earlier > 0, F.col(f"frauds_{name}") / F.greatest(earlier, F.lit(1))).alias(
                f"terminal_fraud_rate_{name}"
            )
        )
    columns.extend(F.col(f"terminal_frauds_confirmed_{name}") for name in CONFIRMED_WINDOWS)
    columns.append(F.col("terminal_regular_frauds_10d"))
    return frame.select(*columns)


def _known_frauds_until(rows: DataFrame, counted: dict[str, tuple[Column, Column]]) -> DataFrame:
    """For each count: frauds before the row whose label was known by its time and whose window
    (``until``) has not closed; one column per entry of ``counted`` (name: (is fraud, until)).

    A fraud opens at its label time, or just after its own row when the label came with the
    payment, and closes at ``until``, before any payment at that instant. Events sort among the
    rows by (time, phase, id, after): phase 0 comes before every payment at the same time.
    """
    sort_key = ("key_ns", "phase", "key_id", "after")
    base = rows.select(
        "*",
        F.col("occurred_ns").alias("key_ns"),
        F.lit(1).alias("phase"),
        F.col("transaction_id").alias("key_id"),
        F.lit(0).alias("after"),
        F.lit(True).alias("is_payment"),
    )
    labelled_later = F.col("label_known_ns") > F.col("occurred_ns")
    opens = F.greatest(F.col("label_known_ns"), F.col("occurred_ns"))
    events = []
    for name, (is_fraud, until) in counted.items():
        frauds = rows.where(is_fraud).select(
            "terminal_id",
            "occurred_ns",
            "transaction_id",
            "label_known_ns",
            until.alias("until_ns"),
        )
        frauds = frauds.where(opens < F.col("until_ns"))
        start = frauds.select(
            "terminal_id",
            F.when(labelled_later, F.col("label_known_ns"))
            .otherwise(F.col("occurred_ns"))
            .alias("key_ns"),
            F.when(labelled_later, 0).otherwise(1).alias("phase"),
            F.when(labelled_later, "").otherwise(F.col("transaction_id")).alias("key_id"),
            F.lit(1).alias("after"),
            F.lit(1).alias(f"delta_{name}"),
        )
        end = frauds.select(
            "terminal_id",
            F.col("until_ns").alias("key_ns"),
            F.lit(0).alias("phase"),
            F.lit("").alias("key_id"),
            F.lit(0).alias("after"),
            F.lit(-1).alias(f"delta_{name}"),
        )
        events.extend([start, end])
    timeline = reduce(
        lambda left, right: left.unionByName(right, allowMissingColumns=True), events, base
    )
    so_far = (
        Window.partitionBy("terminal_id")
        .orderBy(*sort_key)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    counts = [
        F.coalesce(F.sum(f"delta_{name}").over(so_far), F.lit(0)).cast("long").alias(name)
        for name in counted
    ]
    counted_rows = timeline.select("*", *counts).where(F.col("is_payment"))
    return counted_rows.drop(*sort_key, "is_payment", *(f"delta_{n}" for n in counted))


def _event_timestamp() -> Column:
    # Integer division: nanoseconds since 1970 need more bits than a double's mantissa holds.
    return F.expr("timestamp_micros(occurred_ns div 1000)").alias("event_timestamp")


def _ns(window: timedelta | pd.Timedelta) -> int:
    return int(pd.Timedelta(window).value)


def _nanoseconds(values: pd.Series) -> pd.arrays.IntegerArray:
    """Nanoseconds since the epoch, null for missing times, never through a float."""
    times = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    out = pd.array(times.asi8, dtype="Int64")
    out[times.isna()] = pd.NA
    return out
