"""Fraud scorer quality on held-out simulated weeks, per scenario, beside a logistic regression.

Features are built once, point in time, over the whole simulated file. For each of the last
``HELD_OUT_WEEKS`` weeks the fraud scorer is fitted exactly as ``riskctl train fraud`` fits it:
the ``training_days`` before the week, labels known at the week's start. A plain logistic
regression is fitted in the same run on the same labelled payments and the same feature-service
columns. Both then score the week, which neither saw. Per scenario, the figures are measured on
the week's genuine payments plus that scenario's frauds.
Run: .venv/bin/python bench/fraud_quality.py [--customers 2000] [--days 60]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import timedelta

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from decisioning.adapters.feast.online import FRAUD_FEATURE_SERVICE
from decisioning.core.events import utc_now
from decisioning.fraud.metrics import card_precision_at_k
from decisioning.fraud.model import FraudScorer
from decisioning.fraud.thresholds import calibrate_thresholds
from decisioning.settings import load_settings
from pipelines.fraud.dataset import (
    FeatureSet,
    labels_known_at,
    point_in_time_features,
    with_label_times,
)
from pipelines.fraud.metrics import after_known_terminal_fraud
from pipelines.fraud.training import fit_on_period, load_fraud_settings
from pipelines.ingest import conform
from pipelines.simulate import SimulationConfig, simulate_world

HELD_OUT_WEEKS = 2
SEED = 11


def quality(week: pd.DataFrame, score: np.ndarray, k: int) -> tuple[float, float, float]:
    """ROC AUC, AP and card precision@k of ``score`` on the labelled payments of ``week``."""
    labels = week["label"].astype(int).to_numpy()
    return (
        float(roc_auc_score(labels, score)),
        float(average_precision_score(labels, score)),
        card_precision_at_k(week.assign(score=score), k),
    )


def logistic_baseline(scorer: FraudScorer, train: pd.DataFrame) -> LogisticRegression:
    """Standardised logistic regression on the scorer's own encoded feature-service columns."""
    design = scorer.encoder.filled(scorer.encoder.matrix(train))
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return model.fit(design, train["label"].astype(int).to_numpy())


def held_out_week(
    frame: pd.DataFrame, features: list[str], start: pd.Timestamp, k: int
) -> list[str]:
    """Fit on the period before ``start``, score the week from ``start``; lines of the table."""
    settings = load_settings({"RISK_ENV": "local"})
    config, codes = load_fraud_settings(settings)
    period = frame[
        (frame["occurred_at"] >= start - pd.Timedelta(days=config.training_days))
        & (frame["occurred_at"] < start)
    ].assign(label=lambda rows: labels_known_at(rows, start))
    scorer, validation, _ = fit_on_period(
        FeatureSet(period, features, FRAUD_FEATURE_SERVICE), config, codes
    )
    labelled = period[period["label"].notna()]
    baseline = logistic_baseline(scorer, labelled)

    week = frame[
        (frame["occurred_at"] >= start) & (frame["occurred_at"] < start + pd.Timedelta(7, "D"))
    ]
    week = week[week["label"].notna()].reset_index(drop=True)
    ours = scorer.score(week).score
    theirs = baseline.predict_proba(scorer.encoder.filled(scorer.encoder.matrix(week)))[:, 1]
    flagged = scorer.decide(week)["action"].to_numpy() != "approve"  # rules included
    lines = [
        f"week from {start.date()}: trained on {len(labelled):,} labelled payments "
        f"({int(labelled['label'].sum())} fraud), review >= {scorer.thresholds.review:.4f}"
    ]
    scenarios = ["all", *sorted(set(week["fraud_scenario"]) - {"none"})]
    for scenario in scenarios:
        keep = (week["label"] == 0) | (
            (week["fraud_scenario"] == scenario) if scenario != "all" else True
        )
        rows = week[keep.to_numpy()]
        frauds = int(rows["label"].sum())
        ours_q = quality(rows, ours[keep.to_numpy()], k)
        theirs_q = quality(rows, theirs[keep.to_numpy()], k)
        reviewed = flagged[keep.to_numpy() & (week["label"] == 1).to_numpy()].mean()
        lines.append(
            f"  {scenario:<22}{frauds:6d}  "
            + "  ".join(f"{v:6.3f}" for v in ours_q)
            + "   |  "
            + "  ".join(f"{v:6.3f}" for v in theirs_q)
            + f"   | {reviewed:6.1%}"
        )
    all_week = frame[
        (frame["occurred_at"] >= start) & (frame["occurred_at"] < start + pd.Timedelta(7, "D"))
    ].reset_index(drop=True)
    lines.extend(terminal_watch(scorer, validation, all_week, config.alert_budget))
    return lines


def terminal_watch(
    scorer: FraudScorer, validation: pd.DataFrame, week: pd.DataFrame, budget: float
) -> list[str]:
    """Compromised terminals: how many payments terminal features could see, and what rules add.

    A compromised terminal's payments are genuine payments relabelled, so only frauds already
    known at the terminal can give one away: the share of them that follow such a fraud bounds
    what terminal features can reach. Beside it, the scorer as trained (model and review rules
    sharing the alert budget) and its model alone with the whole budget.
    """
    scenario = week["fraud_scenario"].to_numpy()
    product = scorer.decide(week)["action"].to_numpy() != "approve"
    alone = calibrate_thresholds(
        scorer.score(validation).score, np.array([]), np.array([]), budget, 1.0, 1
    )
    model = scorer.score(week).score >= alone.review
    ct = scenario == "compromised_terminal"

    def shares(flagged: np.ndarray) -> str:
        share = {key: flagged[scenario == key].mean() for key in set(scenario)}
        return (
            f"compromised terminal {share.get('compromised_terminal', np.nan):.1%}, "
            f"above habit {share.get('above_habit', np.nan):.1%}, "
            f"card testing {share.get('card_testing', np.nan):.1%}, "
            f"genuine {share.get('none', np.nan):.2%}"
        )

    return [
        f"  compromised terminal, all {int(ct.sum())} payments of the week (labelled or not): "
        f"{week['after_known_terminal_fraud'].to_numpy()[ct].mean():.1%} after a fraud known at "
        "their terminal (the most terminal features can see)",
        f"    model and rules  {shares(product)} "
        f"(rules took {scorer.thresholds.rules_share:.2%} of the validation window)",
        f"    model alone      {shares(model)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    begin = (utc_now() - timedelta(days=args.days + 1)).date().isoformat()
    world = simulate_world(
        SimulationConfig(customers=args.customers, days=args.days, seed=SEED, start=begin)
    )
    config = load_fraud_settings(load_settings({"RISK_ENV": "local"}))[0]
    transactions = with_label_times(conform(world.transactions, "transactions"), config.label_delay)
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings({"RISK_HOME": home, "RISK_ENV": "local"})
        built = point_in_time_features(settings, transactions, world.customers, transactions)
    transactions["after_known_terminal_fraud"] = after_known_terminal_fraud(transactions)
    frame = built.frame.merge(
        transactions[
            ["transaction_id", "fraud_scenario", "label_available_at", "after_known_terminal_fraud"]
        ],
        on="transaction_id",
    )
    k = config.card_precision_k
    print(
        f"{len(transactions):,} payments, {args.customers:,} customers x {args.days} days, "
        f"seed {SEED}; features in {time.perf_counter() - started:.0f} s"
    )
    print(
        f"  {'scenario':<22}{'frauds':>6}  {'AUC':>6}  {'AP':>6}  {'CP@' + str(k):>6}"
        f"   |  {'LR AUC':>6}  {'LR AP':>6}  {'LR CP':>6}   | reviewed"
    )
    last_day = frame["occurred_at"].max().normalize()
    for weeks_back in range(HELD_OUT_WEEKS, 0, -1):
        start = last_day - pd.Timedelta(days=7 * weeks_back - 1)
        for line in held_out_week(frame, built.features, start, k):
            print(line)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
