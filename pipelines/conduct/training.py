"""Training the conduct classifier on a labelled text table, with a stable holdout for gating.

The holdout is chosen by a hash of each message id, not by a random split: retraining on a larger
table keeps the same messages out of training, so a champion trained earlier has never seen the
challenger's holdout and the promotion gate compares the two fairly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from decisioning.conduct.assessment import ConductAssessor, ConductModel
from decisioning.conduct.classifier import ClassifierConfig, TextClassifier, check_labels
from decisioning.conduct.embeddings import Embedder
from decisioning.conduct.errors import TrainingDataError, UnknownCategoryError
from decisioning.conduct.rules import RuleSet
from decisioning.conduct.taxonomy import Taxonomy
from pipelines.conduct.evaluation import classification_metrics

HOLDOUT_BUCKETS = 5  # one bucket in five: a 20 % holdout


@dataclass(frozen=True)
class TrainedConductModel:
    model: ConductModel
    holdout: pd.DataFrame
    """Columns ``text`` and ``label``: the gate re-scores champion and challenger on it."""
    metrics: dict[str, float]
    training_data_hash: str
    train_rows: int
    training_rows: pd.DataFrame
    """Columns ``message_id``, ``text`` and ``label``: the rows the classifier was fitted on."""
    scored_holdout: pd.DataFrame
    """Per holdout message: ``message_id``, ``label``, the ``predicted`` category as served (rules
    and model), and the classifier's own ``top_class`` with its probability, ``confidence``."""


def in_holdout(message_ids: Sequence[str]) -> np.ndarray:
    """True for the ids whose SHA-256 falls in the holdout bucket: stable across runs and tables."""
    return np.array(
        [
            int(hashlib.sha256(str(m).encode()).hexdigest(), 16) % HOLDOUT_BUCKETS == 0
            for m in message_ids
        ]
    )


def table_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """Content hash of the training table, recorded on the model version."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{label}\x1f{text}\x1e".encode())
    return "sha256:" + digest.hexdigest()[:16]


def check_conduct_labels(labels: Sequence[str], taxonomy: Taxonomy) -> None:
    allowed = {*taxonomy.codes, taxonomy.neutral}
    unknown = sorted(set(labels) - allowed)
    if unknown:
        raise UnknownCategoryError(
            f"labels not in the taxonomy: {', '.join(unknown[:5])}; neutral is {taxonomy.neutral!r}"
        )


def train_conduct_model(
    table: pd.DataFrame,
    taxonomy: Taxonomy,
    rules: RuleSet,
    embedder: Embedder,
    on_progress: Callable[[int], None] | None = None,
    config: ClassifierConfig | None = None,
) -> TrainedConductModel:
    """Fit on the non-holdout rows of ``table`` (message_id, text, label); score the rest."""
    for column in ("message_id", "text", "label"):
        if column not in table.columns:
            raise TrainingDataError(f"training table has no {column!r} column")
    table = table.dropna(subset=["text", "label"])
    texts, labels = table["text"].astype(str).tolist(), table["label"].astype(str).tolist()
    message_ids = table["message_id"].astype(str).to_numpy(dtype=object)
    check_conduct_labels(labels, taxonomy)
    holdout = in_holdout(message_ids.tolist())
    if holdout.all() or not holdout.any():
        raise TrainingDataError("training table too small to hold out 20 % of its messages")
    embeddings = embedder.embed(texts, on_progress)
    train_texts = [t for t, h in zip(texts, holdout, strict=True) if not h]
    train_labels = [label for label, h in zip(labels, holdout, strict=True) if not h]
    check_labels(train_labels, 2)
    classifier = TextClassifier(config).fit(train_texts, embeddings[~holdout], train_labels)
    holdout_frame = pd.DataFrame(
        {"text": np.asarray(texts, dtype=object)[holdout], "label": np.asarray(labels)[holdout]}
    )
    model = ConductModel(classifier=classifier, rules=rules, taxonomy=taxonomy)
    # measured as served (rules + model), the same way the promotion gate scores the pyfunc
    assessments = ConductAssessor(model, embedder).assess_many(holdout_frame["text"].tolist())
    predicted = [assessment.category for assessment in assessments]
    # The classifier's top class, not the served category: a rule's pick carries no probability
    # of its own, and these are the probabilities temperature scaling calibrates.
    probabilities = classifier.predict_proba(holdout_frame["text"].tolist(), embeddings[holdout])
    scored_holdout = pd.DataFrame(
        {
            "message_id": message_ids[holdout],
            "label": holdout_frame["label"].to_numpy(),
            "predicted": predicted,
            "top_class": np.asarray(classifier.classes, dtype=object)[probabilities.argmax(axis=1)],
            "confidence": probabilities.max(axis=1),
        }
    )
    return TrainedConductModel(
        model=model,
        holdout=holdout_frame,
        metrics=classification_metrics(holdout_frame["label"].tolist(), predicted),
        training_data_hash=table_hash(texts, labels),
        train_rows=len(train_texts),
        training_rows=pd.DataFrame(
            {"message_id": message_ids[~holdout], "text": train_texts, "label": train_labels}
        ),
        scored_holdout=scored_holdout,
    )
