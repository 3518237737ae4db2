"""Promotion gates from ``configs/gates.yaml``, evaluated on the candidate's own holdout.

``metric_vs_champion`` loads both versions through plain MLflow and scores the same holdout
rows, so the comparison cannot be skewed by the champion having been measured on other data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from registry.errors import GatesConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["metric_vs_champion", "metric_at_least"]
    metric: Literal["accuracy", "macro_f1", "average_precision"]
    prediction_column: str
    tolerance: float = Field(default=0.0, ge=0)
    minimum: float | None = None


class HoldoutSpec(_Strict):
    artifact: str
    label_column: str


class ModelGates(_Strict):
    holdout: HoldoutSpec
    gates: tuple[GateSpec, ...] = Field(min_length=1)


class GatesFile(_Strict):
    models: dict[str, ModelGates]


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str

    def as_tag(self) -> str:
        return f"{'passed' if self.passed else 'failed'}: {self.detail}"


Scorer = Callable[[pd.DataFrame], pd.DataFrame]
"""Predictions of one model version for the holdout's input columns."""


def load_gates(path: Path, name: str) -> ModelGates:
    """The gates of one model; a model with no section cannot be promoted."""
    try:
        gates = GatesFile.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError as exc:
        raise GatesConfigError(f"{path} is missing") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise GatesConfigError(f"{path} is malformed: {str(exc).splitlines()[0]}") from exc
    if name not in gates.models:
        raise GatesConfigError(f"{path} has no gates for {name}")
    return gates.models[name]


def metric_value(metric: str, truth: pd.Series, predicted: pd.Series) -> float:
    if metric == "accuracy":
        return float(accuracy_score(truth.astype(str), predicted.astype(str)))
    if metric == "macro_f1":
        return float(
            f1_score(truth.astype(str), predicted.astype(str), average="macro", zero_division=0)
        )
    return float(average_precision_score(np.asarray(truth, dtype=int), np.asarray(predicted)))


def evaluate_gates(
    spec: ModelGates, holdout: pd.DataFrame, candidate: Scorer, champion: Scorer | None
) -> list[GateResult]:
    """Every gate's verdict; each model scores the holdout once, whatever the number of gates."""
    truth = holdout[spec.holdout.label_column]
    inputs = holdout.drop(columns=[spec.holdout.label_column])
    candidate_out = candidate(inputs)
    champion_out = champion(inputs) if champion is not None else None
    results = []
    for gate in spec.gates:
        value = metric_value(gate.metric, truth, candidate_out[gate.prediction_column])
        if gate.kind == "metric_at_least":
            minimum = gate.minimum if gate.minimum is not None else 0.0
            passed = value >= minimum
            detail = f"{gate.metric} {value:.4f} (minimum {minimum:.4f})"
        elif champion_out is None:
            passed, detail = True, f"{gate.metric} {value:.4f}; no champion to compare with"
        else:
            baseline = metric_value(gate.metric, truth, champion_out[gate.prediction_column])
            passed = value >= baseline - gate.tolerance
            detail = (
                f"{gate.metric} {value:.4f} vs champion {baseline:.4f} "
                f"on the same {len(holdout)} holdout rows (tolerance {gate.tolerance})"
            )
        results.append(GateResult(gate.name, passed, detail))
    return results
