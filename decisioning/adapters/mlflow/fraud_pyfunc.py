"""The fraud scorer as an MLflow pyfunc: plain ``mlflow.pyfunc.load_model`` scores a feature frame.

Input: the values of the feature service the version was trained on (its ``feature_service`` tag),
one row per payment, in the service's columns (``segment`` raw, as a string). Output: ``score``,
``action``, ``reason_codes`` (JSON list) and one ``contribution.<feature>`` column per feature
plus the anomaly score.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from decisioning.fraud.model import FraudScorer

MODEL_ARTIFACT = "fraud_scorer"
CONTRIBUTION_PREFIX = "contribution."


def save_fraud_scorer(scorer: FraudScorer, path: Path) -> None:
    with open(path, "wb") as handle:
        pickle.dump(scorer, handle)


def load_fraud_scorer(path: Path) -> FraudScorer:
    with open(path, "rb") as handle:
        scorer: FraudScorer = pickle.load(handle)  # our own artifact, from save_fraud_scorer
    return scorer


def decisions_frame(scorer: FraudScorer, features: pd.DataFrame) -> pd.DataFrame:
    """What the pyfunc returns, also what the project's own code compares it with."""
    scored = scorer.score(features)
    decided = scorer.decide(features, scored)
    contributions = scored.contributions.add_prefix(CONTRIBUTION_PREFIX)
    reasons = [json.dumps([r.model_dump() for r in row]) for row in decided["reason_codes"]]
    out = decided.assign(reason_codes=reasons)
    return pd.concat([out, contributions], axis=1)


class FraudPyfunc(PythonModel):
    """Loads the pickled :class:`FraudScorer` and scores frames of feature values."""

    def load_context(self, context: Any) -> None:
        self._scorer = load_fraud_scorer(Path(context.artifacts[MODEL_ARTIFACT]))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return decisions_frame(self._scorer, model_input.reset_index(drop=True))
