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
