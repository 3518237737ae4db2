"""Fraud metrics as the fraud team reads them, and the plots logged beside each model version.

The pure metric definitions live in ``decisioning.fraud.metrics`` so the promotion gates compute
exactly what training reports.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

from decisioning.fraud.metrics import (
    CALIBRATION_BINS,
    card_precision_at_k,
    expected_calibration_error,
)

__all__ = [
    "after_known_terminal_fraud",
    "card_precision_at_k",
    "contribution_summary",
    "daily_card_precision_at_k",
    "expected_calibration_error",
    "fraud_metrics",
    "write_curves",
    "write_shap_summary",
]

logger = logging.getLogger(__name__)


def fraud_metrics(scored: pd.DataFrame, flagged: np.ndarray, k: int) -> dict[str, float]:
    """ROC AUC, AP, card precision@k, recall at the alert budget, calibration error.

    ``scored``: labelled payments (label 0/1) with ``score`` and the card and time columns;
    ``flagged``: which of them the scorer sends to review or decline (its rules included).
    """
    labels = scored["label"].astype(int).to_numpy()
    scores = scored["score"].to_numpy(dtype="float64")
    both = len(np.unique(labels)) == 2
    frauds = max(int(labels.sum()), 1)
    return {
        "roc_auc": float(roc_auc_score(labels, scores)) if both else float("nan"),
        "average_precision": float(average_precision_score(labels, scores)) if both else 0.0,
        f"card_precision_at_{k}": card_precision_at_k(scored, k),
        "recall_at_budget": float((flagged & (labels == 1)).sum() / frauds),
        "calibration_error": expected_calibration_error(labels, scores),
        "holdout_frauds": float(labels.sum()),
        "holdout_payments": float(len(labels)),
    }


def daily_card_precision_at_k(
    scored: pd.DataFrame, k: int, card_column: str = "card_id"
) -> pd.DataFrame:
    """Card precision@k per day as the Fraud Detection Handbook defines it for a test period.

    Each day investigators check the k cards (customers when no card is known) with the day's
    highest score; cards already caught on an earlier day are blocked, so they leave the ranking.
    The day's precision is the caught cards over k, as in the handbook (a day with fewer than k
    cards cannot reach 1). ``scored``: occurred_at, customer_id, card, label (0/1) and score.
    """
    card = scored[card_column].fillna(scored["customer_id"]).astype(str)
    per_card = (
        pd.DataFrame(
            {
                "day": pd.to_datetime(scored["occurred_at"], utc=True).dt.floor("D").to_numpy(),
                "card": card.to_numpy(),
                "score": scored["score"].to_numpy(dtype="float64"),
                "fraud": scored["label"].astype(int).to_numpy(),
            }
        )
        .groupby(["day", "card"])
        .agg(score=("score", "max"), fraud=("fraud", "max"))
        .reset_index()
    )
    caught: set[str] = set()
    days = []
    for day, cards in per_card.groupby("day", sort=True):
        checked = cards[~cards["card"].isin(caught)].nlargest(k, "score")
        found = set(checked.loc[checked["fraud"] == 1, "card"])
        caught |= found
        days.append(
            {
                "day": day,
                "cards_checked": len(checked),
                "caught": len(found),
                "precision": len(found) / k,
            }
        )
    return pd.DataFrame(days, columns=["day", "cards_checked", "caught", "precision"])


def contribution_summary(contributions: pd.DataFrame, code_of: dict[str, str]) -> pd.DataFrame:
    """Mean absolute and mean contribution per feature, with its reason code, largest first."""
    summary = pd.DataFrame(
        {
            "feature": contributions.columns,
            "reason_code": [code_of[name] for name in contributions.columns],
            "mean_abs_contribution": contributions.abs().mean().to_numpy(),
            "mean_contribution": contributions.mean().to_numpy(),
        }
    )
    return summary.sort_values("mean_abs_contribution", ascending=False).reset_index(drop=True)


def write_curves(scored: pd.DataFrame, directory: Path) -> list[Path]:
    """PR curve and calibration curve as PNG files; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = scored["label"].astype(int).to_numpy()
    scores = scored["score"].to_numpy(dtype="float64")
    directory.mkdir(parents=True, exist_ok=True)
    precision, recall, _ = precision_recall_curve(labels, scores)
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot(recall, precision)
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    pr_path = directory / "pr_curve.png"
    figure.savefig(pr_path, dpi=100, bbox_inches="tight")
    plt.close(figure)

    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    table = pd.DataFrame({"bin": bins, "score": scores, "label": labels}).groupby("bin").mean()
    figure, axes = plt.subplots(figsize=(5, 4))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.plot(table["score"], table["label"], marker="o")
    axes.set(xlabel="mean score", ylabel="fraud rate", title="Calibration (holdout)")
    calibration_path = directory / "calibration_curve.png"
    figure.savefig(calibration_path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return [pr_path, calibration_path]


SHAP_MAX_ROWS = 5_000


def write_shap_summary(contributions: pd.DataFrame, values: pd.DataFrame, directory: Path) -> Path:
    """A SHAP beeswarm of the validation window: each feature's TreeSHAP value per payment.

    ``contributions``: XGBoost's log-odds contributions (one column per feature); ``values``: the
    same payments' feature values, coloured where numeric (a category shows grey). At most
    ``SHAP_MAX_ROWS`` payments, sampled, so the plot stays quick and readable.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    rows = contributions.reset_index(drop=True)
    data = values.reset_index(drop=True)[list(rows.columns)]
    if len(rows) > SHAP_MAX_ROWS:
        keep = rows.sample(n=SHAP_MAX_ROWS, random_state=0).index
        rows, data = rows.loc[keep], data.loc[keep]
    numeric = data.apply(lambda column: pd.to_numeric(column, errors="coerce")).astype("float64")
    explanation = shap.Explanation(
        values=rows.to_numpy(dtype="float64"),
        data=numeric.to_numpy(),
        feature_names=list(rows.columns),
    )
    directory.mkdir(parents=True, exist_ok=True)
    shap.plots.beeswarm(explanation, max_display=15, show=False)
    figure = plt.gcf()
    figure.suptitle("SHAP values (validation window, log-odds)")
    path = directory / "shap_summary.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def after_known_terminal_fraud(transactions: pd.DataFrame) -> pd.Series:
    """Per payment: was a fraud at its terminal already known (labelled) when it happened?

    What any terminal feature can see at most: a compromised terminal's payments look like
    genuine ones, so only frauds already known at the terminal can give them away.
    """
    frauds = transactions[transactions["label"] == 1]
    first_known = frauds.groupby("terminal_id")["label_available_at"].min()
    known = transactions["terminal_id"].map(first_known)
    return pd.Series(
        (known <= transactions["occurred_at"]).fillna(False).to_numpy(dtype=bool),
        index=transactions.index,
    )
