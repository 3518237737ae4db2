"""The data-quality gate: Great Expectations 1.x suites from ``expectations/``, run on a frame.

The only module that talks to Great Expectations, so an API change touches one file. Suites are
stored in GX's own expectation-configuration format; ``$now`` in a suite stands for the time of
validation (a timestamp from the future is refused). An expectation may carry a ``meta.hint``: what
a user whose file fails it should do, printed with the failure.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decisioning.core.events import utc_now
from pipelines.errors import QualityGateFailed

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
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )

    # GX pins one of its module loggers to INFO at import; keep its chatter out of our output.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    spec = load_suite_spec(suite_name)
    now = utc_now().isoformat()
    configs = [
        ExpectationConfiguration(
            type=item["type"], kwargs=_substitute(item["kwargs"], now), meta=item.get("meta")
        )
        for item in spec["expectations"]
        if _applies(item["kwargs"], frame)
    ]
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    suite = gx.ExpectationSuite(name=suite_name, expectations=[c.to_domain_obj() for c in configs])
    batch = (
        context.data_sources.add_pandas(f"{suite_name}-source")
        .add_dataframe_asset("frame")
        .add_batch_definition_whole_dataframe("whole")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    result = batch.validate(suite, result_format="COMPLETE" if rows else "SUMMARY")
    failed = tuple(_failure(item) for item in result.results if not item.success)
    logger.info("suite %s: %d expectations, %d failed", suite_name, len(configs), len(failed))
    return SuiteResult(suite=suite_name, total=len(configs), failed=failed)


def require_valid(frame: pd.DataFrame, suite_name: str) -> SuiteResult:
    """The gate every pipeline step runs before it uses data: stop on any failure."""
    result = validate_frame(frame, suite_name)
    if not result.success:
        raise QualityGateFailed(result.summary(), result.report())
    return result


def _applies(kwargs: dict[str, Any], frame: pd.DataFrame) -> bool:
    """Column expectations on optional columns apply only when the file has the column.

    A missing required column is caught by the table-level column-set expectation instead.
    """
    columns = [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]
    return all(column in frame.columns for column in columns)


def _substitute(kwargs: dict[str, Any], now: str) -> dict[str, Any]:
    return {key: now if value == "$now" else value for key, value in kwargs.items()}


def _failure(item: Any) -> FailedExpectation:
    config = item.expectation_config
    result = item.result or {}
    if item.exception_info and item.exception_info.get("raised_exception"):
        observed: str | None = f"error: {item.exception_info.get('exception_message')}"
    else:
        value = result.get("observed_value")
        observed = None if value is None else str(value)[:120]
    examples = tuple(_example(v) for v in (result.get("partial_unexpected_list") or [])[:EXAMPLES])
    count = result.get("unexpected_count")
    kwargs = config.kwargs
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
    )


def _example(value: object) -> str:
    """A failing value as a reader writes it: timestamps in ISO 8601, pairs in parentheses."""
    if isinstance(value, tuple | list):
        return f"({', '.join(_example(item) for item in value)})"
    if isinstance(value, np.datetime64 | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    return repr(value)[:40] if isinstance(value, str) else str(value)[:40]
