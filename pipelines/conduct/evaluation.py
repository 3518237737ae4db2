"""K-fold evaluation of the text classifier on any labelled text table.

Embeddings are computed once by the caller and sliced per fold, so k folds cost one embedding
pass plus k cheap linear fits. Metrics are computed on the pooled out-of-fold predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, f1_score
from sklearn.model_selection import StratifiedKFold

from decisioning.conduct.classifier import ClassifierConfig, TextClassifier, check_labels


@dataclass(frozen=True)
class EvaluationReport:
    accuracy: float
    macro_f1: float
    folds: int
    rows: int
    fold_macro_f1: tuple[float, ...]
    per_class: dict[str, dict[str, float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "folds": self.folds,
            "rows": self.rows,
            "fold_macro_f1": list(self.fold_macro_f1),
            "per_class": self.per_class,
        }


def classification_metrics(truth: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """The two headline metrics used everywhere (evaluate, training holdout, promotion gate)."""
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }


def cross_validate(
    texts: Sequence[str],
    labels: Sequence[str],
    embeddings: np.ndarray,
    folds: int = 5,
    config: ClassifierConfig | None = None,
) -> EvaluationReport:
    """Stratified k-fold: every row is predicted once by a model that did not see it."""
    check_labels(labels, folds)
    texts_array, labels_array = np.asarray(texts, dtype=object), np.asarray(labels, dtype=object)
    predicted = np.empty(len(labels_array), dtype=object)
    fold_scores = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    for train, test in splitter.split(texts_array, labels_array):
        classifier = TextClassifier(config).fit(
            list(texts_array[train]), embeddings[train], list(labels_array[train])
        )
        predicted[test] = classifier.predict(list(texts_array[test]), embeddings[test])
        fold_scores.append(
            classification_metrics(list(labels_array[test]), list(predicted[test]))["macro_f1"]
        )
    metrics = classification_metrics(list(labels_array), list(predicted))
    report = classification_report(labels_array, predicted, output_dict=True, zero_division=0)
    per_class = {
        str(label): {name: float(value) for name, value in scores.items()}
        for label, scores in report.items()
        if label in set(labels_array)
    }
    return EvaluationReport(
        accuracy=metrics["accuracy"],
        macro_f1=metrics["macro_f1"],
        folds=folds,
        rows=len(labels_array),
        fold_macro_f1=tuple(fold_scores),
        per_class=per_class,
    )
