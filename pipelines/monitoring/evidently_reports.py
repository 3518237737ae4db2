"""The one adapter around Evidently 0.7: run the drift metrics, save HTML and JSON, read scores.

Evidently (and its scientific stack) is imported inside the functions: it takes seconds to load,
and ``riskctl --help`` must not pay for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.monitoring.drift import (
    EMBEDDING_AUC_THRESHOLD,
    EMBEDDING_FEATURE,
    PSI_THRESHOLD,
    FeatureDrift,
    FeatureFrames,
)

REPORT_NAME = "drift_report"


def drift_report(
    frames: FeatureFrames,
    embeddings: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[list[FeatureDrift], Any]:
    """One Evidently report: PSI per structured feature and, given vectors (reference, current),
    a domain-classifier test on the embeddings. Returns the scores and the snapshot."""
    from evidently import DataDefinition, Report
    from evidently.metrics import EmbeddingsDrift, ValueDrift
    from evidently.metrics.embeddings import ModelDriftMethod

    columns = [*frames.numerical, *frames.categorical]
    metrics: list[Any] = [
        ValueDrift(column=c, method="psi", threshold=PSI_THRESHOLD) for c in columns
    ]
    reference, current = frames.reference, frames.current
    embedding_columns: list[str] = []
    if embeddings is not None:
        embedding_columns = list(embeddings[0].columns)
        # Texts and vectors are different samples: the report rows need not line up.
        reference = pd.concat([reference, embeddings[0]], axis=1)
        current = pd.concat([current, embeddings[1]], axis=1)
        method = ModelDriftMethod(threshold=EMBEDDING_AUC_THRESHOLD)
        metrics.append(EmbeddingsDrift(embeddings_name=EMBEDDING_FEATURE, drift_method=method))
    definition = DataDefinition(
        numerical_columns=[*frames.numerical, *embedding_columns],
        categorical_columns=list(frames.categorical),
        embeddings={EMBEDDING_FEATURE: embedding_columns} if embedding_columns else None,
    )
    snapshot = Report(metrics).run(
        current_data=_dataset(current, definition),
        reference_data=_dataset(reference, definition),
    )
    scores = _values(snapshot)
    results = [FeatureDrift(c, "psi", scores[i], PSI_THRESHOLD) for i, c in enumerate(columns)]
    if embeddings is not None:
        results.append(
            FeatureDrift(
                EMBEDDING_FEATURE, "domain_classifier_auc", scores[-1], EMBEDDING_AUC_THRESHOLD
            )
        )
    return results, snapshot


def save_snapshot(snapshot: Any, folder: Path, name: str = REPORT_NAME) -> list[Path]:
    """Write ``<name>.html`` (for people) and ``<name>.json`` (for machines) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    html, json_path = folder / f"{name}.html", folder / f"{name}.json"
    snapshot.save_html(str(html))
    snapshot.save_json(str(json_path))
    return [html, json_path]


def _dataset(frame: pd.DataFrame, definition: Any) -> Any:
    from evidently import Dataset

    return Dataset.from_pandas(frame, data_definition=definition)


def _values(snapshot: Any) -> list[float]:
    """Metric values in report order; a score Evidently could not compute stays NaN."""
    values = []
    for metric in snapshot.dict()["metrics"]:
        value = metric["value"]
        values.append(float(value) if isinstance(value, int | float) else math.nan)
    return values
