"""What a fraud training run records beside its model: the settings, the data, the confusion matrix.

A reader of the MLflow run can then answer "trained with what, on which rows" without the code:
every tunable of ``configs/fraud.yaml`` as a parameter, the training and validation rows as
MLflow datasets (each with its content digest and the file they came from), and the confusion
matrix of the scorer's actions on the validation window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from decisioning.fraud.config import FraudConfig
from registry.tracking import log_datasets


def confusion_at_actions(labels: np.ndarray, flagged: np.ndarray) -> dict[str, int]:
    """Counts of alerted (review or decline) and approved payments by their label."""
    fraud = labels.astype(int) == 1
    return {
        "alerted_fraud": int((flagged & fraud).sum()),
        "alerted_genuine": int((flagged & ~fraud).sum()),
        "approved_fraud": int((~flagged & fraud).sum()),
        "approved_genuine": int((~flagged & ~fraud).sum()),
    }


SCENARIO_COLUMN = "fraud_scenario"


def scenario_recall(
    labelled: pd.DataFrame, flagged: np.ndarray, transactions: pd.DataFrame
) -> pd.DataFrame | None:
    """Per simulated fraud scenario: the validation window's frauds and the share alerted.

    ``labelled``: the labelled validation payments, in the order of ``flagged``; the scenario
    comes from ``transactions`` by transaction_id. None when the file names no scenarios.
    """
    if SCENARIO_COLUMN not in transactions.columns:
        return None
    scenario = labelled["transaction_id"].map(
        transactions.set_index("transaction_id")[SCENARIO_COLUMN]
    )
    frauds = pd.DataFrame({"scenario": scenario.to_numpy(), "alerted": flagged})[
        labelled["label"].astype(int).to_numpy() == 1
    ]
    table = (
        frauds.groupby("scenario", dropna=False)["alerted"]
        .agg(frauds="size", alerted="sum")
        .reset_index()
    )
    total = pd.DataFrame(
        {"scenario": ["all"], "frauds": [len(frauds)], "alerted": [int(frauds["alerted"].sum())]}
    )
    table = pd.concat([table, total], ignore_index=True)
    return table.assign(recall=table["alerted"] / table["frauds"].clip(lower=1))


def run_params(config: FraudConfig, source: Path) -> dict[str, str]:
    """Every tunable of the fraud config, flattened (``xgboost.max_depth``), and the source file."""
    return {**_flatten(config.model_dump(mode="json")), "transactions_file": str(source)}


def log_run_details(
    run_id: str,
    config: FraudConfig,
    source: Path,
    training: pd.DataFrame,
    validation: pd.DataFrame,
    confusion: dict[str, int],
) -> None:
    """Add params, the two datasets (with digests) and the confusion matrix to a finished run.

    Call inside the registry's MLflow session (``registry.tracking.mlflow_session``).
    """
    import mlflow

    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(run_params(config, source))
        log_datasets({"training": training, "validation": validation}, source, "fraud")
        mlflow.log_dict(confusion, "confusion_matrix.json")


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{name}.")
        else:
            flat[name] = str(value)[:500]
    return flat
