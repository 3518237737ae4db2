"""Drift between the training reference and the most recent window, as a promotion-gate tag.

Computed when the model is trained, with the monitoring package's Evidently adapter (PSI per
feature of the feature service); the registry's ``tag_passed`` gate then reads the verdict from
the version's tags, so the registry never imports the pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from pipelines.monitoring.drift import PSI_THRESHOLD, FeatureDrift, FeatureFrames, sample_rows
from pipelines.monitoring.evidently_reports import drift_report

DRIFT_TAG = "drift.training_vs_recent"
DRIFT_SAMPLE_ROWS = 20_000  # PSI over ten bins is stable well before this; Evidently is not fast
# A lifetime counter rises with the calendar, so its PSI measures how old the history is, not a
# change in behaviour (0.69 on a 90-day world): it is reported in the tag but does not fail it.
GROWS_WITH_TIME = frozenset({"payments_before"})


@dataclass(frozen=True)
class ReferenceDrift:
    """Per-feature PSI, the Evidently snapshot (for the HTML artifact) and the tag to write."""

    results: tuple[FeatureDrift, ...]
    snapshot: Any

    @property
    def passed(self) -> bool:
        measured = [r for r in self.results if r.measured]
        return bool(measured) and not any(r.drifted for r in measured if _gated(r))

    def as_tag(self) -> str:
        """``passed: ...`` or ``failed: ...``, the form every gate tag takes."""
        measured = [r for r in self.results if r.measured]
        if not measured:
            return "failed: no feature's PSI could be measured"
        gated = [r for r in measured if _gated(r)]
        worst = max(gated or measured, key=lambda r: r.score)
        drifted = [f"{r.feature} {r.score:.3f}" for r in gated if r.drifted]
        unmeasured = [r.feature for r in self.results if not r.measured]
        not_gated = [f"{r.feature} {r.score:.3f}" for r in measured if not _gated(r)]
        detail = (
            f"PSI over {len(gated)} features, bound {PSI_THRESHOLD}; "
            + (
                f"drift in {', '.join(drifted)}"
                if drifted
                else f"max {worst.feature} {worst.score:.3f}"
            )
            + (f"; grows with time (not gated): {', '.join(not_gated)}" if not_gated else "")
            + (f"; not measured: {', '.join(unmeasured)}" if unmeasured else "")
        )
        return f"{'passed' if self.passed else 'failed'}: {detail}"


def reference_drift(
    reference: pd.DataFrame, recent: pd.DataFrame, features: Sequence[str]
) -> ReferenceDrift:
    """PSI per feature of ``features`` between the two windows' feature values."""
    numerical = tuple(f for f in features if _is_number(reference[f]))
    categorical = tuple(f for f in features if f not in numerical)

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        rows = sample_rows(frame[list(features)], DRIFT_SAMPLE_ROWS)
        return rows.astype(
            {**dict.fromkeys(numerical, "float64"), **dict.fromkeys(categorical, "object")}
        )

    frames = FeatureFrames(typed(reference), typed(recent), numerical, categorical)
    results, snapshot = drift_report(frames)
    return ReferenceDrift(tuple(results), snapshot)


def _gated(result: FeatureDrift) -> bool:
    return result.feature not in GROWS_WITH_TIME


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
