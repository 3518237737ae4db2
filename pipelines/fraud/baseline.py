"""The backtest's baseline: a logistic regression on the same features, fitted in the same run.

A score is only worth reading beside a simple model that had the same chance: the same
feature-service columns (encoded as the scorer encodes them, gaps filled with the training
medians, standardised) and the same training labels. Its alerts are the top alert-budget share
of the test window's payments by score, so its recall at the budget compares with the scorer's.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from decisioning.fraud.encoding import FeatureEncoder, fit_encoder

BASELINE_NAME = "logistic regression (median-imputed, standardised feature-service columns)"


def fit_baseline(
    history: pd.DataFrame, train: pd.DataFrame, features: list[str]
) -> tuple[FeatureEncoder, Pipeline]:
    """Encode as the scorer does (levels from ``history``), fit on ``train``'s labels."""
    encoder = fit_encoder(history, features)
    model = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(max_iter=2000),
    )
    model.fit(encoder.matrix(train), train["label"].astype(int).to_numpy())
    return encoder, model


def baseline_scores(
    fitted: tuple[FeatureEncoder, Pipeline], payments: pd.DataFrame, alert_budget: float
) -> pd.DataFrame:
    """transaction_id, score and action (``review`` for the top ``alert_budget`` share)."""
    encoder, model = fitted
    score = model.predict_proba(encoder.matrix(payments))[:, 1]
    alerts = math.ceil(alert_budget * len(score))
    alerted = np.zeros(len(score), dtype=bool)
    alerted[np.argsort(-score, kind="stable")[:alerts]] = True
    return pd.DataFrame(
        {
            "transaction_id": payments["transaction_id"].astype(str).to_numpy(),
            "score": score,
            "action": np.where(alerted, "review", "approve"),
        }
    )
