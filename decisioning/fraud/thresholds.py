"""Action thresholds (approve, review, decline) from an alert budget and a precision target.

The review threshold spends the alert budget (the share of payments the fraud team can look at);
the decline threshold is the lowest score above which payments were fraud often enough to refuse
them outright. Both come from the validation window, never from the payments trained on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from decisioning.core.names import FRAUD_DETECTOR
from decisioning.fraud.errors import FraudConfigError

logger = logging.getLogger(__name__)

Action = Literal["approve", "review", "decline"]
ACTIONS: tuple[Action, ...] = ("approve", "review", "decline")


class Thresholds(BaseModel):
    """Scores at or above ``review`` are reviewed, at or above ``decline`` declined.

    ``decline`` is None when no score on the validation window met the precision target: the
    model then never declines on its own.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    review: float = Field(ge=0, le=1)
    decline: float | None = Field(default=None, ge=0, le=1)
    alert_budget: float = Field(gt=0, lt=1)
    decline_precision: float = Field(gt=0, le=1)
    # Share of the validation window the review rules sent to review; the review threshold
    # spends what is left of the budget on the other payments.
    rules_share: float = Field(default=0.0, ge=0, le=1)

    def actions(self, scores: np.ndarray, ruled: np.ndarray | None = None) -> np.ndarray:
        """The action for each calibrated score; ``ruled`` payments are reviewed at least."""
        decline = np.inf if self.decline is None else self.decline
        review = scores >= self.review if ruled is None else (scores >= self.review) | ruled
        return np.where(scores >= decline, "decline", np.where(review, "review", "approve"))

    def action(self, score: float, ruled: bool = False) -> Action:
        """One payment's action, as :meth:`actions` gives it in a frame (the online path)."""
        if self.decline is not None and score >= self.decline:
            return "decline"
        return "review" if ruled or score >= self.review else "approve"

    def as_tags(self) -> dict[str, str]:
        return {
            "threshold.review": f"{self.review:.6f}",
            "threshold.decline": "none" if self.decline is None else f"{self.decline:.6f}",
            "threshold.alert_budget": str(self.alert_budget),
            "threshold.decline_precision": str(self.decline_precision),
            "threshold.rules_share": f"{self.rules_share:.6f}",
        }


def calibrate_thresholds(
    scores: np.ndarray,
    labelled_scores: np.ndarray,
    labels: np.ndarray,
    alert_budget: float,
    decline_precision: float,
    min_decline_alerts: int,
    ruled: np.ndarray | None = None,
) -> Thresholds:
    """Thresholds from the validation window.

    ``scores`` are all of the window's payments (the budget is a share of all traffic, labelled or
    not); ``labelled_scores`` and ``labels`` are those whose outcome was known, for precision.
    ``ruled`` marks the payments review rules send to review anyway: they spend their share of
    the budget first, and the review threshold spends the rest on the others.
    """
    if len(scores) == 0:
        raise FraudConfigError("cannot calibrate thresholds on an empty validation window")
    ruled = np.zeros(len(scores), dtype=bool) if ruled is None else ruled
    rules_share = float(ruled.mean())
    left = alert_budget - rules_share
    if left <= 0 or ruled.all():
        logger.warning(
            "review rules take %.2f%% of payments, the whole %.2f%% alert budget: the model "
            "reviews nothing more",
            100 * rules_share,
            100 * alert_budget,
        )
        review = 1.0
    else:
        review = float(np.quantile(scores[~ruled], 1.0 - left / (1.0 - rules_share)))
    decline = _lowest_precise_score(labelled_scores, labels, decline_precision, min_decline_alerts)
    return Thresholds(
        review=min(max(review, 0.0), 1.0),
        decline=decline,
        alert_budget=alert_budget,
        decline_precision=decline_precision,
        rules_share=rules_share,
    )


def _lowest_precise_score(
    scores: np.ndarray, labels: np.ndarray, target: float, min_alerts: int
) -> float | None:
    """The lowest score s where payments scoring >= s were fraud at least ``target`` of the time."""
    order = np.argsort(-scores, kind="stable")
    ranked, truth = scores[order], labels[order].astype("float64")
    precision = np.cumsum(truth) / np.arange(1, len(truth) + 1)
    # A cut is only possible between distinct scores: judge each score at its last tied position.
    last_of_tie = np.append(ranked[1:] != ranked[:-1], True)
    eligible = last_of_tie & (precision >= target) & (np.arange(1, len(truth) + 1) >= min_alerts)
    if not eligible.any():
        return None
    return float(ranked[np.flatnonzero(eligible)[-1]])


def write_thresholds(path: Path, thresholds: Thresholds, model_version: str | None) -> None:
    """Write the thresholds as calibration found them (the run's ``thresholds.yaml`` artifact)."""
    body = {"model": FRAUD_DETECTOR, "model_version": model_version, **thresholds.model_dump()}
    header = "# Written by `riskctl train fraud` (calibrated on its validation window).\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + yaml.safe_dump(body, sort_keys=False))


def read_thresholds(path: Path) -> Thresholds:
    """The thresholds of an environment, as the last calibration wrote them."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        raw.pop("model", None)
        raw.pop("model_version", None)
        return Thresholds.model_validate(raw)
    except FileNotFoundError as exc:
        raise FraudConfigError(f"{path} is missing; run `riskctl train fraud`") from exc
    except (AttributeError, yaml.YAMLError, ValidationError) as exc:
        raise FraudConfigError(f"{path} is malformed: {str(exc).splitlines()[0]}") from exc
