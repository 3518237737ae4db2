"""The contract's files read on Spark: what ``pipelines.ingest`` does for pandas, on the workers.

The driver reads metadata only (a Parquet footer, the number of rows in each block of the file)
and, when it refuses a file, the few rows its message names; the payments stay on the workers.
The rules are ingest's: the same types, the same refusals (``SchemaError`` naming the column,
the count and the first rows, counted from 1 after the header as pandas counts them), times as
integer nanoseconds, because Spark's timestamps keep microseconds. Spark cannot say pandas' time
rules itself (ISO 8601 in all its forms, strptime formats, a zone's clock changes), so times are
read by pandas on the workers, one batch at a time (:func:`times_of_text`).

Where the engines still differ (ADR 0011): a CSV row with more fields than the header is refused
by pandas and cut to the header by Spark; a quoted field spanning lines is not read (Spark's
``multiLine`` would stop the file being split); an identifier column of floats that are not all
whole numbers is written by each engine's float formatting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from decisioning.adapters import storage
from decisioning.adapters.storage import Location
from decisioning.core.errors import SchemaError
from decisioning.core.events import ColumnKind
from pipelines.ingest import CONTRACTS, ReadingConfig
from pipelines.timestamps import DAY_MONTH, HOW_TO_ZONE, SHOWN_ROWS, ZONE_SUFFIX, time_zone

logger = logging.getLogger(__name__)

# The row's number in the file, from 1 after the header: what pandas' messages and quarantine call
# a row. Named so that no contract column or bank's column takes it.
ROW = "__row"
_ID, _FILE, _BLOCK = "__id", "__file", "__block"
# What pandas' read_csv reads as empty (its default na_values); pandas' own list, so they agree.
_NOT_A_VALUE = sorted(STR_NA_VALUES)
# What Python's str.strip removes (pandas' .str.strip), as a Java character class.
_SPACE = "[" + "".join(f"\\u{ord(c):04x}" for c in map(chr, range(0x3001)) if c.isspace()) + "]"
# Text pandas' to_numeric reads as a number; Java would also take "1d" or hex.
_NUMBER = r"(?i)^\s*[+-]?(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?|inf|infinity|nan)\s*$"
# How a time was read: ok (or empty), not a time, no zone to read it in, at a clock change.
READ, UNREADABLE, ZONELESS, CLOCK_CHANGE = 0, 1, 2, 3
_TIMES = "ns long, status byte"


@dataclass(frozen=True)
class SparkEvents:
    """Conformed events on Spark: contract columns (times as nanoseconds), ``ROW`` beside them."""

    frame: DataFrame
    columns: tuple[str, ...]
    nanosecond_columns: frozenset[str]

    @property
    def events(self) -> DataFrame:
        """The events as pandas' conformed frame has them, without the row numbers."""
        return self.frame.select(*self.columns)


def read_events_spark(
    spark: SparkSession, path: Location, kind: str, reading: ReadingConfig | None = None
) -> SparkEvents:
    """Read and conform an event file on Spark (structure and types; the gate is apart).

    The frame is persisted: the gate and the build read it several times. Raises ``SchemaError``
    as ``pipelines.ingest.load_events`` does for the same file.
    """
    reading = reading or ReadingConfig()
    location = storage.as_location(path)
    raw, naive = _read_table(spark, location)
    required, optional = CONTRACTS[kind]
    missing = [column for column in required if column not in raw.columns]
    if missing:
        raise SchemaError(f"{kind}: missing required column {', '.join(missing)}")
    contract = {**required, **optional}
    conformed: dict[str, Column] = {}
    checks: list[_Check] = []
    for column, column_kind in contract.items():
        if column not in raw.columns:
            conformed[column] = F.lit(None).cast(_SPARK_TYPES[column_kind])
            continue
        value, column_checks = _conform(raw, column, column_kind, column in naive, reading)
        conformed[column] = value
        checks += column_checks
        if column in required:
            checks.append(_Check(column, F.col(column).isNull(), _empty(kind, column), None))
    columns = tuple([*raw.columns, *(c for c in contract if c not in raw.columns)])
    # Checks on what the file said are taken before the columns are replaced by their values.
    said = [(i, c) for i, c in enumerate(checks) if c.raw is not None]
    frame = raw.select(
        *(conformed.get(column, F.col(f"`{column}`")).alias(column) for column in columns),
        *(c.raw.alias(f"__raw_{i}") for i, c in said if c.raw is not None),
        *(c.failing.alias(f"__bad_{i}") for i, c in said),
        F.monotonically_increasing_id().alias(_ID),
        F.col("_metadata.file_path").alias(_FILE),
        F.col("_metadata.file_block_start").alias(_BLOCK),
    ).persist()
    frame = _number_rows(frame, checks)
    times = frozenset(c for c, k in contract.items() if k == "timestamp")
    return SparkEvents(frame, columns, times)


_SPARK_TYPES: dict[ColumnKind, str] = {
    "string": "string",
    "timestamp": "long",
    "float": "double",
    "label": "int",
}


def spark_path(location: str) -> str:
    """The location as Spark's Hadoop filesystems name it: ``s3a://`` for S3, absolute if local."""
    if storage.is_remote(location):
        return "s3a://" + location.removeprefix("s3://")
    if location.startswith("s3a://"):
        return location
    return str(Path(location).resolve())


def _read_table(spark: SparkSession, location: str) -> tuple[DataFrame, frozenset[str]]:
    """The file as it is (CSV all text, empty as pandas reads it), and its zone-less times."""
    arrow_location = location.replace("s3a://", "s3://", 1)
    if not storage.is_file(arrow_location):
        raise SchemaError(f"{location}: no such file")
    suffix = PurePosixPath(storage.name_of(arrow_location)).suffix.lower()
    if suffix == ".parquet":
        return spark.read.parquet(spark_path(location)), _zoneless_times(arrow_location)
    if suffix not in (".csv", ".gz"):
        raise SchemaError(
            f"{location}: expected a .csv or .parquet file, got {suffix or 'no suffix'}"
        )
    system, path = storage.filesystem(arrow_location)
    if system.get_file_info(path).size == 0:
        raise SchemaError(f"{location}: cannot be read (No columns to parse from file)")
    text = spark.read.csv(spark_path(location), header=True, escape='"', inferSchema=False)
    return text.select(
        *(
            F.when(F.col(f"`{c}`").isin(_NOT_A_VALUE), None).otherwise(F.col(f"`{c}`")).alias(c)
            for c in text.columns
        )
    ), frozenset()


def _zoneless_times(location: str) -> frozenset[str]:
    """Parquet timestamp columns written without a zone, from the file's footer.

    Spark reads nanosecond timestamps as integers (``nanosAsLong``), which no longer say whether
    they were UTC or local; the footer does.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    system, path = storage.filesystem(location)
    schema = pq.read_schema(path, filesystem=system)
    return frozenset(f.name for f in schema if pa.types.is_timestamp(f.type) and f.type.tz is None)


Message = Callable[[int, DataFrame], str]


@dataclass(frozen=True)
class _Check:
    """A refusal: the rows failing it, its message (from the count and the failing rows, each
    with ``ROW`` and ``SHOWN``), and what the file said, to show; None checks the value read."""

    column: str
    failing: Column
    message: Message
    raw: Column | None


def _conform(
    raw: DataFrame, column: str, kind: ColumnKind, zoneless: bool, reading: ReadingConfig
) -> tuple[Column, list[_Check]]:
    """The column in its contract type, and the checks that refuse a file over it."""
    value = F.col(f"`{column}`")
    source = raw.schema[column].dataType
    if kind == "string":
        return _as_text(raw, value, source), []
    if kind == "timestamp":
        return _as_nanoseconds(column, value, source, zoneless, reading)
    numeric = isinstance(source, T.NumericType)
    present = value.isNotNull() & ~F.isnan(value.cast("double")) if numeric else value.isNotNull()
    parsed = (
        value.cast("double") if numeric else F.when(value.rlike(_NUMBER), value.try_cast("double"))
    )
    if kind == "float":
        failing = present & (parsed.isNull() | F.isnan(parsed))
        check = _Check(column, failing, _first(column, "are not numbers"), value)
        return F.when(present, parsed), [check]
    failing = present & ~parsed.isin(0.0, 1.0)
    check = _Check(column, failing, _first(column, "are not 0, 1 or empty"), value)
    return F.when(present, parsed).cast("int"), [check]


def _as_text(raw: DataFrame, value: Column, source: T.DataType) -> Column:
    """Identifiers as pandas writes them: whole floats as integers ("1", not "1.0"), stripped."""
    if isinstance(source, T.FloatType | T.DoubleType):
        whole = raw.agg(F.bool_and(F.isnan(value) | value.isNull() | (value % 1 == 0))).first()
        if whole is None or whole[0] in (None, True):
            value = F.when(~F.isnan(value), value.cast("long"))
    return F.regexp_replace(value.cast("string"), f"^{_SPACE}+|{_SPACE}+$", "")


def _as_nanoseconds(
    column: str, value: Column, source: T.DataType, zoneless: bool, reading: ReadingConfig
) -> tuple[Column, list[_Check]]:
    """UTC nanoseconds since the epoch, by the rules of ``pipelines.timestamps``."""
    if isinstance(source, T.TimestampType | T.TimestampNTZType):
        nanoseconds = F.unix_micros(value.cast("timestamp")) * 1000
    elif isinstance(source, T.LongType):
        nanoseconds = value
    else:
        return _times_from(column, value.cast("string"), "text", reading)
    if not (zoneless or isinstance(source, T.TimestampNTZType)):
        return nanoseconds, []
    return _times_from(column, nanoseconds, "local", reading)


def _times_from(
    column: str, value: Column, given: str, reading: ReadingConfig
) -> tuple[Column, list[_Check]]:
    timezone, date_format = reading.timezone, reading.date_format

    def read_text(text: pd.Series) -> pd.DataFrame:
        return times_of_text(text, timezone, date_format)

    def read_local(nanoseconds: pd.Series) -> pd.DataFrame:
        return times_of_local_nanoseconds(nanoseconds, timezone)

    if given == "text":
        read = F.pandas_udf(read_text, _TIMES)(value)  # type: ignore[call-overload]
        shown = F.regexp_replace(value, f"^{_SPACE}+|{_SPACE}+$", "")
    else:
        read = F.pandas_udf(read_local, _TIMES)(value)  # type: ignore[call-overload]
        shown = value
    status = read["status"]
    written = date_format if given == "text" else None
    checks = [
        _Check(column, status == UNREADABLE, _unreadable(column, date_format), shown),
        _Check(column, status == ZONELESS, _zoneless(column, given, written), shown),
        _Check(column, status == CLOCK_CHANGE, _clock_change(column, timezone, given), shown),
    ]
    return read["ns"], checks


def times_of_text(text: pd.Series, timezone: str | None, date_format: str | None) -> pd.DataFrame:
    """A batch of written times read as ``pipelines.timestamps.parse_timestamps`` reads a column,
    with a status for each row instead of one refusal for the column."""
    text = text.astype("string").str.strip()
    present = (text.notna() & (text != "")).fillna(False)
    if date_format is not None:
        has_zone = "%z" in date_format or "%Z" in date_format
        parsed = pd.to_datetime(text, format=date_format, errors="coerce", utc=has_zone)
        unreadable = present & parsed.isna()
        if has_zone:
            return _times(parsed, unreadable)
        local = present & ~unreadable
        return _localized(parsed.where(local), local, unreadable, timezone)
    zoned = present & text.str.contains(ZONE_SUFFIX, regex=True).fillna(False)
    aware = pd.to_datetime(text.where(zoned), format="ISO8601", utc=True, errors="coerce")
    naive = pd.to_datetime(text.where(present & ~zoned), format="ISO8601", errors="coerce")
    unreadable = present & aware.isna() & naive.isna()
    local = present & ~zoned & ~unreadable
    times = _localized(naive.where(local), local, unreadable, timezone)
    times.loc[zoned.to_numpy(), "ns"] = _nanoseconds(aware)[zoned.to_numpy()]
    return times


def times_of_local_nanoseconds(nanoseconds: pd.Series, timezone: str | None) -> pd.DataFrame:
    """A batch of zone-less times (nanoseconds of the wall clock) read in ``timezone``."""
    local = nanoseconds.notna()
    naive = pd.to_datetime(nanoseconds.astype("Int64"), unit="ns")
    return _localized(naive, local, pd.Series(False, index=nanoseconds.index), timezone)


def _localized(
    naive: pd.Series, local: pd.Series, unreadable: pd.Series, timezone: str | None
) -> pd.DataFrame:
    if timezone is None:
        times = _times(pd.Series(pd.NaT, index=naive.index, dtype="datetime64[ns, UTC]"))
        times["status"] = times["status"].where(~local, ZONELESS)
    else:
        zone = time_zone(timezone)
        utc = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        times = _times(utc)
        times["status"] = times["status"].where(~(local & utc.isna()), CLOCK_CHANGE)
    times["status"] = times["status"].where(~unreadable, UNREADABLE)
    return times


def _times(utc: pd.Series, unreadable: pd.Series | None = None) -> pd.DataFrame:
    status = pd.Series(READ, index=utc.index, dtype="int8")
    if unreadable is not None:
        status = status.where(~unreadable, UNREADABLE)
    return pd.DataFrame({"ns": _nanoseconds(utc), "status": status})


def _nanoseconds(times: pd.Series) -> pd.Series:
    values = times.dt.tz_convert("UTC") if isinstance(times.dtype, pd.DatetimeTZDtype) else times
    return pd.Series(values.array.asi8, index=times.index, dtype="Int64").where(times.notna())


def _number_rows(frame: DataFrame, checks: list[_Check]) -> DataFrame:
    """Number the rows as the file orders them, and refuse the file on the first failed check.

    One pass counts each block's rows and each check's failures; the offsets of the blocks in
    file order give each row its number without bringing rows together.
    """
    failing = [
        F.col(f"__bad_{i}") if c.raw is not None else c.failing for i, c in enumerate(checks)
    ]
    blocks = (
        frame.groupBy(_FILE, _BLOCK)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.min(_ID).alias("first_id"),
            *(F.count_if(f).alias(f"failing_{i}") for i, f in enumerate(failing)),
        )
        .collect()
    )
    offsets, start = [], 0
    for block in sorted(blocks, key=lambda b: (b[_FILE], b[_BLOCK])):
        offsets.append((block[_FILE], block[_BLOCK], start - block["first_id"] + 1))
        start += block["rows"]
    schema = f"{_FILE} string, {_BLOCK} long, offset long"
    starts = frame.sparkSession.createDataFrame(offsets, schema)
    numbered = frame.join(F.broadcast(starts), [_FILE, _BLOCK]).withColumn(
        ROW, F.col(_ID) + F.col("offset")
    )
    for i, check in enumerate(checks):
        count = sum(block[f"failing_{i}"] for block in blocks)
        if count:
            said = F.col(f"__raw_{i}") if check.raw is not None else F.lit(None)
            rows = numbered.where(failing[i]).select(ROW, said.alias(SHOWN))
            message = check.message(count, rows)
            frame.unpersist()
            raise SchemaError(message)
    helpers = [c for c in frame.columns if c.startswith(("__raw_", "__bad_"))]
    return numbered.drop(_ID, _FILE, _BLOCK, "offset", *helpers)


# The messages of pipelines.ingest and pipelines.timestamps, from the count and the failing rows.
SHOWN = "__shown"


def _first_rows(rows: DataFrame, limit: int = SHOWN_ROWS) -> list[tuple[int, Any]]:
    return [(r[ROW], r[SHOWN]) for r in rows.orderBy(ROW).limit(limit).collect()]


def _empty(kind: str, column: str) -> Message:
    return lambda count, rows: f"{kind}: column {column} has {count} empty values"


def _first(column: str, what: str) -> Message:
    return lambda count, rows: (
        f"column {column}: {count} values {what} (first: {_first_rows(rows, 1)[0][1]!r})"
    )


def _unreadable(column: str, date_format: str | None) -> Message:
    def message(count: int, rows: DataFrame) -> str:
        if date_format is not None:
            return (
                f"column {column}: {count:,} values do not match --date-format "
                f"{date_format!r} ({_rows(_first_rows(rows), count)})"
            )
        return (
            f"column {column}: {count:,} values are not ISO 8601 timestamps "
            f"({_rows(_first_rows(rows), count)}); {_format_advice(rows)}"
        )

    return message


def _zoneless(column: str, given: str, date_format: str | None) -> Message:
    def message(count: int, rows: DataFrame) -> str:
        shown = _rows(_as_read(_first_rows(rows), given, date_format), count)
        return f"column {column} has no time zone on {count:,} timestamps ({shown}); {HOW_TO_ZONE}"

    return message


def _clock_change(column: str, timezone: str | None, given: str) -> Message:
    def message(count: int, rows: DataFrame) -> str:
        shown = _rows(_as_read(_first_rows(rows), given, None), count)
        return (
            f"column {column}: {count:,} local times occur twice or never in {timezone} "
            f"(a clock change: {shown}); write them with an offset or in UTC"
        )

    return message


def _as_read(rows: list[tuple[int, Any]], given: str, date_format: str | None) -> list[Any]:
    """Zone-less times shown as pandas shows them: the time read, not the text."""
    values = pd.Series([value for _, value in rows])
    if given == "text":
        times = pd.to_datetime(values, format=date_format or "ISO8601", errors="coerce")
    else:
        times = pd.to_datetime(values.astype("Int64"), unit="ns")
    return list(zip([row for row, _ in rows], times.astype("string"), strict=True))


def _rows(rows: list[tuple[int, Any]], count: int) -> str:
    """ "row 4: '13/01/2024'" for the first rows, as ``pipelines.timestamps`` writes them."""
    shown = ", ".join(f"row {row}: {value!r}" for row, value in rows[:SHOWN_ROWS])
    more = count - SHOWN_ROWS
    return shown + (f" and {more:,} more" if more > 0 else "")


def _format_advice(refused: DataFrame) -> str:
    """``pipelines.timestamps``' advice, from every refused row that names a day and month."""
    parts = refused.select(
        ROW,
        SHOWN,
        *(
            F.regexp_extract(SHOWN, DAY_MONTH.pattern, group).try_cast("int").alias(f"part{group}")
            for group in (1, 2)
        ),
    ).where(F.col("part1").isNotNull() & F.col("part2").isNotNull())
    day_first, month_first = parts.where(F.col("part1") > 12), parts.where(F.col("part2") > 12)
    counts = parts.agg(
        F.count(F.lit(1)), F.count_if(F.col("part1") > 12), F.count_if(F.col("part2") > 12)
    ).first()
    found, days, months = counts if counts is not None else (0, 0, 0)
    if not found:
        return "pass --date-format with their strptime format (e.g. '%Y/%m/%d %H:%M')"
    if days and months:
        return (
            "rows disagree on the order of day and month: "
            f"{_rows(_first_rows(day_first), days)} can only be day/month, "
            f"{_rows(_first_rows(month_first), months)} only month/day; correct the file, "
            "then pass --date-format"
        )
    if not (days or months):
        return (
            "no row tells day from month (each part is 12 or less): pass --date-format "
            "naming the order ('%d/%m/%Y %H:%M' or '%m/%d/%Y %H:%M')"
        )
    order, example = ("day/month", "%d/%m/%Y %H:%M") if days else ("month/day", "%m/%d/%Y %H:%M")
    shown = _rows(_first_rows(day_first if days else month_first), days or months)
    return (
        f"such dates could be read either way; {shown} "
        f"can only be {order}: pass --date-format '{example}' to read every row that way"
    )
