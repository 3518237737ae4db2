"""Drift between a reference and a current window: which features, which test, which verdict.

Pure functions of two frames. Structured features get the population stability index (PSI) per
feature; message texts get a domain-classifier test on their embeddings (can a classifier tell
the two windows apart? ROC AUC near 0.5 means no). The Evidently adapter computes the scores; this
module decides what to compare and how to read the result, so the verdicts stay testable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd

from decisioning.core.events import TEXT_REQUIRED, TRANSACTION_REQUIRED
from pipelines.monitoring.errors import DriftInputError

EventKind = Literal["transactions", "texts"]
PSI_THRESHOLD = 0.2  # the usual reading: < 0.1 stable, 0.1-0.2 moving, > 0.2 shifted
EMBEDDING_AUC_THRESHOLD = 0.55  # Evidently's default for its domain-classifier method
EMBEDDING_FEATURE = "text_embeddings"
CATEGORICAL = ("channel", "country", "mcc", "currency")
# Numeric columns that are outcomes or bookkeeping, not inputs a model sees.
NOT_FEATURES = frozenset({"label", "is_fraud", "fraud"})


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    method: Literal["psi", "domain_classifier_auc"]
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return self.score > self.threshold

    @property
    def measured(self) -> bool:
        return not math.isnan(self.score)

    def verdict(self) -> str:
        """One line a person can read: ``amount: PSI 0.83 → drift``."""
        name = "PSI" if self.method == "psi" else "domain-classifier ROC AUC"
        if not self.measured:
            return f"{self.feature}: {name} undefined → drift not measured"
        return (
            f"{self.feature}: {name} {self.score:.2f} → {'drift' if self.drifted else 'no drift'}"
        )

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "drift": self.drifted}


@dataclass(frozen=True)
class FeatureFrames:
    """The columns to compare, already derived (hour, text length) and typed."""

    reference: pd.DataFrame
    current: pd.DataFrame
    numerical: tuple[str, ...]
    categorical: tuple[str, ...]


def event_kind(frame: pd.DataFrame) -> EventKind:
    """Transactions or texts, told by their required columns (docs/design.md, Contracts: events)."""
    if set(TRANSACTION_REQUIRED) <= set(frame.columns):
        return "transactions"
    if set(TEXT_REQUIRED) <= set(frame.columns):
        return "texts"
    raise DriftInputError(
        "neither transactions nor texts: need the columns "
        f"{', '.join(TRANSACTION_REQUIRED)} or {', '.join(TEXT_REQUIRED)}"
    )


def matching_kind(reference: pd.DataFrame, current: pd.DataFrame) -> EventKind:
    kind, other = event_kind(reference), event_kind(current)
    if kind != other:
        raise DriftInputError(f"reference holds {kind} but current holds {other}")
    return kind


def feature_frames(
    reference: pd.DataFrame, current: pd.DataFrame, kind: EventKind
) -> FeatureFrames:
    """Derive and select the structured features both windows share."""
    ref, cur = _derived(reference, kind), _derived(current, kind)
    shared = [c for c in ref.columns if c in cur.columns and _has_values(ref[c], cur[c])]
    numerical = tuple(c for c in shared if c not in CATEGORICAL and _is_number(ref[c], cur[c]))
    categorical = tuple(c for c in shared if c in CATEGORICAL)
    if not numerical and not categorical:
        raise DriftInputError("no feature has values in both files")
    columns = [*numerical, *categorical]
    return FeatureFrames(
        _typed(ref[columns], numerical, categorical),
        _typed(cur[columns], numerical, categorical),
        numerical,
        categorical,
    )


def sample_rows(frame: pd.DataFrame, limit: int, seed: int = 0) -> pd.DataFrame:
    """At most ``limit`` rows, drawn reproducibly: a test on embeddings needs hundreds, not all."""
    if len(frame) > limit:
        frame = frame.sample(n=limit, random_state=seed).sort_index()
    return frame.reset_index(drop=True)


def embedding_frame(vectors: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(vectors, columns=[f"emb_{i}" for i in range(vectors.shape[1])])


def scores_document(kind: EventKind, results: Sequence[FeatureDrift]) -> dict[str, object]:
    """What is stored and published: the kind, every score and its verdict."""
    return {
        "kind": kind,
        "drifted": [r.feature for r in results if r.drifted],
        "features": [r.as_dict() for r in results if r.measured],
        "not_measured": [r.feature for r in results if not r.measured],
    }


def _derived(frame: pd.DataFrame, kind: EventKind) -> pd.DataFrame:
    out = frame.copy()
    time_column = "occurred_at" if kind == "transactions" else "received_at"
    out["hour"] = pd.to_datetime(out[time_column], utc=True).dt.hour
    if kind == "texts":
        out["text_length"] = out["text"].astype("string").str.len()
    ids = {c for c in out.columns if c.endswith("_id") or c.endswith("_at")}
    dropped = ids | NOT_FEATURES | {time_column, "text"}
    return out.drop(columns=[c for c in out.columns if c in dropped])


def _has_values(first: pd.Series, second: pd.Series) -> bool:
    return bool(first.notna().any() and second.notna().any())


def _is_number(first: pd.Series, second: pd.Series) -> bool:
    def numeric(series: pd.Series) -> bool:
        return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)

    return numeric(first) and numeric(second)


def _typed(
    frame: pd.DataFrame, numerical: tuple[str, ...], categorical: tuple[str, ...]
) -> pd.DataFrame:
    out = frame.copy()
    for column in numerical:
        out[column] = out[column].astype("float64")
    for column in categorical:
        out[column] = out[column].astype("string").fillna("missing").astype(object)
    return out.reset_index(drop=True)
