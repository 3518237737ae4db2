"""Model selection by prequential validation: candidates compared on time-ordered folds.

The training period, up to its last labelled payment, is cut into ``folds + 1`` equal stretches of
time; fold k validates on stretch k (its labels as known when training) and learns from every
payment before it, with only the labels known at the stretch's start (``label_available_at``),
as a model deployed then would have had them. Every
candidate is fitted on the same folds and the one with the best mean average precision wins;
ties keep the earlier candidate, so listing the configured values first makes them the default.
A fold whose learned labels lack a class, or whose validation stretch does, is left out for all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from decisioning.fraud.config import FraudConfig, SelectionCandidate
from decisioning.fraud.model import MIN_POSITIVES, fold_margins
from decisioning.fraud.reason_codes import ReasonCodeBook
from pipelines.fraud.dataset import TimeSplit, labels_known_at

logger = logging.getLogger(__name__)

SELECTION_TAG = "selection.chosen"


@dataclass(frozen=True)
class Fold:
    """Validate on ``[start, end)``; learn the labels of earlier payments known at ``start``."""

    number: int
    start: pd.Timestamp
    end: pd.Timestamp


@dataclass(frozen=True)
class CandidateResult:
    candidate: SelectionCandidate
    fold_average_precision: tuple[float, ...]

    @property
    def mean_average_precision(self) -> float:
        return float(np.mean(self.fold_average_precision))


@dataclass(frozen=True)
class Selection:
    """What the search tried and chose; ``chosen`` is None when nothing was searched."""

    chosen: SelectionCandidate | None
    folds: tuple[Fold, ...]
    results: tuple[CandidateResult, ...]
    note: str

    def config(self, config: FraudConfig) -> FraudConfig:
        """The config the final model is fitted with."""
        return config if self.chosen is None else self.chosen.applied_to(config)

    def summary(self) -> dict[str, Any]:
        """JSON-ready: the folds, each candidate's average precision per fold, the choice."""
        return {
            "chosen": None if self.chosen is None else self.chosen.name,
            "note": self.note,
            "folds": [
                {"fold": f.number, "start": f.start.isoformat(), "end": f.end.isoformat()}
                for f in self.folds
            ],
            "candidates": [
                {
                    "name": result.candidate.name,
                    "mean_average_precision": result.mean_average_precision,
                    "fold_average_precision": list(result.fold_average_precision),
                }
                for result in self.results
            ],
        }


def prequential_folds(start: pd.Timestamp, end: pd.Timestamp, count: int) -> list[Fold]:
    """``count`` consecutive validation stretches ending at ``end``, one stretch after ``start``."""
    length = (end - start) / (count + 1)
    return [
        Fold(number, start + number * length, start + (number + 1) * length)
        for number in range(1, count + 1)
    ]


def fold_split(period: pd.DataFrame, fold: Fold) -> TimeSplit:
    """The fold's payments: all before its start, those labelled by then, its validation ones.

    ``period``: payments with ``label`` (as known when training) and ``label_available_at``.
    """
    before = period["occurred_at"] < fold.start
    history = period[before].reset_index(drop=True)
    known = history.assign(label=labels_known_at(history, fold.start))
    inside = (period["occurred_at"] >= fold.start) & (period["occurred_at"] < fold.end)
    return TimeSplit(
        history=history,
        train=known[known["label"].notna()].reset_index(drop=True),
        validation=period[inside & period["label"].notna()].reset_index(drop=True),
    )


def select_candidate(
    period: pd.DataFrame,
    features: list[str],
    config: FraudConfig,
    reason_codes: ReasonCodeBook,
) -> Selection:
    """Fit every configured candidate on the prequential folds of ``period``; keep the best.

    ``period``: the training period's payments with their features, ``label`` as known when
    training and ``label_available_at``.
    """
    settings = config.selection
    if not settings.enabled or len(settings.candidates) < 2:
        return Selection(None, (), (), "not searched: selection off or a single candidate")
    labelled = period.loc[period["label"].notna(), "occurred_at"]
    if labelled.empty:
        return Selection(None, (), (), "not searched: no label known")
    # Just past the last labelled payment, so the last stretch includes it.
    end = labelled.max() + pd.Timedelta(microseconds=1)
    stretches = prequential_folds(period["occurred_at"].min(), end, settings.folds)
    usable = [
        (fold, split)
        for fold in stretches
        if _usable(split := fold_split(period, fold), settings.min_fold_frauds)
    ]
    if not usable:
        return Selection(
            None,
            (),
            (),
            f"not searched: no fold knew both classes at its start and "
            f"{settings.min_fold_frauds} frauds in its stretch",
        )
    folds = [fold for fold, _ in usable]
    splits = [split for _, split in usable]
    results = []
    for candidate in settings.candidates:
        # One XGBoost thread per fold fit: the folds are small, and on a shared machine a second
        # thread mostly waits on the first (measured 15x slower on a loaded two-core host).
        tried = candidate.applied_to(config)
        tried = tried.model_copy(
            update={"xgboost": tried.xgboost.model_copy(update={"nthread": 1})}
        )
        scores = []
        for split in splits:
            margins = fold_margins(
                split.history, split.train, split.validation, features, tried, reason_codes
            )
            labels = split.validation["label"].astype(int).to_numpy()
            scores.append(float(average_precision_score(labels, margins)))
        results.append(CandidateResult(candidate, tuple(scores)))
        logger.info("candidate %s: average precision per fold %s", candidate.name, scores)
    best = max(results, key=lambda result: result.mean_average_precision)  # first of ties
    return Selection(best.candidate, tuple(folds), tuple(results), f"{len(folds)} folds")


def _usable(split: TimeSplit, min_frauds: int) -> bool:
    learned = split.train["label"].astype(int)
    checked = split.validation["label"].astype(int)
    return (
        int(learned.sum()) >= MIN_POSITIVES
        and int((learned == 0).sum()) > 0
        and int(checked.sum()) >= min_frauds
        and int((checked == 0).sum()) > 0
    )


def log_selection(parent_run_id: str, selection: Selection) -> list[str]:
    """One child run per candidate under ``parent_run_id``; the parent records the choice.

    Call inside the registry's MLflow session. Returns the child runs' ids.
    """
    import mlflow

    children = []
    with mlflow.start_run(run_id=parent_run_id) as parent:
        mlflow.set_tag(SELECTION_TAG, "none" if selection.chosen is None else selection.chosen.name)
        if selection.chosen is not None:
            mlflow.log_params(
                {f"selection.chosen.{k}": str(v) for k, v in selection.chosen.model_dump().items()}
            )
        mlflow.log_dict(selection.summary(), "selection.json")
        for result in selection.results:
            with mlflow.start_run(
                experiment_id=parent.info.experiment_id,
                run_name=f"candidate {result.candidate.name}",
                nested=True,
            ) as child:
                mlflow.log_params({k: str(v) for k, v in result.candidate.model_dump().items()})
                for fold, value in zip(selection.folds, result.fold_average_precision, strict=True):
                    mlflow.log_metric("fold_average_precision", value, step=fold.number)
                mlflow.log_metric("mean_average_precision", result.mean_average_precision)
                mlflow.set_tag("chosen", str(result.candidate == selection.chosen).lower())
                children.append(child.info.run_id)
    return children
