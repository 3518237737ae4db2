"""``configs/fraud.yaml`` as a frozen, strict model: every tunable of the fraud scorer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from decisioning.fraud.errors import FraudConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AnomalyConfig(_Strict):
    n_estimators: int = Field(default=100, ge=10)
    max_samples: int = Field(default=256, ge=16)
    seed: int = 7
    # False: XGBoost never reads the anomaly score. The forest is still fitted, so the scorer keeps
    # one shape for serving and reason codes; model selection turns this on and off.
    enabled: bool = True


class BoosterConfig(_Strict):
    max_depth: int = Field(default=4, ge=1, le=12)
    learning_rate: float = Field(default=0.1, gt=0, le=1)
    rounds: int = Field(default=200, ge=1)
    min_child_weight: float = Field(default=1.0, ge=0)
    subsample: float = Field(default=0.8, gt=0, le=1)
    nthread: int = Field(default=2, ge=1)
    seed: int = 7
    # Features whose increase may never lower the score (XGBoost monotone constraints): a
    # reviewer can then trust that more payments in a burst never look safer.
    monotone_increasing: tuple[str, ...] = ()


class SelectionCandidate(_Strict):
    """One setting tried by model selection: XGBoost values that differ from ``xgboost``, and
    whether the anomaly score feeds XGBoost. A field left out keeps the configured value."""

    name: str = Field(min_length=1)
    anomaly: bool = True
    max_depth: int | None = Field(default=None, ge=1, le=12)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    rounds: int | None = Field(default=None, ge=1)
    min_child_weight: float | None = Field(default=None, ge=0)

    def applied_to(self, config: FraudConfig) -> FraudConfig:
        """``config`` with this candidate's values in place of its own."""
        booster = self.model_dump(exclude={"name", "anomaly"}, exclude_none=True)
        return config.model_copy(
            update={
                "xgboost": config.xgboost.model_copy(update=booster),
                "anomaly": config.anomaly.model_copy(update={"enabled": self.anomaly}),
            }
        )


class SelectionConfig(_Strict):
    """Prequential model selection: each candidate is fitted on time-ordered folds before the
    validation window, each fold learning only the labels known at its own start, and the one
    with the best mean average precision is trained. Off (or one candidate): the configured
    values are trained as they are."""

    enabled: bool = True
    folds: int = Field(default=3, ge=1, le=5)
    # A fold counts only when its validation stretch holds this many known frauds: on fewer,
    # one payment moves average precision by a large step and the choice would be noise. Small
    # worlds (the test suite's) therefore train the configured values without a search.
    min_fold_frauds: int = Field(default=20, ge=1)
    candidates: tuple[SelectionCandidate, ...] = Field(default=(), max_length=6)

    @field_validator("candidates")
    @classmethod
    def _distinct_names(
        cls, candidates: tuple[SelectionCandidate, ...]
    ) -> tuple[SelectionCandidate, ...]:
        names = [candidate.name for candidate in candidates]
        if len(set(names)) != len(names):
            raise ValueError(f"candidate names repeat: {names}")
        return candidates


class ReviewRule(_Strict):
    """Review every payment whose ``feature`` is at least ``at_least``, whatever its score.

    ``code`` is the rule's reason code (source ``rule``) in ``configs/reason_codes.yaml``.
    """

    code: str
    feature: str
    at_least: float

    def matches(self, values: pd.DataFrame) -> np.ndarray:
        """Which rows the rule sends to review; a null value never matches."""
        column = pd.to_numeric(values[self.feature], errors="coerce").astype("float64")
        return (column >= self.at_least).fillna(False).to_numpy(dtype=bool)

    def matches_one(self, values: Mapping[str, Any]) -> bool:
        value = values.get(self.feature)
        try:
            return value is not None and float(value) >= self.at_least
        except (TypeError, ValueError):
            return False


class FraudConfig(_Strict):
    """Budget and precision targets for thresholds, the split, and both models' parameters."""

    alert_budget: float = Field(gt=0, lt=1)
    decline_precision: float = Field(gt=0, le=1)
    min_decline_alerts: int = Field(default=5, ge=1)
    validation_share: float = Field(default=0.3, gt=0, lt=1)
    training_days: int = Field(default=28, ge=1)
    label_delay: pd.Timedelta = pd.Timedelta(days=7)
    top_reasons: int = Field(default=3, ge=1)
    card_precision_k: int = Field(default=100, ge=1)
    anomaly: AnomalyConfig = AnomalyConfig()
    xgboost: BoosterConfig = BoosterConfig()
    selection: SelectionConfig = SelectionConfig()
    review_rules: tuple[ReviewRule, ...] = ()

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    @field_validator("label_delay", mode="before")
    @classmethod
    def _parse_delay(cls, value: object) -> pd.Timedelta:
        return parse_label_delay(str(value))


def parse_label_delay(text: str) -> pd.Timedelta:
    """``7d``, ``36h`` or ``90min`` as a non-negative duration; anything else is refused."""
    try:
        delay = pd.Timedelta(text)
    except ValueError as exc:
        raise FraudConfigError(f"label delay {text!r} is not a duration such as 7d or 36h") from exc
    if delay < pd.Timedelta(0):
        raise FraudConfigError(f"label delay {text!r} is negative")
    return delay


def load_fraud_config(path: Path) -> FraudConfig:
    """Read and check ``configs/fraud.yaml``; a bad file stops training with the reason."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        return FraudConfig.model_validate(raw)
    except FileNotFoundError as exc:
        raise FraudConfigError(f"{path} is missing") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise FraudConfigError(f"{path} is malformed: {str(exc).splitlines()[0]}") from exc
