"""Thresholds from an alert budget and a decline precision target, and the actions they give."""

from pathlib import Path

import numpy as np
import pytest

from decisioning.fraud.thresholds import (
    Thresholds,
    calibrate_thresholds,
    read_thresholds,
    write_thresholds,
)


def test_review_threshold_spends_the_alert_budget() -> None:
    # given 1,000 payments with evenly spread scores and a 5 % budget
    scores = np.linspace(0, 1, 1000)

    # when
    thresholds = calibrate_thresholds(scores, scores, np.zeros(1000), 0.05, 0.9, 5)

    # then
    flagged = (scores >= thresholds.review).mean()
    assert flagged == pytest.approx(0.05, abs=0.002), f"{flagged:.3%} flagged, budget 5 %"


def test_rules_spend_their_share_of_the_budget_first_and_the_model_the_rest() -> None:
    # given 1,000 payments with evenly spread scores, 2% of them (low scorers) taken by a rule
    scores = np.linspace(0, 1, 1000)
    ruled = np.zeros(1000, dtype=bool)
    ruled[100:120] = True

    # when calibrated for a 5% budget
    thresholds = calibrate_thresholds(scores, scores, np.zeros(1000), 0.05, 0.9, 5, ruled)

    # then rules and model together flag 5%, the model 3% of the rest
    flagged = ((scores >= thresholds.review) | ruled).mean()
    assert flagged == pytest.approx(0.05, abs=0.002), f"{flagged:.3%} flagged, budget 5 %"
    assert thresholds.rules_share == pytest.approx(0.02)


def test_rules_taking_the_whole_budget_leave_the_model_nothing_to_review() -> None:
    scores = np.linspace(0, 1, 1000)
    ruled = scores < 0.06

    thresholds = calibrate_thresholds(scores, scores, np.zeros(1000), 0.05, 0.9, 5, ruled)

    assert thresholds.review == 1.0
    assert thresholds.actions(np.array([0.99, 0.01]), np.array([False, True])).tolist() == [
        "approve",
        "review",
    ]


def test_decline_threshold_is_the_lowest_score_meeting_the_precision_target() -> None:
    # given labelled scores: the top five are fraud, then one genuine, then more fraud
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.95, 0.90, 0.85, 0.5, 0.4, 0.3])
    labels = np.array([1, 1, 1, 1, 1, 0, 1, 0, 0, 0])

    # when
    thresholds = calibrate_thresholds(scores, scores, labels, 0.2, 0.85, 5)

    # then: at 0.85 precision is 6/7 >= 0.85; lower cuts fall below the target
    assert thresholds.decline == pytest.approx(0.85)


def test_no_decline_when_the_target_cannot_be_met() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    labels = np.array([1, 0, 1, 0, 1, 0])

    # when at least two alerts must lie above the cut (a single lucky fraud is not evidence)
    thresholds = calibrate_thresholds(scores, scores, labels, 0.2, 0.95, 2)

    # then

    assert thresholds.decline is None
    assert "decline" not in set(thresholds.actions(scores)), "declined without a precise cut"


def test_actions_follow_the_thresholds() -> None:
    thresholds = Thresholds(review=0.2, decline=0.8, alert_budget=0.01, decline_precision=0.9)

    actions = thresholds.actions(np.array([0.1, 0.2, 0.79, 0.8, 0.95]))

    assert actions.tolist() == ["approve", "review", "review", "decline", "decline"]


def test_thresholds_file_round_trips(tmp_path: Path) -> None:
    thresholds = Thresholds(review=0.12, decline=None, alert_budget=0.01, decline_precision=0.9)

    write_thresholds(tmp_path / "local.yaml", thresholds, model_version="3")

    assert read_thresholds(tmp_path / "local.yaml") == thresholds
