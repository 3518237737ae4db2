"""The backtest's quality figures: what the scores of a test window were worth, as JSON.

Measured on the test payments whose label the file holds (their final label, whenever it came):
ROC AUC and average precision of the score, card precision@k per day as the Fraud Detection
Handbook defines it, and the recall of the alerts the scorer raised within its alert budget.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from pipelines.fraud.baseline import BASELINE_NAME
from pipelines.fraud.metrics import daily_card_precision_at_k

ALERTED = ("review", "decline")


def backtest_quality(
    scores: pd.DataFrame, test: pd.DataFrame, k: int, alert_budget: float
) -> dict[str, Any]:
    """Quality of ``scores`` (transaction_id, score, action) against ``test``'s final labels.

    ``test``: the test window's payments with transaction_id, occurred_at, customer_id, card_id
    and label (empty where the file never got one; those are counted, not scored).
    """
    truth = test[["transaction_id", "occurred_at", "customer_id", "card_id", "label"]]
    scored = truth.assign(transaction_id=truth["transaction_id"].astype(str)).merge(
        scores[["transaction_id", "score", "action"]], on="transaction_id", validate="1:1"
    )
    labelled = scored[scored["label"].notna()].reset_index(drop=True)
    labels = labelled["label"].astype(int).to_numpy()
    values = labelled["score"].to_numpy(dtype="float64")
    both = len(np.unique(labels)) == 2
    alerted = labelled["action"].isin(ALERTED).to_numpy()
    daily = daily_card_precision_at_k(labelled, k)
    frauds = int(labels.sum())
    return {
        "test_payments": len(scored),
        "labelled_test_payments": len(labelled),
        "test_frauds": frauds,
        "roc_auc": float(roc_auc_score(labels, values)) if both else None,
        "average_precision": float(average_precision_score(labels, values)) if both else None,
        f"card_precision_at_{k}": float(daily["precision"].mean()) if len(daily) else None,
        "card_precision_k": k,
        "card_precision_per_day": [
            {
                "day": row.day.date().isoformat(),
                "caught": int(row.caught),
                "precision": float(row.precision),
            }
            for row in daily.itertuples()
        ],
        "recall_at_alert_budget": float((alerted & (labels == 1)).sum() / frauds)
        if frauds
        else None,
        "alert_budget": alert_budget,
        "alert_share": float(scored["action"].isin(ALERTED).mean()),
    }


def comparable_figures(quality: dict[str, Any]) -> dict[str, Any]:
    """The figures two models of one backtest are compared on (the baseline's, the scorer's)."""
    k = quality["card_precision_k"]
    return {
        name: quality[name]
        for name in (
            "roc_auc",
            "average_precision",
            f"card_precision_at_{k}",
            "recall_at_alert_budget",
        )
    }


def quality_path(scores_path: Path) -> Path:
    """Beside the scores file: ``scores.parquet`` -> ``scores.metrics.json``."""
    return scores_path.with_name(f"{scores_path.stem}.metrics.json")


def write_quality(quality: dict[str, Any], path: Path) -> Path:
    """The figures as JSON; a figure that cannot be computed (one class only) is null."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(quality), indent=2) + "\n")
    return path


def quality_line(quality: dict[str, Any]) -> str:
    """One line for the terminal: the four figures a fraud team reads first."""
    shown = figures_line(quality, quality["card_precision_k"])
    return (
        f"{shown} ({quality['test_frauds']:,} frauds in {quality['labelled_test_payments']:,} "
        f"labelled test payments; alerts on {quality['alert_share']:.2%}, "
        f"budget {quality['alert_budget']:.2%})"
    )


def baseline_line(quality: dict[str, Any]) -> str:
    """The baseline's figures, to print under the scorer's."""
    return f"{figures_line(quality['baseline'], quality['card_precision_k'])} ({BASELINE_NAME})"


def figures_line(figures: dict[str, Any], k: int) -> str:
    named = {
        "ROC AUC": figures["roc_auc"],
        "average precision": figures["average_precision"],
        f"card precision@{k}": figures[f"card_precision_at_{k}"],
        "recall at the alert budget": figures["recall_at_alert_budget"],
    }
    return ", ".join(
        f"{name} {'n/a' if value is None else f'{value:.3f}'}" for name, value in named.items()
    )


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
