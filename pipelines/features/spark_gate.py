"""The quality gate on Spark: ``pipelines.quarantine.gate_events`` for events that stay on Spark.

The verdict is Great Expectations' own, the suite run on the Spark frame through GX's Spark
engine (``pipelines.quality.validate_spark_frame``), so refusals read as the pandas engine's.
GX's Spark engine does not name failing rows without collecting them to the driver, so the rows
to quarantine are found by Spark: each failed expectation, with the arguments GX checked it with,
becomes the predicate of its rows (:func:`failing_rows`), and each predicate must count the rows
GX counted or the job stops. The quarantine file is the pandas engine's: the same rows, numbers,
reasons and columns, at the same place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from pipelines.errors import QualityGateFailed
from pipelines.features.spark_ingest import ROW, SparkEvents
from pipelines.ingest import CONTRACTS, ReadingConfig
from pipelines.quality import FailedExpectation, SuiteResult, validate_spark_frame
from pipelines.quarantine import Quarantine, too_many_bad_rows

logger = logging.getLogger(__name__)
# Rows of the quarantine file brought to the driver at a time.
QUARANTINE_CHUNK = 50_000


class UntranslatedExpectation(RuntimeError):
    """A failed row-level expectation that has no Spark predicate, or one that disagrees with GX."""


@dataclass(frozen=True)
class SparkCheckedEvents:
    """Events that passed the gate, still on Spark, and the quarantine when one was kept."""

    events: SparkEvents
    quarantine: Quarantine | None = None


def gate_events_spark(
    events: SparkEvents, kind: str, reading: ReadingConfig, quarantine_to: Path
) -> SparkCheckedEvents:
    """Run the gate on conformed events as ``reading.on_bad_rows`` says (see ``quarantine``).

    Raises ``QualityGateFailed`` (refuse, or a failure not about rows) or ``TooManyBadRows``.
    """
    result = _validate(events, kind)
    if reading.on_bad_rows == "refuse":
        _require(result)
        return SparkCheckedEvents(events)
    total = events.frame.count()
    if result.success:
        return SparkCheckedEvents(events, Quarantine(0, total, reading.quarantine_max_share, None))
    if any(not failure.unexpected_count for failure in result.failed):
        raise QualityGateFailed(result.summary(), result.report())
    # A window (uniqueness) cannot stand in a filter, so each predicate becomes a column first.
    flags = [f"__fails_{i}" for i in range(len(result.failed))]
    flagged = events.frame.select(
        "*", *(failing_rows(f).alias(flag) for f, flag in zip(result.failed, flags, strict=True))
    ).persist()
    predicates = [(f, F.col(flag)) for f, flag in zip(result.failed, flags, strict=True)]
    _agree_with_gx(flagged, predicates)
    bad = reduce(lambda a, b: a | b, (predicate for _, predicate in predicates))
    quarantine_to.parent.mkdir(parents=True, exist_ok=True)
    rows = write_refused_rows(flagged.where(bad), predicates, events, kind, quarantine_to)
    quarantine = Quarantine(rows, total, reading.quarantine_max_share, quarantine_to)
    if quarantine.share > quarantine.ceiling:
        raise too_many_bad_rows(kind, quarantine, result.summary())
    kept = SparkEvents(flagged.where(~bad).drop(*flags), events.columns, events.nanosecond_columns)
    _require(_validate(kept, kind))  # what goes on has passed the gate, not merely lost rows
    logger.info("%s", quarantine.line())
    return SparkCheckedEvents(kept, quarantine)


def _validate(events: SparkEvents, kind: str) -> SuiteResult:
    return validate_spark_frame(events.events, kind, events.nanosecond_columns)


def _require(result: SuiteResult) -> None:
    if not result.success:
        raise QualityGateFailed(result.summary(), result.report())


def failing_rows(failure: FailedExpectation) -> Column:
    """The rows an expectation fails, built from the arguments GX checked it with.

    Column expectations skip empty values, as GX does; only the types in the suites are known,
    and any argument that would change their meaning (``mostly``, strict bounds) is refused.
    """
    kwargs = {key: value for key, value in failure.kwargs.items() if key != "batch_id"}
    translate = _PREDICATES.get(failure.expectation)
    unknown = set(kwargs) - _ARGUMENTS.get(failure.expectation, set())
    if translate is None or unknown:
        raise UntranslatedExpectation(
            f"{failure.expectation} {kwargs}: no Spark predicate for its rows; add one to "
            "pipelines/features/spark_gate.py before using it in a suite with quarantine"
        )
    # Never NULL: a row whose predicate is NULL would pass neither `bad` nor `~bad`, and would
    # vanish from both the kept events and the quarantine.
    return F.coalesce(translate(kwargs), F.lit(False))


def _between(kwargs: dict[str, Any]) -> Column:
    column = F.col(kwargs["column"])
    below = column < kwargs["min_value"] if kwargs.get("min_value") is not None else F.lit(False)
    above = column > kwargs["max_value"] if kwargs.get("max_value") is not None else F.lit(False)
    return column.isNotNull() & (below | above)


def _unique(kwargs: dict[str, Any]) -> Column:
    column = F.col(kwargs["column"])
    return column.isNotNull() & (F.count(F.lit(1)).over(Window.partitionBy(column)) > 1)


def _a_below_b(kwargs: dict[str, Any]) -> Column:
    a, b = F.col(kwargs["column_A"]), F.col(kwargs["column_B"])
    below = a < b if kwargs.get("or_equal") else a <= b
    return a.isNotNull() & b.isNotNull() & below


_PREDICATES: dict[str, Callable[[dict[str, Any]], Column]] = {
    "expect_column_values_to_not_be_null": lambda k: F.col(k["column"]).isNull(),
    "expect_column_values_to_be_unique": _unique,
    "expect_column_values_to_be_between": _between,
    "expect_column_values_to_be_in_set": lambda k: (
        F.col(k["column"]).isNotNull() & ~F.col(k["column"]).isin(k["value_set"])
    ),
    "expect_column_values_to_not_be_in_set": lambda k: F.col(k["column"]).isin(k["value_set"]),
    "expect_column_values_to_match_regex": lambda k: (
        F.col(k["column"]).isNotNull() & ~F.col(k["column"]).rlike(k["regex"])
    ),
    "expect_column_pair_values_a_to_be_greater_than_b": _a_below_b,
}
_ARGUMENTS = {
    "expect_column_values_to_not_be_null": {"column"},
    "expect_column_values_to_be_unique": {"column"},
    "expect_column_values_to_be_between": {"column", "min_value", "max_value"},
    "expect_column_values_to_be_in_set": {"column", "value_set"},
    "expect_column_values_to_not_be_in_set": {"column", "value_set"},
    "expect_column_values_to_match_regex": {"column", "regex"},
    "expect_column_pair_values_a_to_be_greater_than_b": {
        "column_A",
        "column_B",
        "or_equal",
        "ignore_row_if",
    },
}


def _agree_with_gx(frame: DataFrame, predicates: list[tuple[FailedExpectation, Column]]) -> None:
    """Each predicate must count the rows GX counted: one definition, checked where it is used."""
    first = frame.agg(*(F.count_if(predicate) for _, predicate in predicates)).first()
    for (failure, _), count in zip(predicates, first or (), strict=True):
        if count != failure.unexpected_count:
            raise UntranslatedExpectation(
                f"{failure.column}: {failure.expectation} fails {failure.unexpected_count} rows "
                f"in Great Expectations and {count} by its Spark predicate"
            )


def write_refused_rows(
    refused: DataFrame,
    predicates: list[tuple[FailedExpectation, Column]],
    events: SparkEvents,
    kind: str,
    path: Path,
) -> int:
    """Write the failing rows as ``quarantine.refused_rows`` does, a chunk at a time."""
    reasons = F.concat_ws(
        "; ",
        *(
            F.when(predicate, F.lit(f"{failure.column}: {failure.expectation}"))
            for failure, predicate in predicates
        ),
    )
    rows = refused.select(
        F.col(ROW).alias("row"), reasons.alias("failed_expectations"), *events.columns
    ).orderBy("row")
    written, chunk = 0, []
    columns = ["row", "failed_expectations", *events.columns]
    for row in rows.toLocalIterator():
        chunk.append(tuple(row))
        if len(chunk) == QUARANTINE_CHUNK:
            _append(chunk, columns, events, kind, path, first=not written)
            written, chunk = written + len(chunk), []
    if chunk or not written:
        _append(chunk, columns, events, kind, path, first=not written)
    return written + len(chunk)


def _append(
    chunk: list[tuple[Any, ...]],
    columns: list[str],
    events: SparkEvents,
    kind: str,
    path: Path,
    first: bool,
) -> None:
    """Rows in the types pandas' conformed frame has, so the CSV is written alike."""
    frame = pd.DataFrame.from_records(chunk, columns=columns)
    contract = {column: type_ for spec in CONTRACTS[kind] for column, type_ in spec.items()}
    for column in events.columns:
        column_type = contract.get(column)
        if column in events.nanosecond_columns:
            frame[column] = pd.to_datetime(frame[column].astype("Int64"), utc=True)
        elif column_type == "label":
            frame[column] = frame[column].astype("Int8")
        elif column_type == "float":
            frame[column] = frame[column].astype("float64")
    frame.to_csv(path, index=False, mode="w" if first else "a", header=first)
