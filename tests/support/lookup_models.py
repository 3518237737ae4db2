"""Tiny registrable models for registry tests: each answers from a fixed table.

A test decides exactly how good a version is (how many holdout rows it gets wrong), so gates pass
or fail on purpose. Shared by the registry unit tests (SQLite), the bento model store's unit tests,
the PostgreSQL integration test and the bento build test.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow import MlflowClient

from registry.models import ModelPackage, register_challenger
from registry.tracking import ensure_experiment

HOLDOUT = pd.DataFrame(
    {"text": ["a", "b", "c", "d", "e", "f"], "label": ["x", "y", "x", "y", "x", "y"]}
)


class LookupModel(mlflow.pyfunc.PythonModel):
    """Answers from a fixed table, so each test controls exactly how good a version is."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame({"category": [self.answers.get(t, "x") for t in model_input["text"]]})


def lookup_package(wrong: int) -> ModelPackage:
    """A model that gets the first ``wrong`` holdout rows wrong."""
    flip = {"x": "y", "y": "x"}
    answers = {
        text: flip[label] if i < wrong else label
        for i, (text, label) in enumerate(zip(HOLDOUT.text, HOLDOUT.label, strict=True))
    }
    example = HOLDOUT[["text"]].head(2)
    return ModelPackage(
        python_model=LookupModel(answers),
        artifacts={},
        input_example=example,
        output_example=LookupModel(answers).predict(None, example),
        holdout=HOLDOUT,
        metrics={"macro_f1": 1.0 - wrong / len(HOLDOUT)},
        tags={"training_data_hash": f"sha256:{wrong}"},
        pip_requirements=("mlflow", "pandas"),
    )


def register_lookup_model(client: MlflowClient, name: str, artifact_root: str, wrong: int) -> str:
    """Register a lookup model as ``name``'s new challenger; returns its version."""
    experiment = ensure_experiment(client, name, artifact_root)
    return register_challenger(client, name, experiment, lookup_package(wrong)).version
