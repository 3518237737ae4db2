"""The gate with a quarantine: a few bad rows are set aside instead of refusing a whole file.

With ``on_bad_rows: refuse`` (the default) this is the plain gate. With ``quarantine``, rows that
fail a row-level expectation (a negative amount, an unknown currency, a duplicate id) are written
with the expectations they failed to a CSV beside the job's output, and the job goes on without
them while they are at most ``quarantine_max_share`` of the file. A failure that is not about rows
(a missing column, an empty file) still refuses the file, and what goes on is gated again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.errors import QualityGateFailed, TooManyBadRows
from pipelines.ingest import ReadingConfig
from pipelines.quality import FailedExpectation, require_valid, validate_frame

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Quarantine:
    """How many rows were set aside, out of how many, and where they were written."""

    rows: int
    total: int
    ceiling: float
    path: Path | None

    @property
    def share(self) -> float:
        return self.rows / self.total if self.total else 0.0

    def line(self) -> str:
        if not self.rows:
            return f"quarantine: no bad rows in {self.total:,}"
        return (
            f"quarantined {self.rows:,} of {self.total:,} rows ({self.share:.3%}, ceiling "
            f"{self.ceiling:.3%}) to {self.path}; the job went on without them"
        )


@dataclass(frozen=True)
class CheckedEvents:
    """Events that passed the gate, and the quarantine when one was kept."""

    frame: pd.DataFrame
    quarantine: Quarantine | None = None


def quarantine_path(beside: Path, kind: str) -> Path:
    """``out/scores.parquet`` -> ``out/scores.transactions.quarantine.csv``."""
    return beside.with_name(f"{beside.stem}.{kind}.quarantine.csv")


def gate_events(
    frame: pd.DataFrame, kind: str, reading: ReadingConfig, quarantine_to: Path
) -> CheckedEvents:
    """Run the gate on conformed events as ``reading.on_bad_rows`` says; see the module's doc.

    Raises ``QualityGateFailed`` (refuse, or a failure not about rows) or ``TooManyBadRows``.
    """
    if reading.on_bad_rows == "refuse":
        require_valid(frame, kind)
        return CheckedEvents(frame)
    frame = frame.reset_index(drop=True)
    result = validate_frame(frame, kind, rows=True)
    if result.success:
        return CheckedEvents(frame, Quarantine(0, len(frame), reading.quarantine_max_share, None))
    not_about_rows = [failure for failure in result.failed if not failure.rows]
    if not_about_rows:
        raise QualityGateFailed(result.summary(), result.report())
    bad = refused_rows(frame, result.failed)
    quarantine_to.parent.mkdir(parents=True, exist_ok=True)
    bad.to_csv(quarantine_to, index=False)
    quarantine = Quarantine(len(bad), len(frame), reading.quarantine_max_share, quarantine_to)
    if quarantine.share > quarantine.ceiling:
        raise too_many_bad_rows(kind, quarantine, result.summary())
    kept = frame.drop(index=bad["row"] - 1).reset_index(drop=True)
    require_valid(kept, kind)  # what goes on has passed the gate, not merely lost its bad rows
    logger.info("%s", quarantine.line())
    return CheckedEvents(kept, quarantine)


def too_many_bad_rows(kind: str, quarantine: Quarantine, summary: str) -> TooManyBadRows:
    """The refusal of a file whose bad rows are above the ceiling, whichever engine found them."""
    return TooManyBadRows(
        f"{kind}: {quarantine.rows:,} of {quarantine.total:,} rows ({quarantine.share:.3%}) "
        f"fail the gate, above the quarantine ceiling of {quarantine.ceiling:.3%} "
        f"(configs/ingest.yaml: quarantine_max_share); they are in {quarantine.path}: {summary}"
    )


def refused_rows(frame: pd.DataFrame, failed: tuple[FailedExpectation, ...]) -> pd.DataFrame:
    """The failing rows with their row number (from 1) and the expectations each failed."""
    reasons: dict[int, list[str]] = {}
    for failure in failed:
        for row in failure.rows:
            reasons.setdefault(row, []).append(f"{failure.column}: {failure.expectation}")
    rows = sorted(reasons)
    bad = frame.loc[rows].copy()
    bad.insert(0, "failed_expectations", ["; ".join(reasons[row]) for row in rows])
    bad.insert(0, "row", [row + 1 for row in rows])
    return bad.reset_index(drop=True)
