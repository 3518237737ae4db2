"""Fraud backtest at handbook size (~1.75M payments over 6 months; train 1 week, test 1 week).

Times ``riskctl fraud backtest``'s job end to end (read + GX, point-in-time features over the whole
file, Feast join, fit, score) and compares its test-week quality with a naive baseline, an
amount-only logistic regression trained on the same labels. Target (issue 4): under 10 minutes.
Run: .venv/bin/python bench/fraud_bench.py [TRANSACTIONS_FILE]
"""

import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score

from decisioning.events import utc_now
from decisioning.settings import load_settings
from pipelines.fraud.backtest import BacktestWindows, run_backtest
from pipelines.fraud.dataset import labels_known_at, with_label_times
from pipelines.fraud.metrics import card_precision_at_k
from pipelines.simulate import SimulationConfig, simulate_world, write_world

LABEL_DELAY = pd.Timedelta(days=7)
TARGET_SECONDS = 600


def handbook_world(folder: Path) -> Path:
    """6,500 customers over 183 days, ending yesterday (the GX gate refuses future payments)."""
    start = (utc_now() - timedelta(days=184)).date().isoformat()
    config = SimulationConfig(customers=6500, days=183, seed=7, start=start)
    write_world(simulate_world(config), folder)
    return folder / "transactions.parquet"


def quality(truth: pd.DataFrame, score: np.ndarray) -> str:
    labels = truth["label"].astype(int).to_numpy()
    ap = average_precision_score(labels, score)
    auc = roc_auc_score(labels, score)
    cp = card_precision_at_k(truth.assign(score=score), 100)
    return f"AP {ap:.3f}   ROC AUC {auc:.3f}   card precision@100 {cp:.3f}"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        path = Path(sys.argv[1]) if len(sys.argv) > 1 else handbook_world(Path(folder))
        print(f"{'simulate handbook-size world':<40} {time.perf_counter() - started:7.1f} s")
        transactions = pd.read_parquet(path)
        first = transactions["occurred_at"].min().normalize()
        day = lambda n: (first + pd.Timedelta(days=n)).date()  # noqa: E731
        windows = BacktestWindows(day(120), day(126), day(134), day(140))
        settings = load_settings({"RISK_HOME": folder, "RISK_ENV": "local"})

        started = time.perf_counter()
        scores = run_backtest(settings, path, windows, LABEL_DELAY)
        seconds = time.perf_counter() - started
        print(f"{'backtest (read+GX, features, fit, score)':<40} {seconds:7.1f} s")
        print(f"{len(transactions):,} payments in file; {len(scores):,} test-week payments scored")

        truth = transactions.merge(scores, on="transaction_id")
        truth = truth[truth["label"].notna()]
        print(f"{'fraud scorer':<24} {quality(truth, truth['score'].to_numpy())}")

        cutoff = pd.Timestamp(windows.train_end, tz="UTC") + pd.Timedelta(days=1)
        start = pd.Timestamp(windows.train_start, tz="UTC")
        known = with_label_times(transactions, LABEL_DELAY)
        train = known[(known["occurred_at"] >= start) & (known["occurred_at"] < cutoff)]
        train = train.assign(label=labels_known_at(train, cutoff)).dropna(subset=["label"])
        learnt = train[train["label"] == 1]["fraud_scenario"].value_counts()
        print(
            "training frauds known at the cut-off: "
            + ", ".join(f"{k} {v}" for k, v in learnt.items())
        )
        baseline = LogisticRegression().fit(train[["amount"]], train["label"].astype(int))
        naive = baseline.predict_proba(truth[["amount"]])[:, 1]
        print(f"{'baseline: amount-only LR':<24} {quality(truth, naive)}")
        for scenario, rows in truth[truth["label"] == 1].groupby("fraud_scenario"):
            flagged = (rows["action"] != "approve").mean()
            print(f"  {scenario:<22} {len(rows):5d} frauds, {flagged:6.1%} reviewed or declined")
        met = "met" if seconds < TARGET_SECONDS else "NOT met"
        print(f"target: backtest under {TARGET_SECONDS} s -> {met}")


if __name__ == "__main__":
    main()
