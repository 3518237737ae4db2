"""Promotion gates from ``configs/gates.yaml``, evaluated on the candidate's own holdout.

``metric_vs_champion`` loads both versions through plain MLflow and scores the same holdout
rows, so the comparison cannot be skewed by the champion having been measured on other data.
``tag_passed`` reads a check that ran at training time (a GX suite, Evidently drift) from the
candidate's version tags, so the registry needs nothing of the pipelines that ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sklearn.metrics import accuracy_score, average_precision_score, f1_score

from decisioning.fraud.metrics import card_precision_at_k, expected_calibration_error
from registry.errors import GatesConfigError

Metric = Literal[
    "accuracy", "macro_f1", "average_precision", "card_precision_at_100", "calibration_error"
]
LOWER_IS_BETTER = frozenset({"calibration_error"})


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GateSpec(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["metric_vs_champion", "metric_at_least", "metric_at_most", "tag_passed"]
    metric: Metric | None = None
    prediction_column: str | None = None
    tolerance: float = Field(default=0.0, ge=0)
    minimum: float | None = None
    maximum: float | None = None
    tag: str | None = None

    @model_validator(mode="after")
    def _fields_of_kind(self) -> GateSpec:
        if self.kind == "tag_passed":
            if self.tag is None or self.metric is not None:
                raise ValueError(f"gate {self.name}: tag_passed takes a tag and no metric")
            return self
        if self.metric is None or self.prediction_column is None:
            raise ValueError(f"gate {self.name}: {self.kind} needs metric and prediction_column")
        lower = self.metric in LOWER_IS_BETTER
        if self.kind == "metric_at_most" and (self.maximum is None or not lower):
            raise ValueError(
                f"gate {self.name}: metric_at_most needs maximum and a lower-is-better metric"
            )
        if self.kind in ("metric_at_least", "metric_vs_champion") and lower:
            raise ValueError(
                f"gate {self.name}: {self.metric} is lower-is-better; use metric_at_most"
            )
        if self.kind == "metric_at_least" and self.minimum is None:
            raise ValueError(f"gate {self.name}: metric_at_least needs minimum")
        return self


class HoldoutSpec(_Strict):
    artifact: str
    label_column: str
    # kept for metrics (card and day for card precision@k), never given to a model
    context_columns: tuple[str, ...] = ()


class ModelGates(_Strict):
    holdout: HoldoutSpec
    gates: tuple[GateSpec, ...] = Field(min_length=1)


class GatesFile(_Strict):
    models: dict[str, ModelGates]
    prompts: dict[str, object] = Field(default_factory=dict)  # registry.prompt_evaluation's


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


def metric_value(metric: str, holdout: pd.DataFrame, label: str, predicted: pd.Series) -> float:
    """One metric of ``predicted`` against the holdout's labels (and its context columns)."""
    truth = holdout[label]
    if metric == "accuracy":
        return float(accuracy_score(truth.astype(str), predicted.astype(str)))
    if metric == "macro_f1":
        return float(
            f1_score(truth.astype(str), predicted.astype(str), average="macro", zero_division=0)
        )
    labels, scores = np.asarray(truth, dtype=int), np.asarray(predicted, dtype="float64")
    if metric == "card_precision_at_100":
        scored = holdout.assign(label=labels, score=scores)
        return card_precision_at_k(scored, 100)
    if metric == "calibration_error":
        return expected_calibration_error(labels, scores)
    return float(average_precision_score(labels, scores))


def tag_verdict(gate: GateSpec, tags: Mapping[str, str]) -> GateResult:
    """A check recorded at training time: passes only on a tag that says ``passed``."""
    value = tags.get(str(gate.tag))
    if value is None:
        return GateResult(gate.name, False, f"version tag {gate.tag} is missing")
    return GateResult(gate.name, value.startswith("passed"), f"{gate.tag} = {value}")


def evaluate_gates(
    spec: ModelGates,
    holdout: pd.DataFrame,
    candidate: Scorer,
    champion: Scorer | None,
    tags: Mapping[str, str],
) -> list[GateResult]:
    """Every gate's verdict; each model scores the holdout once, whatever the number of gates.

    ``tags``: the candidate version's tags, where training recorded its own checks.
    """
    label = spec.holdout.label_column
    inputs = holdout.drop(columns=[label, *spec.holdout.context_columns])
    candidate_out = candidate(inputs)
    champion_out = champion(inputs) if champion is not None else None
    results = []
    for gate in spec.gates:
        if gate.kind == "tag_passed":
            results.append(tag_verdict(gate, tags))
            continue
        metric, column = str(gate.metric), str(gate.prediction_column)
        value = metric_value(metric, holdout, label, candidate_out[column])
        if gate.kind == "metric_at_least":
            minimum = float(gate.minimum or 0.0)
            passed, detail = value >= minimum, f"{metric} {value:.4f} (minimum {minimum:.4f})"
        elif gate.kind == "metric_at_most":
            maximum = float(gate.maximum or 0.0)
            passed, detail = value <= maximum, f"{metric} {value:.4f} (maximum {maximum:.4f})"
        elif champion_out is None:
            passed, detail = True, f"{metric} {value:.4f}; no champion to compare with"
        else:
            baseline = metric_value(metric, holdout, label, champion_out[column])
            passed = value >= baseline - gate.tolerance
            detail = (
                f"{metric} {value:.4f} vs champion {baseline:.4f} "
                f"on the same {len(holdout)} holdout rows (tolerance {gate.tolerance})"
            )
        results.append(GateResult(gate.name, passed, detail))
    return results
