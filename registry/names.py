"""Registered model names and aliases: the strings every other package refers to."""

FRAUD_DETECTOR = "fraud-detector"
CONDUCT_CLASSIFIER = "conduct-classifier"
MODEL_NAMES = (FRAUD_DETECTOR, CONDUCT_CLASSIFIER)

CHAMPION = "champion"
CHALLENGER = "challenger"

HOLDOUT_ARTIFACT = "holdout.parquet"
CHAMPION_HISTORY_TAG = "champion_history"


def model_uri(name: str, alias: str = CHAMPION) -> str:
    """What plain MLflow loads: ``models:/NAME@ALIAS``."""
    return f"models:/{name}@{alias}"
