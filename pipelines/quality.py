"""The data-quality gate: Great Expectations 1.x suites from ``expectations/``, run on a frame.

The only module that talks to Great Expectations, so an API change touches one file. Suites are
stored in GX's own expectation-configuration format; ``$now`` in a suite stands for the time of
validation (a timestamp from the future is refused). An expectation may carry a ``meta.hint``: what
a user whose file fails it should do, printed with the failure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from decisioning.core.events import utc_now
from pipelines.errors import QualityGateFailed

if TYPE_CHECKING:
    from pyspark.sql import DataFrame as SparkDataFrame

logger = logging.getLogger(__name__)

SUITE_DIR = Path(__file__).resolve().parents[1] / "expectations"
SUITES = ("transactions", "texts", "training-set")


EXAMPLES = 3


@dataclass(frozen=True)
class FailedExpectation:
    """One failed expectation: what, where, how many rows and a few of their values."""

    expectation: str
    column: str | None
    unexpected_count: int | None
    examples: tuple[str, ...]
    observed: str | None
    hint: str | None = None
    # Index labels of every failing row; filled only when asked for (``rows=True``: quarantine).
    rows: tuple[int, ...] = ()
    # The arguments it was checked with (``$now`` filled in): what a row-level check on another
    # engine rebuilds the expectation from (``pipelines.features.spark_gate``).
    kwargs: dict[str, Any] = field(default_factory=dict, compare=False)

    def line(self) -> str:
        where = self.column or "table"
        hint = f" - {self.hint}" if self.hint else ""
        if self.unexpected_count is not None:
            sample = f", e.g. {', '.join(self.examples)}" if self.examples else ""
            rows = "row" if self.unexpected_count == 1 else "rows"
            return f"{where}: {self.expectation} ({self.unexpected_count:,} {rows}{sample}){hint}"
        observed = f", observed {self.observed}" if self.observed else ""
        return f"{where}: {self.expectation}{observed}{hint}"


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    total: int
    failed: tuple[FailedExpectation, ...]

    @property
    def success(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        """One line: what failed, naming the columns."""
        if self.success:
            return f"{self.suite}: all {self.total} expectations passed"
        details = "; ".join(failure.line() for failure in self.failed)
        return f"{self.suite}: {len(self.failed)} of {self.total} expectations failed: {details}"

    def report(self) -> str:
        """A readable multi-line report of failed expectations with counts."""
        lines = [f"suite {self.suite}: {self.total - len(self.failed)}/{self.total} passed"]
        lines += [f"  FAILED {failure.line()}" for failure in self.failed]
        return "\n".join(lines)


def load_suite_spec(name: str, suite_dir: Path = SUITE_DIR) -> dict[str, Any]:
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; choose one of {', '.join(SUITES)}")
    spec: dict[str, Any] = json.loads((suite_dir / f"{name}.json").read_text())
    return spec


def validate_frame(frame: pd.DataFrame, suite_name: str, rows: bool = False) -> SuiteResult:
    """Run one suite on a frame and summarise the failures (never raises on failure).

    ``rows`` also collects the index of every failing row (GX's COMPLETE result), which costs a
    list as long as the failures: what quarantine needs, and nothing else does.
    """
    context = _context()
    configs = _expectations(suite_name, list(frame.columns), frozenset())
    batch = (
        context.data_sources.add_pandas(f"{suite_name}-source")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    return _validate(batch, suite_name, configs, "COMPLETE" if rows else "SUMMARY", frozenset())


def validate_spark_frame(
    frame: SparkDataFrame, suite_name: str, nanosecond_columns: frozenset[str] = frozenset()
) -> SuiteResult:
    """The same suite on a Spark frame, through GX's Spark engine; the verdict only (no rows).

    Spark keeps microseconds, so the Spark engine carries the contract's times as integer
    nanoseconds in ``nanosecond_columns``: bounds written as times are compared as nanoseconds,
    and failing values are shown as times, as :func:`validate_frame` shows them.
    """
    context = _context()
    configs = _expectations(suite_name, list(frame.columns), nanosecond_columns)
    batch = (
        context.data_sources.add_spark(f"{suite_name}-source")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    return _validate(batch, suite_name, configs, "SUMMARY", nanosecond_columns)


def _context() -> Any:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    # GX pins one of its module loggers to INFO at import; keep its chatter out of our output.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _expectations(
    suite_name: str, columns: list[str], nanosecond_columns: frozenset[str]
) -> list[Any]:
    """The suite's expectations that apply to a frame of ``columns``, ``$now`` filled in."""
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    now = utc_now().isoformat()
    return [
        ExpectationConfiguration(
            type=item["type"],
            kwargs=_as_nanoseconds(_substitute(item["kwargs"], now), nanosecond_columns),
            meta=item.get("meta"),
        )
        for item in load_suite_spec(suite_name)["expectations"]
        if _applies(item["kwargs"], columns)
    ]


def _validate(
    batch: Any,
    suite_name: str,
    configs: list[Any],
    result_format: str,
    nanosecond_columns: frozenset[str],
) -> SuiteResult:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=suite_name, expectations=[c.to_domain_obj() for c in configs])
    result = batch.validate(suite, result_format=result_format)
    failed = tuple(
        _failure(item, nanosecond_columns) for item in result.results if not item.success
    )
    logger.info("suite %s: %d expectations, %d failed", suite_name, len(configs), len(failed))
    return SuiteResult(suite=suite_name, total=len(configs), failed=failed)


def require_valid(frame: pd.DataFrame, suite_name: str) -> SuiteResult:
    """The gate every pipeline step runs before it uses data: stop on any failure."""
    result = validate_frame(frame, suite_name)
    if not result.success:
        raise QualityGateFailed(result.summary(), result.report())
    return result


def _applies(kwargs: dict[str, Any], columns: list[str]) -> bool:
    """Column expectations on optional columns apply only when the file has the column.

    A missing required column is caught by the table-level column-set expectation instead.
    """
    return all(column in columns for column in _columns_of(kwargs))


def _columns_of(kwargs: dict[str, Any]) -> list[str]:
    return [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]


def _substitute(kwargs: dict[str, Any], now: str) -> dict[str, Any]:
    return {key: now if value == "$now" else value for key, value in kwargs.items()}


def _as_nanoseconds(kwargs: dict[str, Any], nanosecond_columns: frozenset[str]) -> dict[str, Any]:
    """Bounds written as times, as integer nanoseconds for a column that holds times so."""
    if not set(_columns_of(kwargs)) & nanosecond_columns:
        return kwargs
    bounds = ("min_value", "max_value")
    return {
        key: pd.Timestamp(value).value if key in bounds and isinstance(value, str) else value
        for key, value in kwargs.items()
    }


def _failure(item: Any, nanosecond_columns: frozenset[str] = frozenset()) -> FailedExpectation:
    config = item.expectation_config
    result = item.result or {}
    if item.exception_info and item.exception_info.get("raised_exception"):
        observed: str | None = f"error: {item.exception_info.get('exception_message')}"
    else:
        value = result.get("observed_value")
        observed = None if value is None else str(value)[:120]
    kwargs = config.kwargs
    values = (result.get("partial_unexpected_list") or [])[:EXAMPLES]
    if set(_columns_of(kwargs)) & nanosecond_columns:
        values = [_as_time(value) for value in values]
    examples = tuple(_example(v) for v in values)
    count = result.get("unexpected_count")
    column = kwargs.get("column")
    if "column_A" in kwargs:
        column = f"{kwargs['column_A']} vs {kwargs['column_B']}"
    return FailedExpectation(
        expectation=config.type,
        column=column,
        unexpected_count=None if count is None else int(count),
        examples=examples,
        observed=observed,
        hint=(config.meta or {}).get("hint"),
        rows=tuple(int(row) for row in result.get("unexpected_index_list") or ()),
        kwargs=dict(kwargs),
    )


def _as_time(value: object) -> object:
    """Integer nanoseconds (or a pair of them) as the UTC time the pandas engine would show."""
    if isinstance(value, tuple | list):
        return tuple(_as_time(item) for item in value)
    return pd.Timestamp(value, tz="UTC") if isinstance(value, int) else value


def _example(value: object) -> str:
    """A failing value as a reader writes it: timestamps in ISO 8601, pairs in parentheses."""
    if isinstance(value, tuple | list):
        return f"({', '.join(_example(item) for item in value)})"
    if isinstance(value, np.datetime64 | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    return repr(value)[:40] if isinstance(value, str) else str(value)[:40]
