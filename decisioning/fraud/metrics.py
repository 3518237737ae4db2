"""Pure fraud metrics shared by training (pipelines) and the promotion gates (registry).

Card precision@k follows the fraud-detection handbook: each day, investigators check the k cards
with the highest score; the share of those cards with a fraud is what their day was worth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CALIBRATION_BINS = 10


def card_precision_at_k(
    scored: pd.DataFrame, k: int, card_column: str = "card_id", score_column: str = "score"
) -> float:
    """Mean over days of the fraud share among the day's k highest-scoring cards.

    ``scored`` needs occurred_at, label, the score and the card (customer when no card is known).
    """
    card = scored[card_column].fillna(scored["customer_id"]).astype(str)
    per_card = (
        pd.DataFrame(
            {
                "day": pd.to_datetime(scored["occurred_at"], utc=True).dt.floor("D"),
                "card": card,
                "score": scored[score_column].to_numpy(),
                "fraud": scored["label"].astype(int).to_numpy(),
            }
        )
        .groupby(["day", "card"], sort=False)
        .agg(score=("score", "max"), fraud=("fraud", "max"))
        .reset_index()
    )
    top = per_card.sort_values(["day", "score"], ascending=[True, False]).groupby("day").head(k)
    return float(top.groupby("day")["fraud"].mean().mean())


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray) -> float:
    """Weighted gap between mean score and fraud rate over equal-width score bins."""
    bins = np.minimum((scores * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    gap = 0.0
    for b in np.unique(bins):
        inside = bins == b
        gap += inside.mean() * abs(scores[inside].mean() - labels[inside].mean())
    return float(gap)
