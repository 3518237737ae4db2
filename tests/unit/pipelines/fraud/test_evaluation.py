"""The backtest's quality figures: card precision@k as the handbook counts it, and the JSON."""

import json
from pathlib import Path

import pandas as pd
import pytest

from pipelines.fraud.evaluation import backtest_quality, quality_path, write_quality
from pipelines.fraud.metrics import daily_card_precision_at_k
from tests.support.clock import BACKTEST_WORLD_START

DAY_1 = pd.Timestamp(BACKTEST_WORLD_START, tz="UTC") + pd.Timedelta(hours=10)
DAY_2 = DAY_1 + pd.Timedelta(days=1)


def payments(rows: list[tuple[pd.Timestamp, str, float, int]]) -> pd.DataFrame:
    """(time, card, score, label) rows as the evaluation reads them."""
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(len(rows))],
            "occurred_at": [row[0] for row in rows],
            "customer_id": [f"cust-{row[1]}" for row in rows],
            "card_id": [row[1] for row in rows],
            "score": [row[2] for row in rows],
            "label": pd.array([row[3] for row in rows], dtype="Int8"),
        }
    )


def test_a_card_caught_on_one_day_leaves_the_next_days_ranking() -> None:
    # given card A, fraudulent and top-scored on both days, and card B, fraud found on day 2
    scored = payments(
        [
            (DAY_1, "A", 0.9, 1),
            (DAY_1, "B", 0.2, 0),
            (DAY_1, "C", 0.1, 0),
            (DAY_2, "A", 0.95, 1),
            (DAY_2, "B", 0.8, 1),
            (DAY_2, "C", 0.1, 0),
        ]
    )

    # when investigators check one card a day
    daily = daily_card_precision_at_k(scored, k=1)

    # then day 2 checks B, not A again (A was blocked on day 1), and each day finds one fraud
    assert daily["caught"].tolist() == [1, 1]
    assert daily["precision"].tolist() == [1.0, 1.0]


def test_precision_is_over_k_as_the_handbook_counts_it() -> None:
    # one fraudulent card among two on a day, k = 4: the day is worth 1/4, not 1/2
    scored = payments([(DAY_1, "A", 0.9, 1), (DAY_1, "B", 0.5, 0)])

    daily = daily_card_precision_at_k(scored, k=4)

    assert daily["precision"].tolist() == [0.25]


def test_the_quality_figures_are_measured_on_labelled_test_payments(tmp_path: Path) -> None:
    # given four test payments, one without a label, and the scorer's actions
    test = payments(
        [(DAY_1, "A", 0, 1), (DAY_1, "B", 0, 0), (DAY_2, "C", 0, 0), (DAY_2, "D", 0, 0)]
    ).drop(columns="score")
    test["label"] = pd.array([1, 0, 0, None], dtype="Int8")
    scores = pd.DataFrame(
        {
            "transaction_id": test["transaction_id"],
            "score": [0.9, 0.3, 0.1, 0.95],
            "action": ["review", "approve", "approve", "decline"],
        }
    )

    # when the figures are computed and written beside the scores
    quality = backtest_quality(scores, test, k=2, alert_budget=0.01)
    written = write_quality(quality, quality_path(tmp_path / "scores.parquet"))

    # then the unlabelled payment is counted but not scored, and the JSON holds every figure
    assert quality["labelled_test_payments"] == 3 and quality["test_payments"] == 4
    assert quality["roc_auc"] == 1.0 and quality["average_precision"] == 1.0
    assert quality["recall_at_alert_budget"] == 1.0
    assert quality["alert_share"] == pytest.approx(0.5), "alerts are a share of all payments"
    assert quality["card_precision_at_2"] == pytest.approx((1 / 2 + 0 / 2) / 2)
    assert written == tmp_path / "scores.metrics.json"
    figures = json.loads(written.read_text())
    for key in ("roc_auc", "average_precision", "card_precision_at_2", "recall_at_alert_budget"):
        assert key in figures, f"{key} missing from {written}"


def test_figures_that_need_both_classes_are_null_not_nan(tmp_path: Path) -> None:
    test = payments([(DAY_1, "A", 0, 0), (DAY_1, "B", 0, 0)]).drop(columns="score")
    scores = test[["transaction_id"]].assign(score=[0.1, 0.2], action="approve")

    quality = backtest_quality(scores, test, k=100, alert_budget=0.01)
    text = write_quality(quality, tmp_path / "q.json").read_text()

    assert json.loads(text)["roc_auc"] is None and "NaN" not in text
