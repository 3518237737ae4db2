"""What a conduct training run records beside its model: the settings, the data, per-class quality.

A reader of the MLflow run can then answer "trained with what, on which messages, how good for
each category" without the code: every tunable of the training as a parameter, the training and
holdout messages as MLflow datasets (each with its content digest and the file it came from), the
per-class report and confusion matrix of the categories as served (rules and model) on the
holdout, and a reliability diagram of the classifier's top-class confidence with its expected
calibration error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from decisioning.conduct.embeddings import MODEL_ID
from pipelines.conduct.plots import write_confusion_matrix, write_reliability_diagram
from pipelines.conduct.training import HOLDOUT_BUCKETS, TrainedConductModel
from registry.tracking import log_datasets

CALIBRATION_BINS = 10


def run_params(
    trained: TrainedConductModel, source: Path, text_column: str, label_column: str
) -> dict[str, str]:
    """Every tunable the model was trained with (``classifier.svm_c``, ...) and its data file."""
    classifier = asdict(trained.model.classifier.config)
    return {
        **{f"classifier.{name}": str(value) for name, value in classifier.items()},
        "holdout_share": str(1 / HOLDOUT_BUCKETS),
        "rule_hit_score": str(trained.model.rule_hit_score),
        "embedding_model": MODEL_ID,
        "calibration_bins": str(CALIBRATION_BINS),
        "texts_file": str(source),
        "text_column": text_column,
        "label_column": label_column,
    }


def per_class_report(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every category found in either column."""
    labels = sorted({*truth, *predicted})
    scores = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    return {
        label: {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": float(support),
        }
        for label, precision, recall, f1, support in zip(labels, *scores, strict=True)
    }


def confusion_table(truth: Sequence[str], predicted: Sequence[str]) -> pd.DataFrame:
    """Message counts with the true category as the row and the predicted one as the column."""
    labels = sorted({*truth, *predicted})
    return pd.DataFrame(
        confusion_matrix(truth, predicted, labels=labels),
        index=pd.Index(labels, name="label"),
        columns=pd.Index(labels, name="predicted"),
    )


def reliability_table(correct: np.ndarray, confidence: np.ndarray) -> pd.DataFrame:
    """Per equal-width confidence bin holding messages: their count, mean confidence, accuracy."""
    bins = np.minimum((confidence * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    table = (
        pd.DataFrame({"bin": bins, "confidence": confidence, "correct": correct.astype(float)})
        .groupby("bin")
        .agg(
            messages=("correct", "size"),
            confidence=("confidence", "mean"),
            accuracy=("correct", "mean"),
        )
        .reset_index()
    )
    table.insert(1, "bin_low", table.pop("bin") / CALIBRATION_BINS)
    return table


def expected_calibration_error(reliability: pd.DataFrame) -> float:
    """The gap between confidence and accuracy, averaged over bins weighted by their messages."""
    weights = reliability["messages"] / reliability["messages"].sum()
    return float((weights * (reliability["accuracy"] - reliability["confidence"]).abs()).sum())


def log_run_details(
    run_id: str,
    trained: TrainedConductModel,
    source: Path,
    text_column: str,
    label_column: str,
) -> None:
    """Add params, the two datasets, the per-class report, the confusion matrix and calibration
    to a finished run. Call inside the registry's MLflow session (``registry.tracking``)."""
    import mlflow

    scored = trained.scored_holdout
    truth, predicted = scored["label"].tolist(), scored["predicted"].tolist()
    report = per_class_report(truth, predicted)
    confusion = confusion_table(truth, predicted)
    reliability = reliability_table(
        (scored["top_class"] == scored["label"]).to_numpy(), scored["confidence"].to_numpy()
    )
    calibration_error = expected_calibration_error(reliability)
    holdout = pd.DataFrame(
        {"message_id": scored["message_id"], "text": trained.holdout["text"], "label": truth}
    )
    with tempfile.TemporaryDirectory() as scratch, mlflow.start_run(run_id=run_id):
        mlflow.log_params(run_params(trained, source, text_column, label_column))
        # The texts are customers' personal data: MLflow keeps no rows (the unit test checks
        # no text reaches the run).
        log_datasets({"training": trained.training_rows, "holdout": holdout}, source, "conduct")
        mlflow.log_dict(report, "per_class_report.json")
        mlflow.log_metrics(
            {
                **{
                    f"class.{label}.{name}": value
                    for label, scores in report.items()
                    for name, value in scores.items()
                },
                "calibration_error": calibration_error,
            }
        )
        mlflow.log_dict(
            {
                "labels": confusion.index.tolist(),
                "rows": "label",
                "columns": "predicted",
                "matrix": confusion.to_numpy().tolist(),
            },
            "confusion_matrix.json",
        )
        mlflow.log_dict(
            {
                "confidence": "the classifier's top-class probability",
                "expected_calibration_error": calibration_error,
                "bins": reliability.to_dict(orient="records"),
            },
            "calibration.json",
        )
        folder = Path(scratch)
        mlflow.log_artifact(str(write_confusion_matrix(confusion, folder)))
        mlflow.log_artifact(str(write_reliability_diagram(reliability, calibration_error, folder)))
