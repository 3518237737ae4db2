"""Registered model names and aliases: the strings every other package refers to.

The names themselves are defined once in ``decisioning.core.names`` (the layer every other
imports); this module re-exports them for the registry's callers and adds the registry's own.
"""

from decisioning.core.names import (
    CHALLENGER,
    CHAMPION,
    CONDUCT_CLASSIFIER,
    FRAUD_DETECTOR,
    MODEL_NAMES,
)

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "CHAMPION_HISTORY_TAG",
    "CONDUCT_CLASSIFIER",
    "FRAUD_DETECTOR",
    "HOLDOUT_ARTIFACT",
    "MODEL_NAMES",
    "model_uri",
]

HOLDOUT_ARTIFACT = "holdout.parquet"
CHAMPION_HISTORY_TAG = "champion_history"


def model_uri(name: str, alias: str = CHAMPION) -> str:
    """What plain MLflow loads: ``models:/NAME@ALIAS``."""
    return f"models:/{name}@{alias}"
